// `etcd-lab member list|replace` and `etcd-lab leader`: membership and leadership on a running lab,
// the way the etcd operations guide changes them — one member at a time, quorum checked before each
// step (the changes themselves, shared with scale: member-changes.ts).
import { UserError } from '../errors.js';
import { Interrupted } from '../interrupt.js';
import type { Reporter, StepHandle } from '../progress.js';
import type { LoadOptions } from '../config/load.js';
import { quorumOf, type MemberTopology } from '../config/topology.js';
import type { Engine } from '../engine/engine.js';
import { isTransient, listMembers, memberStatus, moveLeader, type ClusterMember } from '../protocol/etcd-http.js';
import { describeAnswers, etcdReason, type LabRuntime } from '../runtime/lab.js';
import { waitUntilReady } from '../runtime/readiness.js';
import { waitUntil } from '../runtime/wait.js';
import { addWhenHealthy, promoteWhenCaughtUp, removeWhenAllowed, startJoining } from './member-changes.js';
import { withLab } from './session.js';
import { runSteps, type Step } from './steps.js';
import { ExitCode } from '../exit-codes.js';

export interface MemberRow {
  /** The lab's name for it (etcd1, …), or etcd's, or "" for a member added but never started. */
  name: string;
  /** etcd's member ID (hex, as etcdctl prints it), when etcd knows the member. */
  id?: string;
  peerUrls: string[];
  clientUrls: string[];
  role: 'voter' | 'learner' | '-';
  /** What the lab expects: "as expected", "not in the cluster", "not in the spec", "peer URL differs". */
  expected: string;
}

const hex = (decimal: string) => BigInt(decimal).toString(16);


/** etcd's membership (a linearizable read), asked of a member that follows the leader. */
async function clusterMembers(runtime: LabRuntime, opts: { exclude?: string[]; step?: StepHandle } = {}): Promise<ClusterMember[]> {
  return runtime.ask('member list', (endpoint) => listMembers(endpoint, 3000), { idempotent: true, ...opts });
}

export function compareMembership(expected: MemberTopology[], actual: ClusterMember[]): MemberRow[] {
  const rows: MemberRow[] = [];
  const seen = new Set<ClusterMember>();
  for (const m of expected) {
    const found = actual.find((a) => a.name === m.name) ?? actual.find((a) => a.peerUrls.includes(m.peerUrl));
    if (!found) {
      rows.push({ name: m.name, peerUrls: [m.peerUrl], clientUrls: [m.clientUrl], role: '-', expected: 'not in the cluster' });
      continue;
    }
    seen.add(found);
    rows.push({
      name: m.name,
      id: hex(found.id),
      peerUrls: found.peerUrls,
      clientUrls: found.clientUrls,
      role: found.isLearner ? 'learner' : 'voter',
      expected: !found.peerUrls.includes(m.peerUrl) ? `peer URL differs (the spec says ${m.peerUrl})` : found.name === '' ? 'added, not started yet' : 'as expected',
    });
  }
  for (const a of actual.filter((x) => !seen.has(x))) {
    rows.push({ name: a.name, id: hex(a.id), peerUrls: a.peerUrls, clientUrls: a.clientUrls, role: a.isLearner ? 'learner' : 'voter', expected: 'not in the spec' });
  }
  return rows;
}

export async function memberList(opts: LoadOptions & { engine?: Engine }, reporter: Reporter): Promise<{ lab: string; members: MemberRow[]; coherent: boolean }> {
  return withLab(opts, {}, reporter, async (runtime) => {
    const members = compareMembership(runtime.topology.members, await clusterMembers(runtime));
    return { lab: runtime.name, members, coherent: members.every((m) => m.expected === 'as expected') };
  });
}

export interface LeaderResult {
  lab: string;
  before: string;
  leader: string;
  term: number;
  afterMs: number;
}

