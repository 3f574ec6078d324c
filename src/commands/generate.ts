// `etcd-lab generate`: renders the lab into generated/ and lists the files.
import type { Command } from 'commander';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, specOptions, type OutputFlags, type SpecFlags } from './shared.js';

export function register(program: Command): void {
  outputOptions(specOptions(program.command('generate')))
    .description('render the lab (compose file, haproxy.cfg, kind config, .env) into generated/')
    .action(
      ends(async (flags: SpecFlags & OutputFlags) => {
        const { generate, describeFiles } = await import('../lab/generate.js');
        const result = await generate(loadOptionsFrom(flags), await reporter(flags));
        const shown = { outDir: result.outDir, files: result.files, endpointMode: result.endpointMode, pki: result.pki, spec: result.lab.spec };
        return finish(flags, shown, () => [`generated ${result.files.length} files:`, ...describeFiles(result)]);
      }),
    );
}
