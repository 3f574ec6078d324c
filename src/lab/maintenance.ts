// `etcd-lab defrag` and `etcd-lab alarm list|disarm|recover`: the maintenance etcd's operations guide
// asks for. Defragmentation blocks the member it runs on, so one member at a time, followers first
// and the leader last, each healthy again before the next; never one the quorum cannot spare.
import { UserError } from '../errors.js';
import type { Reporter } from '../progress.js';
import type { LoadOptions } from '../config/load.js';
import { quorumOf } from '../config/topology.js';
import type { Engine } from '../engine/engine.js';
import {
  alarmsIn,
  compact,
  currentRevision,
  defragment,
  describeFetchError,
  disarmAlarm,
  isTransient,
  listAlarms,
  memberHealth,
  memberStatus,
  putKey,
  type Alarm,
  type AlarmType,
} from '../protocol/etcd-http.js';
import type { LabMemberContainer, LabRuntime, MemberAnswer } from '../runtime/lab.js';
import { waitUntil } from '../runtime/wait.js';
import { humanBytes } from '../ui/bytes.js';
import { sleep } from '../interrupt.js';
import { withLab } from './session.js';
import { runSteps, type Step } from './steps.js';
import { ExitCode } from '../exit-codes.js';

export interface DefragOptions extends LoadOptions {
  /** Members to defragment (default: all). */
  members?: string[];
  /** Defragment even a member the quorum needs (writes stop meanwhile). */
  force?: boolean;
  /** Compact to the current revision first: only then do deleted and overwritten values leave the database. */
  compact?: boolean;
  timeoutMs?: number;
  engine?: Engine;
}

export interface DefragReport {
  member: string;
  wasLeader: boolean;
  /** File size and the part of it in use, before and after. */
  before: { dbSize: number; dbSizeInUse: number };
  after: { dbSize: number; dbSizeInUse: number };
  /** How long the member was busy defragmenting (it answers nothing meanwhile). */
  elapsedMs: number;
}

/** What defrag's and alarm recover's steps share. */
interface MaintenanceContext {
  runtime: LabRuntime;
  reporter: Reporter;
  opts: DefragOptions;
  plan?: DefragPlan;
  compactedTo?: number;
  defragmented: DefragReport[];
  disarmed: AlarmReport[];
  writeRevision?: number;
}

/**
 * Defragmentation, and the compaction before it when asked. Nothing is undone (a compaction and a
 * defragmentation cannot be, and need not be): the plan is checked before anything changes, so a
 * refusal leaves the lab uncompacted too.
 */
const PLAN: Step<MaintenanceContext> = {
  title: 'which members, in which order',
  reportsItself: true,
  run: async (ctx) => {
    ctx.plan = await planDefrag(ctx.runtime, ctx.opts.members ?? [], ctx.reporter, ctx.opts);
  },
};
const COMPACT: Step<MaintenanceContext> = {
  title: 'compact to the current revision',
  reportsItself: true,
  run: async (ctx) => {
    ctx.compactedTo = await compactToNow(ctx.runtime, ctx.reporter);
  },
};
const DEFRAGMENT: Step<MaintenanceContext> = {
  title: 'defragment, followers first, the leader last',
  reportsItself: true,
  run: async (ctx) => {
    ctx.defragmented = await defragMembers(ctx.runtime, ctx.plan!, ctx.reporter, ctx.opts);
  },
};

export const DEFRAG_STEPS: Step<MaintenanceContext>[] = [PLAN, { ...COMPACT, when: (ctx) => Boolean(ctx.opts.compact) }, DEFRAGMENT];

export async function defrag(opts: DefragOptions, reporter: Reporter): Promise<{ lab: string; compactedTo?: number; members: DefragReport[] }> {
  return withLab(opts, { lock: 'defrag' }, reporter, async (runtime) => {
    const ctx = await runSteps<MaintenanceContext>(DEFRAG_STEPS, { runtime, reporter, opts, defragmented: [], disarmed: [] }, reporter, { command: 'defrag' });
    return { lab: runtime.name, ...(ctx.compactedTo ? { compactedTo: ctx.compactedTo } : {}), members: ctx.defragmented };
  });
}