/** Hands leadership to `target` and waits until every answering member follows it. */
export async function moveLeadershipIn(runtime: LabRuntime, target: string, reporter: Reporter): Promise<LeaderResult> {
  const members = await runtime.members();
  const chosen = members.find((m) => m.name === target && m.container);
  if (!chosen) throw new UserError(`lab "${runtime.name}" has no member "${target}"`, { hint: `choose from: ${members.filter((m) => m.container).map((m) => m.name).join(', ')}`, exitCode: ExitCode.badInput });
  const targetEndpoint = chosen.endpoint;
  const targetStatus = targetEndpoint ? await memberStatus(targetEndpoint, 1000).catch(() => undefined) : undefined;
  if (!targetStatus) throw new UserError(`${target} does not answer: it cannot take the lead`, { hint: '`etcd-lab status` shows why; `etcd-lab start` starts it', exitCode: ExitCode.refused });
  const deadline = Date.now() + runtime.electionWaitMs;
  const before = await reporter.step('find the leader', (step) => runtime.awaitLeader(deadline, step));
  if (before.container.member === target) return { lab: runtime.name, before: target, leader: target, term: before.elected.term, afterMs: 0 };
  const started = Date.now();
  const term = await reporter.step(`move leadership ${before.container.member} → ${target}`, async (step) => {
    // Sent to whoever leads at each try (an election may move it meanwhile); done once the target leads.
    await waitUntil(
      `${target} to lead`,
      deadline,
      async () => {
        const view = await runtime.leaderView();
        if (view.container?.member === target) return { done: true, detail: `${target} leads` };
        const leaderEndpoint = view.container && runtime.memberEndpoint(view.container);
        if (!leaderEndpoint) return { done: false, detail: `waiting for a leader: ${describeAnswers(view.answers)}` };
        try {
          await moveLeader(leaderEndpoint, targetStatus.memberId, Math.max(1000, Math.min(10_000, deadline - Date.now())));
          return { done: false, detail: `${view.container!.member} handed over` };
        } catch (error) {
          if (isTransient(error)) return { done: false, detail: `${view.container!.member}: ${etcdReason(error)}` };
          throw new UserError(`etcd refused to move leadership to ${target}: ${etcdReason(error)}`, {
            hint: 'a learner cannot lead, and the target must be caught up with the leader; `etcd-lab member list` and `etcd-lab status` show both',
            exitCode: ExitCode.failedPartWay,
          });
        }
      },
      step,
      { intervalMs: 200 },
    );
    const led = await waitUntil(
      `every member to follow ${target}`,
      Date.now() + 15_000,
      async () => {
        const view = await runtime.leaderView();
        // A member cut off by `partition` still answers, naming the old leader or none: not waited for.
        const answering = view.answers.filter((a) => a.status && !runtime.isPartitioned(a.container)).length;
        const following = view.elected?.member === target ? view.elected.followers.filter((m) => !runtime.isPartitioned(view.answers.find((a) => a.container.member === m)!.container)).length : 0;
        return { done: following === answering, value: view.elected?.term, detail: `${following}/${answering} follow ${target}` };
      },
      step,
    );
    return led ?? 0;
  });
  return { lab: runtime.name, before: before.container.member, leader: target, term, afterMs: Date.now() - started };
}

export async function moveLeadership(opts: LoadOptions & { member: string; engine?: Engine; lockWaitMs?: number }, reporter: Reporter): Promise<LeaderResult> {
  return withLab(opts, { lock: 'leader', detail: `to ${opts.member}`, lockWaitMs: opts.lockWaitMs }, reporter, async (runtime) => {
    const target = opts.member === 'leader' ? (await runtime.awaitLeader(Date.now() + runtime.electionWaitMs)).container.member : opts.member;
    return moveLeadershipIn(runtime, target, reporter);
  });
}

export interface ReplaceResult {
  lab: string;
  member: string;
  oldId?: string;
  newId: string;
  elapsedMs: number;
}

