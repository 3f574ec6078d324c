// `etcd-lab status [--watch]`: members, leader, raft state, HAProxy backends, quorum.
import type { Command } from 'commander';
import { ends, finish, loadOptionsFrom, outputOptions, seconds, specOptions, type OutputFlags, type SpecFlags } from './shared.js';

export function register(program: Command): void {
  outputOptions(specOptions(program.command('status')))
    .description('members, leader, raft term and index, db size, version, HAProxy backend state, quorum')
    .option('-w, --watch [seconds]', 'refresh until interrupted (every second, or as given)')
    .action(ends(async (flags: SpecFlags & OutputFlags & { watch?: boolean | string }) => {
      const [{ status, statusWatcher }, { formatStatus }] = await Promise.all([import('../lab/status.js'), import('../ui/status-view.js')]);
      const options = loadOptionsFrom(flags);
      if (!flags.watch) {
        return finish(flags, await status(options), (result) => [formatStatus(result)], { kind: 'listing' });
      }
      const every = flags.watch === true ? 1000 : seconds(flags.watch, '--watch');
      const read = await statusWatcher(options);
      const tty = Boolean(process.stdout.isTTY) && !flags.json;
      for (;;) {
        const result = await read();
        if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        else process.stdout.write(`${tty ? '\x1b[2J\x1b[H' : '\n'}${new Date().toLocaleTimeString()}  ${formatStatus(result)}\n`);
        // Until Ctrl-C, which ends the process (nothing to undo here).
        await new Promise((r) => setTimeout(r, every));
      }
    }));
}
