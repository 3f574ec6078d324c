// `etcd-lab check`: writes through HAProxy while injecting faults, then the verdict (exit 5 on a lost write).
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { loadOptionsFrom, outputOptions, print, printJson, reporter, seconds, specOptions, type OutputFlags, type SpecFlags } from './shared.js';
import { ExitCode } from '../exit-codes.js';

export function register(program: Command): void {
  outputOptions(specOptions(program.command('check')))
    .description('write through HAProxy while killing leaders and cutting off minorities, then verify no acknowledged write was lost')
    .option('--faults <n>', 'faults to inject, alternating leader kill and minority partition', '3')
    .option('--max-duration <seconds>', 'upper bound on the workload', '120')
    .option('--verify <history.json>', 're-verify a saved history against the lab instead of running a new one')
    .action(async (flags: SpecFlags & OutputFlags & { faults: string; maxDuration: string; verify?: string }) => {
      const faults = Number(flags.faults);
      if (!Number.isInteger(faults) || faults < 0 || faults > 20) throw new UserError('--faults takes a whole number from 0 to 20', { exitCode: ExitCode.badInput });
      const { check } = await import('../lab/check.js');
      const result = await check(
        { ...loadOptionsFrom(flags), faults, maxDurationMs: seconds(flags.maxDuration, '--max-duration'), verify: flags.verify },
        await reporter(flags),
      );
      const { verdict } = result;
      if (!verdict.ok) process.exitCode = ExitCode.violation;
      if (flags.json) return printJson(result);
      if (flags.quiet && verdict.ok) return;
      const c = verdict.counts;
      const problems = verdict.problems.length;
      print(
        [
          ...result.faults.map((f) => `fault: ${f}`),
          `writes: ${c.writes} (acknowledged ${c.acknowledged}, failed ${c.failed}, unknown outcome ${c.unknown})`,
          `longest gap between acknowledged writes: ${verdict.longestGapMs} ms`,
          ...verdict.problems.slice(0, 20).map((p) => `PROBLEM ${p}`),
          problems > 20 ? `… and ${problems - 20} more` : '',
          verdict.ok
            ? 'PASS: every acknowledged write is there with its value; revisions never went backwards'
            : `FAIL: ${problems} problem${problems === 1 ? '' : 's'}`,
          `history: ${result.historyFile}`,
        ].filter(Boolean),
      );
    });
}
