// `etcd-lab up`: generate, start, wait until the lab is really ready; print where everything is.
import type { Command } from 'commander';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, seconds, specOptions, type OutputFlags, type SpecFlags } from './shared.js';

export function register(program: Command): void {
  outputOptions(specOptions(program.command('up')))
    .description('generate the lab, start it, and wait until quorum, one leader and every HAProxy backend are real')
    .option('--timeout <seconds>', 'how long `docker compose up` and the wait for the lab to become ready may take, together', '60')
    .option('--retain', 'on failure or Ctrl-C, keep what this run created (for debugging)')
    .action(ends(async (flags: SpecFlags & OutputFlags & { timeout: string; retain?: boolean }) => {
      const [{ up }, { formatStatus }] = await Promise.all([import('../lab/up.js'), import('../ui/status-view.js')]);
      const timeoutMs = seconds(flags.timeout, '--timeout');
      const result = await up({ ...loadOptionsFrom(flags), timeoutMs, retain: flags.retain }, await reporter(flags));
      return finish(flags, result, () => [
        '',
        result.alreadyUp ? `lab ${result.name} is already up; nothing to change.` : `lab ${result.name} is ready in ${(result.elapsedMs / 1000).toFixed(1)}s.`,
        '',
        formatStatus(result.status),
        '',
        '  eval "$(npx etcd-lab env)"   # then: etcdctl put greeting hello',
        `  stats page credentials: ETCD_LAB_STATS_USER / ETCD_LAB_STATS_PASSWORD in ${result.credentialsFile}`,
        '  next: `etcd-lab kind` for a KIND cluster on this etcd; `etcd-lab down` to stop (data kept)',
      ]);
    }));
}
