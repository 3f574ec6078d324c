// `etcd-lab init`: writes a commented etcd-lab.yaml with every setting at its default.
import type { Command } from 'commander';
import { ends, print } from './shared.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('write a commented etcd-lab.yaml with every setting at its default')
    .option('-c, --config <path>', 'where to write the spec', 'etcd-lab.yaml')
    .option('-f, --force', 'overwrite an existing file')
    .action(
      ends(async (flags: { config: string; force?: boolean }) => {
        const { initSpec, commitAdvice } = await import('../lab/init.js');
        const result = await initSpec(flags);
        print([`wrote ${result.spec}`, ...commitAdvice(result), 'next: edit it if you like, then run `etcd-lab up`']);
      }),
    );
}
