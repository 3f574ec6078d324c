// `etcd-lab images build`: local etcd and HAProxy images from Debian packages, for machines that cannot pull.
import { Option, type Command } from 'commander';
import { outputOptions, print, printJson, reporter, type OutputFlags } from './shared.js';

export function register(program: Command): void {
  const images = program.command('images').description('local etcd and HAProxy images for machines that cannot pull');
  outputOptions(images.command('build'))
    .description('build etcd and HAProxy images from Debian trixie packages (no registry needed)')
    .addOption(new Option('--force', 'rebuild even if the images exist'))
    .action(async (flags: OutputFlags & { force?: boolean }) => {
      const { buildLocalImages } = await import('../runtime/images.js');
      const result = await buildLocalImages({ force: flags.force }, await reporter(flags));
      if (flags.json) printJson(result);
      else if (!flags.quiet) print([result.summary]);
    });
}