/** Compacts the key space to the current revision (etcdctl compact): the history before it goes. */
async function compactToNow(runtime: LabRuntime, reporter: Reporter): Promise<number> {
  const revision = await reporter.step('current revision', (step) => runtime.ask('current revision', (endpoint) => currentRevision(endpoint, 5000), { idempotent: true, step }));
  await reporter.step(`compact to revision ${revision}`, (step) =>
    runtime.ask(
      `compact to revision ${revision}`,
      async (endpoint) => {
        try {
          await compact(endpoint, revision);
        } catch (error) {
          // Compacted at this revision already (an earlier try, or run): nothing older is left to free.
          if (!/required revision has been compacted/.test((error as Error).message)) throw error;
        }
      },
      { idempotent: true, step },
    ),
  );
  return revision;
}

/** Followers first, the leader last: its pause costs an election timeout's worth of writes, a follower's none. */
/** The members to defragment, followers first and the leader last; refuses (nothing changed yet) when a member named does not answer or the quorum cannot spare one. */
async function planDefrag(runtime: LabRuntime, names: string[], reporter: Reporter, opts: { force?: boolean }): Promise<DefragPlan> {
  // Right after a failure an election may still run: wait for it (the leader goes last, and the
  // quorum arithmetic below counts members that are healthy, not merely between leaders).
  const view = await reporter.step('find the leader', (step) => runtime.awaitLeader(Date.now() + runtime.electionWaitMs, step)).catch(() => undefined);
  const answers = await runtime.statuses(undefined, 2000);
  const known = answers.map((a) => a.container.member);
  for (const name of names) {
    if (!known.includes(name)) throw new UserError(`lab "${runtime.name}" has no member "${name}"`, { hint: `choose from: ${known.join(', ')}`, exitCode: ExitCode.badInput });
  }
  // Unnamed, the members that run: one killed or stopped has nothing to defragment, and says so.
  const skipped = names.length === 0 ? answers.filter((a) => a.container.state !== 'running').map((a) => a.container.member) : [];
  if (skipped.length > 0) reporter.warn(`${skipped.join(', ')} ${skipped.length === 1 ? 'is' : 'are'} not running: not defragmented (\`etcd-lab start\`, then \`etcd-lab defrag ${skipped.join(' ')}\`)`);
  const targets = answers.filter((a) => (names.length === 0 ? !skipped.includes(a.container.member) : names.includes(a.container.member)));
  const silent = targets.filter((a) => !a.status).map((a) => a.container.member);
  if (silent.length > 0) {
    throw new UserError(`${silent.join(', ')} ${silent.length === 1 ? 'does' : 'do'} not answer: there is nothing to defragment there`, {
      hint: '`etcd-lab status` shows why; name the members that run (`etcd-lab defrag etcd1 etcd2`), or start them first (`etcd-lab start`)',
      exitCode: ExitCode.refused,
    });
  }
  const healthy = (await runtime.memberHealth(undefined, 1000, { excludeNoSpace: true })).filter((m) => m.health.healthy).length;
  const members = runtime.topology.members.length;
  if (members > 1 && healthy - 1 < quorumOf(members) && !opts.force) {
    throw new UserError(`only ${healthy} of ${members} members are healthy: defragmenting one would leave no quorum while it runs, and writes would stop`, {
      hint: 'bring the others back first (`etcd-lab start`, `etcd-lab status`), or pass --force to accept the pause',
      exitCode: ExitCode.refused,
    });
  }
  const leaderId = view?.elected.id;
  return { leaderId, ordered: [...targets.filter((a) => a.status!.memberId !== leaderId), ...targets.filter((a) => a.status!.memberId === leaderId)] };
}

interface DefragPlan {
  leaderId?: string;
  ordered: MemberAnswer[];
}

async function defragMembers(runtime: LabRuntime, { leaderId, ordered }: DefragPlan, reporter: Reporter, opts: { timeoutMs?: number }): Promise<DefragReport[]> {
  const reports: DefragReport[] = [];
  for (const { container, status } of ordered) {
    const wasLeader = status!.memberId === leaderId;
    reports.push(
      await reporter.step(`defragment ${container.member}${wasLeader ? ' (leader, last)' : ''}`, async (step) => {
        step.update(`${humanBytes(status!.dbSize)}, ${humanBytes(status!.dbSizeInUse)} in use`);
        const report = await defragOne(runtime, container, opts.timeoutMs ?? 300_000);
        step.update(`${humanBytes(report.before.dbSize)} → ${humanBytes(report.after.dbSize)} in ${(report.elapsedMs / 1000).toFixed(1)}s`);
        return { ...report, wasLeader };
      }),
    );
  }
  return reports;
}

