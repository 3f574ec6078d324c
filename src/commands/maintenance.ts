// `etcd-lab defrag` and `etcd-lab alarm list|disarm|recover`: keeping every member under its space quota.
import type { Command } from 'commander';
import { humanBytes } from '../ui/bytes.js';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, resultCommand, seconds, specOptions, type OutputFlags, type SpecFlags } from './shared.js';
import { tableLines } from '../ui/table.js';

interface DefragLine {
  member: string;
  wasLeader: boolean;
  before: { dbSize: number; dbSizeInUse: number };
  after: { dbSize: number; dbSizeInUse: number };
  elapsedMs: number;
}

function defragLines(reports: DefragLine[]): string[] {
  const rows = [
    ['MEMBER', 'DB SIZE BEFORE', 'IN USE', 'DB SIZE AFTER', 'BUSY'],
    ...reports.map((r) => [
      `${r.member}${r.wasLeader ? ' (leader)' : ''}`,
      humanBytes(r.before.dbSize),
      humanBytes(r.before.dbSizeInUse),
      humanBytes(r.after.dbSize),
      `${(r.elapsedMs / 1000).toFixed(1)}s`,
    ]),
  ];
  return tableLines(rows);
}

export function register(program: Command): void {
  outputOptions(specOptions(program.command('defrag')))
    .description('defragment members one at a time, followers first and the leader last, each healthy again before the next')
    .argument('[members...]', 'members to defragment (default: every member)')
    .option('--compact', 'first compact to the current revision (the history before it goes): only then do deleted and overwritten values leave the database')
    .option('--force', 'defragment even when the quorum cannot spare the member (writes stop while it runs)')
    .option('--timeout <seconds>', 'how long one member may take', '300')
    .action(ends(async (members: string[], flags: SpecFlags & OutputFlags & { compact?: boolean; force?: boolean; timeout: string }) => {
      const { defrag } = await import('../lab/maintenance.js');
      const result = await defrag(
        { ...loadOptionsFrom(flags), members, compact: flags.compact, force: flags.force, timeoutMs: seconds(flags.timeout, '--timeout') },
        await reporter(flags),
      );
      return finish(flags, result, () => [...(result.compactedTo ? [`compacted to revision ${result.compactedTo}`] : []), ...defragLines(result.members)]);
    }));

  const alarm = program.command('alarm').description("etcd's alarms: NOSPACE (the space quota is reached: writes refused) and CORRUPT");

  resultCommand(
    alarm.command('list'),
    'the active alarms and the members that raised them',
    async (load, progress) => (await import('../lab/maintenance.js')).alarmList(load, progress),
    (result) => (result.alarms.length === 0 ? [`lab ${result.lab}: no alarms`] : result.alarms.map((a) => `${a.member}  ${a.alarm}`)),
    'listing',
  );

  resultCommand(
    alarm.command('disarm'),
    'clear every alarm (etcd raises NOSPACE again at the next write if the space is still not there: see `alarm recover`)',
    async (load, progress) => (await import('../lab/maintenance.js')).alarmDisarm(load, progress),
    (result) => [
      result.disarmed.length === 0 ? 'no alarm was active' : `disarmed ${result.disarmed.map((a) => `${a.alarm} on ${a.member}`).join(', ')}`,
      ...(result.remaining.length > 0 ? [`still active: ${result.remaining.map((a) => `${a.alarm} on ${a.member}`).join(', ')}`] : []),
    ],
    'action',
  );

  outputOptions(specOptions(alarm.command('recover')))
    .description("out of a full database (NOSPACE), etcd's way: compact to the current revision, defragment every member, disarm, prove a write")
    .option('--force', 'defragment even when the quorum cannot spare a member')
    .action(ends(async (flags: SpecFlags & OutputFlags & { force?: boolean }) => {
      const { alarmRecover } = await import('../lab/maintenance.js');
      const result = await alarmRecover({ ...loadOptionsFrom(flags), force: flags.force }, await reporter(flags));
      return finish(flags, result, () => [
        `compacted to revision ${result.compactedTo}`,
        ...defragLines(result.defragmented),
        result.disarmed.length === 0 ? 'no alarm was active' : `disarmed ${result.disarmed.map((a) => `${a.alarm} on ${a.member}`).join(', ')}`,
        `writes work again (revision ${result.writeRevision})`,
      ]);
    }));
}
