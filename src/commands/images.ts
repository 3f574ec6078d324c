// `etcd-lab images build`: local etcd and HAProxy images from Debian packages, for machines that cannot pull.
import { Option, type Command } from 'commander';
import { ends, finish, outputOptions, reporter, type OutputFlags } from './shared.js';

export function register(program: Command): void {
  const images = program.command('images').description('local etcd and HAProxy images for machines that cannot pull');
  outputOptions(images.command('build'))
    .description('build etcd and HAProxy images from Debian trixie packages (no registry needed)')
    .addOption(new Option('--force', 'rebuild even if the images exist'))
    .addOption(
      new Option('--etcd-version <version...>', 'also etcd 3.4 from Debian bookworm, as etcd-lab/etcd:3.4-bookworm (3.5 from trixie is etcd-lab/etcd:trixie): to rehearse an upgrade').choices(['3.4', '3.5']),
    )
    .option('--apiserver', "also Kubernetes' generic API server with kubectl, from Debian sid's Go sources, as etcd-lab/apiserver:sid (what `etcd-lab apiserver` runs; a Go build, about 15 min the first time)")
    .action(
      ends(async (flags: OutputFlags & { force?: boolean; etcdVersion?: ('3.4' | '3.5')[]; apiserver?: boolean }) => {
        const { buildImages } = await import('../lab/host.js');
        const result = await buildImages({ force: flags.force, etcdVersions: flags.etcdVersion, apiserver: flags.apiserver }, await reporter(flags));
        return finish(flags, result, ({ summary }) => [summary]);
      }),
    );
}