async function defragOne(runtime: LabRuntime, container: LabMemberContainer, timeoutMs: number): Promise<Omit<DefragReport, 'wasLeader'>> {
  const endpoint = runtime.memberEndpoint(container);
  if (!endpoint) throw new UserError(`${container.member} is ${container.state}`, { hint: '`etcd-lab start` it first', exitCode: ExitCode.refused });
  const before = await memberStatus(endpoint, 2000);
  const started = Date.now();
  try {
    await defragment(endpoint, timeoutMs);
  } catch (error) {
    throw new UserError(`defragmenting ${container.member} failed: ${describeFetchError(error)}`, { hint: '`etcd-lab logs` ' + container.member + ' shows why', exitCode: ExitCode.failedPartWay, cause: error });
  }
  const elapsedMs = Date.now() - started;
  await waitUntil(
    `${container.member} to be healthy after defragmentation`,
    Date.now() + 30_000,
    async () => {
      const h = await memberHealth(endpoint, 1000, { excludeNoSpace: true });
      return { done: h.healthy, detail: h.healthy ? 'healthy' : h.reason };
    },
    undefined,
    { hint: '`etcd-lab status` and `etcd-lab logs` show why' },
  );
  const after = await memberStatus(endpoint, 2000);
  return {
    member: container.member,
    before: { dbSize: before.dbSize, dbSizeInUse: before.dbSizeInUse },
    after: { dbSize: after.dbSize, dbSizeInUse: after.dbSizeInUse },
    elapsedMs,
  };
}

export interface AlarmReport {
  member: string;
  alarm: AlarmType;
}

/** Alarms as the cluster records them (needs quorum), else as each member reports its own. */
async function activeAlarms(runtime: LabRuntime): Promise<AlarmReport[]> {
  const answers = await runtime.statuses(undefined, 2000);
  const byId = new Map(answers.filter((a) => a.status).map((a) => [a.status!.memberId, a.container.member]));
  try {
    return (await runtime.ask('alarm list', (endpoint) => listAlarms(endpoint, 3000), { idempotent: true })).map((a) => ({ member: byId.get(a.memberId) ?? a.memberId, alarm: a.alarm }));
  } catch {
    const seen = new Map<string, AlarmReport>();
    for (const a of answers.flatMap((x) => (x.status ? alarmsIn(x.status) : []))) {
      seen.set(`${a.memberId}/${a.alarm}`, { member: byId.get(a.memberId) ?? a.memberId, alarm: a.alarm });
    }
    return [...seen.values()];
  }
}

export async function alarmList(opts: LoadOptions & { engine?: Engine }, reporter: Reporter): Promise<{ lab: string; alarms: AlarmReport[] }> {
  return withLab(opts, {}, reporter, async (runtime) => ({ lab: runtime.name, alarms: await activeAlarms(runtime) }));
}

async function disarmAll(runtime: LabRuntime): Promise<AlarmReport[]> {
  const alarms: Alarm[] = await runtime.ask('alarm list', (endpoint) => listAlarms(endpoint, 3000), { idempotent: true });
  // Disarming an alarm that is gone already changes nothing: safe to ask again.
  for (const alarm of alarms) await runtime.ask(`alarm disarm ${alarm.alarm}`, (endpoint) => disarmAlarm(endpoint, alarm, 3000), { idempotent: true });
  const answers = await runtime.statuses(undefined, 2000);
  const byId = new Map(answers.filter((a) => a.status).map((a) => [a.status!.memberId, a.container.member]));
  return alarms.map((a) => ({ member: byId.get(a.memberId) ?? a.memberId, alarm: a.alarm }));
}

export async function alarmDisarm(opts: LoadOptions & { engine?: Engine }, reporter: Reporter): Promise<{ lab: string; disarmed: AlarmReport[]; remaining: AlarmReport[] }> {
  return withLab(opts, { lock: 'alarm disarm' }, reporter, async (runtime) => {
    const disarmed = await reporter.step('disarm every alarm', () => disarmAll(runtime));
    return { lab: runtime.name, disarmed, remaining: await activeAlarms(runtime) };
  });
}

