// `etcd-lab logs [member] [-f]`: container logs of one member or service, or of all, prefixed.
import type { Command } from 'commander';
import { ends, loadOptionsFrom, specOptions, type SpecFlags } from './shared.js';

export function register(program: Command): void {
  specOptions(program.command('logs'))
    .description('container logs of one member (etcd1, …, haproxy) or of all, prefixed')
    .argument('[member]', 'etcd1, etcd2, …, or haproxy; all when left out')
    .option('-f, --follow', 'keep printing new lines')
    .option('-n, --tail <lines>', 'only the last lines of each')
    .action(
      ends(async (member: string | undefined, flags: SpecFlags & { follow?: boolean; tail?: string }) => {
        const { logs } = await import('../lab/logs.js');
        await logs({ ...loadOptionsFrom(flags), member, follow: flags.follow, tail: flags.tail === undefined ? undefined : Number(flags.tail) });
      }),
    );
}