/** What member replace's steps share. */
interface ReplaceContext {
  runtime: LabRuntime;
  target: MemberTopology;
  force: boolean;
  deadline: number;
  reporter: Reporter;
  /** The member in etcd's membership before (undefined when it is gone from it already). */
  old?: ClusterMember;
  added?: { added: ClusterMember; members: ClusterMember[] };
}

/**
 * Replacing a member, in order. Nothing is undone: from the removal on, a stop leaves a cluster that
 * holds quorum with one member fewer, and running it again continues from wherever it stopped.
 */
export const REPLACE_STEPS: Step<ReplaceContext>[] = [
  { title: 'preflight', run: replacePreflight },
  {
    // Leadership handed off first if it leads, to a member that answers.
    title: (ctx) => `leadership off ${ctx.target.name}`,
    reportsItself: true,
    run: async ({ runtime, target, reporter }) => {
      const view = await runtime.leaderView();
      if (view.container?.member !== target.name) return;
      const next = view.answers.find((a) => a.status && a.container.member !== target.name && !runtime.isPartitioned(a.container))?.container.member;
      if (next) await moveLeadershipIn(runtime, next, reporter);
    },
  },
  {
    title: (ctx) => `remove ${ctx.target.name} (container, cluster member, data)`,
    // From here a stop leaves the lab part-way, and running it again resumes.
    commits: true,
    run: async ({ runtime, target, old, deadline }, step) => {
      const { container } = (await runtime.member(target.name))!;
      if (container) await runtime.removeContainers([container], undefined, 5);
      if (old) {
        step.update(`etcdctl member remove ${hex(old.id)}`);
        await removeWhenAllowed(runtime, old.id, target.name, deadline, step);
      }
      await runtime.removeVolume(target.volume);
    },
  },
  {
    // As a learner: it does not count towards quorum until promoted.
    title: (ctx) => `member add ${ctx.target.name}`,
    reportsItself: true,
    run: async (ctx) => {
      ctx.added = await addWhenHealthy(ctx.runtime, ctx.target, ctx.deadline, ctx.reporter);
    },
  },
  { title: (ctx) => `start ${ctx.target.name}`, reportsItself: true, run: (ctx) => startJoining(ctx.runtime, ctx.target, ctx.added!.members, ctx.reporter, ctx.deadline) },
  { title: (ctx) => `promote ${ctx.target.name}`, reportsItself: true, run: (ctx) => promoteWhenCaughtUp(ctx.runtime, ctx.target, ctx.added!.added.id, ctx.deadline, ctx.reporter) },
  // The new member keeps the flags it joined with: etcd ignores them from now on, and compose leaves
  // it running (see LabRuntime.compose), so there is no restart onto the plain definition.
  { title: 'lab ready', reportsItself: true, run: (ctx) => waitUntilReady(ctx.runtime, ctx.deadline, ctx.reporter, { probe: 'read' }) },
];

/**
 * Replaces a member whose container or data is gone: member remove, member add (as a learner), start
 * it with `initial-cluster-state=existing`, promote it once it has caught up with the leader.
 */
export async function replaceMember(opts: LoadOptions & { member: string; force?: boolean; timeoutMs?: number; engine?: Engine }, reporter: Reporter): Promise<ReplaceResult> {
  return withLab(opts, { lock: 'member replace', warn: true, detail: opts.member }, reporter, (runtime) => replaceOn(runtime, opts.member, reporter, opts));
}

