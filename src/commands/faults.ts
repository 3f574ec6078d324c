// `etcd-lab kill|stop|start|pause|unpause|partition|loss|blackhole|delay|heal`: failure play, each followed by the
// quorum state it leaves (and the election, when the leader was taken out).
import type { Command } from 'commander';
import type { FaultAction } from '../lab/faults.js';
import { DEFAULT_DELAY_MS, DEFAULT_LOSS_PERCENT } from '../config/defaults.js';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, seconds, specOptions, whole, type OutputFlags, type SpecFlags } from './shared.js';

const FAULTS: [FaultAction, string, string][] = [
  ['kill', '<members...>', 'SIGKILL members (or "leader"): no graceful handover, so an election follows'],
  ['stop', '<members...>', 'stop members gracefully (SIGTERM: a leader hands over first)'],
  ['start', '[members...]', 'start stopped or killed members (all of them when none is named), then wait until they serve'],
  ['pause', '<members...>', 'freeze members (docker pause): alive to the network, silent to raft'],
  ['unpause', '[members...]', 'thaw paused members (all when none is named), then wait until they serve'],
  ['partition', '<members...>', 'cut members off from the rest of the lab (each on a network of its own)'],
  ['loss', '<members...>', "drop a share of members' peer packets, both ways (iptables in their network namespace); clients still reach them"],
  ['blackhole', '<members...>', 'one way: members hear nothing from their peers (what the peers send them is dropped) while what they send still arrives; clients still reach them'],
  ['delay', '<members...>', "hold members' own connections to their peers (what the peers stream to them) --ms each way, through a forwarder; clients still reach them"],
  ['heal', '[members...]', 'undo partition, loss, blackhole and delay (all members when none is named), then wait until they serve'],
];

export function register(program: Command): void {
  for (const [action, args, description] of FAULTS) {
    const command = outputOptions(specOptions(program.command(action)))
      .description(description)
      .argument(args, 'member names (etcd1, etcd2, …) or leader')
      .option('--no-wait', 'do not wait for the election or for the members to serve again')
      .option('--timeout <seconds>', 'how long to wait', '30');
    if (action === 'delay') command.option('--ms <n>', 'how long each chunk is held, each way, 1–10000', String(DEFAULT_DELAY_MS));
    if (action === 'loss') command.option('--percent <n>', 'the share of peer packets dropped, 1–99 (all of them: `partition`)', String(DEFAULT_LOSS_PERCENT));
    command.action(
      ends(async (members: string[] | undefined, flags: SpecFlags & OutputFlags & { wait: boolean; timeout: string; percent?: string; ms?: string }) => {
        const { fault } = await import('../lab/faults.js');
        const result = await fault(
          {
            ...loadOptionsFrom(flags),
            action,
            members: members ?? [],
            wait: flags.wait,
            timeoutMs: seconds(flags.timeout, '--timeout'),
            ...(flags.percent !== undefined ? { lossPercent: whole(flags.percent, '--percent', 1, 99) } : {}),
            ...(flags.ms !== undefined ? { delayMs: whole(flags.ms, '--ms', 1, 10_000) } : {}),
          },
          await reporter(flags),
        );
        return finish(flags, result, ({ done, election, leaderBefore, state }) => [
          ...done,
          ...(election ? [`${leaderBefore} was leader: ${election.leader} elected at term ${election.term}, ${(election.afterMs / 1000).toFixed(1)}s later`] : []),
          state.text,
        ]);
      }),
    );
  }
}