export interface RecoverResult {
  lab: string;
  compactedTo: number;
  defragmented: DefragReport[];
  disarmed: AlarmReport[];
  /** The write through HAProxy that proves the lab takes writes again. */
  writeRevision: number;
  /** What the live keys use after defragmentation (the fullest member), against the quota. */
  liveBytes: number;
  quotaBytes: number;
}

/** Past this share of the quota in live keys, a recovery only buys a few writes: say so. */
const FULL_AFTER_RECOVERY = 0.8;

/**
 * etcd's way out of a full database (NOSPACE): compact away the history up to the current revision,
 * defragment every member to give the freed pages back, disarm the alarm, and prove a write goes
 * through. When the live keys themselves fill the quota, nothing here can help, and it says so.
 */
/** The advice when the live keys themselves fill the quota. */
const ROOM_ADVICE = 'Delete keys you do not need, or raise etcd.quotaBackendBytes in etcd-lab.yaml and restart the members (`etcd-lab down && etcd-lab up`, data kept)';

const fullestAfter = (ctx: MaintenanceContext) => Math.max(...ctx.defragmented.map((d) => d.after.dbSizeInUse));

/** etcd's maintenance procedure, in its order: each step needs the one before it (disarmed before defragmenting, the alarm comes back). */
export const RECOVER_STEPS: Step<MaintenanceContext>[] = [
  PLAN,
  COMPACT,
  DEFRAGMENT,
  {
    title: 'disarm the alarms',
    run: async (ctx) => {
      ctx.disarmed = await disarmAll(ctx.runtime);
    },
  },
  {
    title: 'a write through HAProxy',
    run: async (ctx) => {
      const { runtime } = ctx;
      // The value is only a marker, so a write that failed for the moment (a member that went away,
      // an election) is simply written again; NOSPACE and other refusals are not transient.
      const deadline = Date.now() + 15_000;
      for (;;) {
        try {
          ctx.writeRevision = (await putKey(runtime.client, 'etcd-lab/ready', `recovered at ${new Date().toISOString()}`, 5000)).revision;
          return;
        } catch (error) {
          if (isTransient(error) && Date.now() < deadline) {
            await sleep(200);
            continue;
          }
          const quota = runtime.lab.spec.etcd.quotaBackendBytes;
          throw new UserError(`writes still fail after compaction and defragmentation: ${(error as Error).message}`, {
            hint: `the live keys use ${humanBytes(fullestAfter(ctx))} of the ${humanBytes(quota)} quota: there is no history left to free. ${ROOM_ADVICE}, then run this again`,
            exitCode: ExitCode.failedPartWay,
            cause: error,
          });
        }
      }
    },
  },
  {
    title: 'room left in the quota',
    reportsItself: true,
    run: async (ctx) => {
      const quota = ctx.runtime.lab.spec.etcd.quotaBackendBytes;
      const fullest = fullestAfter(ctx);
      if (fullest > FULL_AFTER_RECOVERY * quota) {
        ctx.reporter.warn(`the live keys still use ${humanBytes(fullest)} of the ${humanBytes(quota)} quota: compaction freed the history, but the next writes will fill it again. ${ROOM_ADVICE}`);
      }
    },
  },
];

/**
 * etcd's way out of a full database (NOSPACE): compact away the history up to the current revision,
 * defragment every member to give the freed pages back, disarm the alarm, and prove a write goes
 * through. When the live keys themselves fill the quota, nothing here can help, and it says so.
 */
export async function alarmRecover(opts: LoadOptions & { force?: boolean; engine?: Engine }, reporter: Reporter): Promise<RecoverResult> {
  return withLab(opts, { lock: 'alarm recover' }, reporter, async (runtime) => {
    const ctx = await runSteps<MaintenanceContext>(RECOVER_STEPS, { runtime, reporter, opts: { force: opts.force }, defragmented: [], disarmed: [] }, reporter, { command: 'alarm recover' });
    return {
      lab: runtime.name,
      compactedTo: ctx.compactedTo!,
      defragmented: ctx.defragmented,
      disarmed: ctx.disarmed,
      writeRevision: ctx.writeRevision!,
      liveBytes: fullestAfter(ctx),
      quotaBytes: runtime.lab.spec.etcd.quotaBackendBytes,
    };
  });
}