/** The replacement on a lab whose lock the caller holds (`member replace`, and `check`'s nemesis). */
export async function replaceOn(runtime: LabRuntime, member: string, reporter: Reporter, opts: { force?: boolean; timeoutMs?: number } = {}): Promise<ReplaceResult> {
  const started = Date.now();
  const { topology } = runtime;
  const target = topology.members.find((m) => m.name === member);
  if (!target) throw new UserError(`lab "${runtime.name}" has no member "${member}"`, { hint: `choose from: ${topology.members.map((m) => m.name).join(', ')}`, exitCode: ExitCode.badInput });
  const ctx: ReplaceContext = { runtime, target, force: Boolean(opts.force), deadline: Date.now() + (opts.timeoutMs ?? 120_000), reporter };
  const resume = `\`etcd-lab member replace ${target.name}\` again continues from where this stopped (\`etcd-lab member list\` shows where it stands)`;
  await runSteps(REPLACE_STEPS, ctx, reporter, {
    command: 'member replace',
    undoing: `stopping; ${resume}`,
    // Before the removal nothing changed: the error says what to do in its own words.
    failure: (error, { committed }) => {
      if (!committed) return error;
      if (error instanceof Interrupted) return new Interrupted('member replace interrupted', resume);
      return new UserError(`replacing ${target.name} stopped: ${(error as Error).message}`, { hint: (error as UserError).hint ?? resume, exitCode: (error as UserError).exitCode ?? ExitCode.failedPartWay, cause: error });
    },
  });
  return { lab: runtime.name, member: target.name, ...(ctx.old ? { oldId: hex(ctx.old.id) } : {}), newId: hex(ctx.added!.added.id), elapsedMs: Date.now() - started };
}

/** Safety: the others must hold quorum by themselves, and a healthy member is not replaced by accident. */
async function replacePreflight(ctx: ReplaceContext, step: StepHandle): Promise<void> {
  const { runtime, target, deadline } = ctx;
  const { topology } = runtime;
  // Right after a failure the others may still be electing a leader: give them the time an
  // election takes before calling quorum lost.
  const needed = quorumOf(topology.members.length);
  const others = topology.members.length - 1;
  let health: { member: string; healthy: boolean; reason: string }[] = [];
  const othersHealthy = () => health.filter((h) => h.member !== target.name && h.healthy).length;
  // Fewer of the others running than a quorum: no election can help, so no waiting for one.
  const runningOthers = (await runtime.memberContainers()).filter((c) => c.member !== target.name && c.state === 'running' && !runtime.isPartitioned(c)).length;
  await waitUntil(
    `${needed} of the other members to be healthy`,
    runningOthers < needed ? Date.now() : Math.min(deadline, Date.now() + runtime.electionWaitMs),
    async () => {
      health = await memberHealths(runtime);
      const waiting = health.filter((h) => h.member !== target.name && !h.healthy);
      return { done: othersHealthy() >= needed, detail: `${othersHealthy()}/${others} others healthy${waiting.length ? ` (${waiting.map((h) => `${h.member}: ${h.reason}`).join(', ')})` : ''}` };
    },
    step,
    { intervalMs: 200 },
  ).catch((error: unknown) => {
    if (!(error instanceof UserError)) throw error;
    throw new UserError(`only ${othersHealthy()} of the other ${others} members are healthy; the cluster needs ${needed} to change its membership`, {
      problems: health.filter((h) => !h.healthy).map((h) => ({ path: h.member, message: h.reason })),
      hint: 'with quorum lost for good, membership cannot change: restore from a snapshot instead (`etcd-lab snapshot restore FILE`); if members are only stopped, `etcd-lab start` them first',
      exitCode: ExitCode.refused,
    });
  });
  if (health.find((h) => h.member === target.name)?.healthy && !ctx.force) {
    throw new UserError(`${target.name} is healthy: replacing it throws its data away and makes the cluster send it everything again`, {
      hint: `replace a member whose container or data is gone (\`etcd-lab kill ${target.name}\` and remove its volume to rehearse it); --force replaces it anyway`,
      exitCode: ExitCode.refused,
    });
  }
  step.update('membership');
  const members = await clusterMembers(runtime, { exclude: [target.name], step });
  ctx.old = members.find((m) => m.name === target.name) ?? members.find((m) => m.peerUrls.includes(target.peerUrl));
}

/** Each member's /health (a full space quota still counts as serving). */
async function memberHealths(runtime: LabRuntime): Promise<{ member: string; healthy: boolean; reason: string }[]> {
  return (await runtime.memberHealth(undefined, 1000, { excludeNoSpace: true })).map((m) => ({ member: m.name, ...m.health }));
}
