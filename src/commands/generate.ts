// `etcd-lab generate`: renders the lab into generated/ and lists the files.
import type { Command } from 'commander';
import { loadOptionsFrom, outputOptions, print, printJson, reporter, specOptions, type OutputFlags, type SpecFlags } from './shared.js';

export function register(program: Command): void {
  outputOptions(specOptions(program.command('generate')))
    .description('render the lab (compose file, haproxy.cfg, kind config, .env) into generated/')
    .action(async (flags: SpecFlags & OutputFlags) => {
      const { generate, describeFiles } = await import('../lab/generate.js');
      const result = await generate(loadOptionsFrom(flags), await reporter(flags));
      if (flags.json) return printJson({ outDir: result.outDir, files: result.files, endpointMode: result.endpointMode, pki: result.pki, spec: result.lab.spec });
      if (!flags.quiet) print([`generated ${result.files.length} files:`, ...describeFiles(result)]);
    });
}
