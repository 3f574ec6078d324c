// `etcd-lab scale <n>`: grow or shrink a running lab one member at a time.
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, seconds, specOptions, type OutputFlags, type SpecFlags } from './shared.js';
import { ExitCode } from '../exit-codes.js';

export function register(program: Command): void {
  outputOptions(specOptions(program.command('scale')))
    .description('change the member count of a running lab (1, 3, 5, 7): one member at a time, joining as learners; records it in etcd-lab.yaml')
    .argument('<count>', 'the new member count: 1, 3, 5 or 7')
    .option('--timeout <seconds>', 'how long each step may take', '120')
    .action(ends(async (count: string, flags: SpecFlags & OutputFlags & { timeout: string }) => {
      if (!/^\d+$/.test(count)) throw new UserError(`scale takes a member count (got ${JSON.stringify(count)})`, { hint: 'etcd-lab scale 5', exitCode: ExitCode.badInput });
      if (flags.members !== undefined) throw new UserError('--members and scale both set the member count: give only the number to scale to', { exitCode: ExitCode.badInput });
      const { scale } = await import('../lab/scale.js');
      const result = await scale({ ...loadOptionsFrom(flags), members: Number(count), timeoutMs: seconds(flags.timeout, '--timeout') }, await reporter(flags));
      return finish(flags, result, () => [
        `lab ${result.lab}: ${result.from} → ${result.to} members in ${(result.elapsedMs / 1000).toFixed(1)}s` +
          (result.added.length ? ` (added ${result.added.join(', ')})` : '') +
          (result.removed.length ? ` (removed ${result.removed.join(', ')})` : ''),
        `recorded members: ${result.to} in ${result.spec}`,
      ]);
    }));
}
