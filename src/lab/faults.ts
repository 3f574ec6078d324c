// Failure play on a running lab: kill, stop, start, pause, unpause, partition, loss, blackhole,
// delay and heal members, each followed by the quorum state it leaves. Targets are found by label;
// "leader" resolves to the member the cluster currently follows. As a command (`fault`), one at a
// time on a lab this checkout owns: a failure or Ctrl-C half-way through several members puts back the ones
// already done; Ctrl-C while waiting for the election or for members to serve only stops the wait.
import { UserError } from '../errors.js';
import type { Reporter } from '../progress.js';
import type { Engine } from '../engine/engine.js';
import type { LoadOptions } from '../config/load.js';
import { withLab } from './session.js';
import { quorumState } from '../config/topology.js';
import { memberViews, type LabMemberContainer, type LabRuntime } from '../runtime/lab.js';
import { waitUntilReady } from '../runtime/readiness.js';
import { waitUntil } from '../runtime/wait.js';
import { electedLeader } from '../runtime/leader.js';
import { Interrupted, throwIfInterrupted } from '../interrupt.js';
import { runSteps, type Step } from './steps.js';
import { ExitCode } from '../exit-codes.js';
import { appendEvent, newEventId } from '../runtime/event-log.js';
import { impairmentOf, impairments, isImpairment } from '../runtime/impairments.js';
import { impair, unimpair } from './network-faults.js';
import { DEFAULT_DELAY_MS, DEFAULT_LOSS_PERCENT } from '../config/defaults.js';

export const FAULT_ACTIONS = ['kill', 'stop', 'start', 'pause', 'unpause', 'partition', 'loss', 'blackhole', 'delay', 'heal'] as const;
export type FaultAction = (typeof FAULT_ACTIONS)[number];

/** The actions that take a member out of the quorum: on the leader, an election follows. */
const TAKES_OUT: readonly FaultAction[] = ['kill', 'stop', 'pause', 'partition', 'blackhole'];

export interface AliveState {
  alive: number;
  members: number;
  quorum: number;
  held: boolean;
  tolerates: number;
  text: string;
}

export interface FaultResult {
  action: FaultAction;
  members: string[];
  /** One line per thing done: "etcd2: SIGKILL". */
  done: string[];
  leaderBefore?: string;
  /** After a leader was taken out with quorum left: who took over, at which term, how fast. */
  election?: { leader: string; term: number; afterMs: number };
  state: AliveState;
}

/** Alive = running, not paused, and on the lab network. Docker's view: no waiting on etcd. */
export function aliveState(alive: number, members: number): AliveState {
  const q = quorumState(alive, members, 'alive');
  return { alive, members, quorum: q.needed, held: q.held, tolerates: q.tolerates, text: q.text };
}

export function isAlive(runtime: LabRuntime, c: LabMemberContainer): boolean {
  return c.state === 'running' && !runtime.isPartitioned(c);
}

/** Members taken out (stopped, paused, cut off or impaired), as "etcd2 (exited)": what an interrupted command would leave. */
export async function membersOut(runtime: LabRuntime): Promise<string[]> {
  const impaired = new Map((await impairments(runtime)).map((h) => [impairmentOf(h).member, impairmentOf(h).kind]));
  return (await runtime.memberContainers())
    .filter((c) => !isAlive(runtime, c) || impaired.has(c.member))
    .map((c) => `${c.member} (${c.state}${runtime.isPartitioned(c) ? ', cut off' : ''}${impaired.has(c.member) ? `, ${impaired.get(c.member)}` : ''})`);
}

/** The named members; "leader" is the leader now, waited for while an election runs (one lookup, shared with the election wait). */
async function resolveTargets(runtime: LabRuntime, names: string[], containers: LabMemberContainer[], leader: () => Promise<string>): Promise<LabMemberContainer[]> {
  const known = containers.map((c) => c.member);
  const targets: LabMemberContainer[] = [];
  for (const name of names) {
    const member = name === 'leader' ? await leader() : name;
    const container = containers.find((c) => c.member === member || c.name === member);
    if (!container) {
      throw new UserError(`lab "${runtime.name}" has no member "${name}"`, { hint: `choose from: ${known.join(', ')}, or leader` });
    }
    if (!targets.includes(container)) targets.push(container);
  }
  return targets;
}

/**
 * A member that stops loses its network namespace, and the rules in it: its impairment helpers hold
 * nothing any more (a start gives it a fresh namespace), so they go.
 */
async function forgetImpairments(runtime: LabRuntime, member: string): Promise<void> {
  for (const helper of (await impairments(runtime)).filter((h) => impairmentOf(h).member === member)) await runtime.removeContainer(helper, 0);
}

/** What each action does to one member, and the line that says so. */
const PERFORM: Record<FaultAction, (runtime: LabRuntime, c: LabMemberContainer, opts: FaultOptions) => Promise<string>> = {
  kill: async (runtime, c) => {
    await runtime.kill(c);
    await forgetImpairments(runtime, c.member);
    return `${c.member}: SIGKILL (no graceful leadership transfer)`;
  },
  stop: async (runtime, c) => {
    await runtime.stop(c);
    await forgetImpairments(runtime, c.member);
    return `${c.member}: stopped (SIGTERM; a leader hands over first)`;
  },
  start: async (runtime, c) => {
    await forgetImpairments(runtime, c.member);
    await runtime.start(c);
    return `${c.member}: started`;
  },
  pause: async (runtime, c) => {
    await runtime.pause(c);
    return `${c.member}: paused (frozen, connections stay open)`;
  },
  unpause: async (runtime, c) => {
    await runtime.unpause(c);
    return `${c.member}: unpaused`;
  },
  partition: async (runtime, c) => {
    if (runtime.isPartitioned(c)) return `${c.member}: already cut off`;
    await runtime.cutOff(c);
    return `${c.member}: cut off from the lab network`;
  },
  loss: async (runtime, c, opts) => impair(runtime, c, { kind: 'loss', percent: opts.lossPercent ?? DEFAULT_LOSS_PERCENT }),
  blackhole: async (runtime, c) => impair(runtime, c, { kind: 'blackhole' }),
  delay: async (runtime, c, opts) => impair(runtime, c, { kind: 'delay', ms: opts.delayMs ?? DEFAULT_DELAY_MS }),
  heal: async (runtime, c) => {
    const done: string[] = [];
    for (const helper of (await impairments(runtime)).filter((h) => impairmentOf(h).member === c.member)) done.push(await unimpair(runtime, helper));
    if (runtime.isPartitioned(c)) done.push(`${c.member}: back on the lab network at ${await runtime.reconnect(c)}`);
    return done.join('; ') || `${c.member}: not cut off or impaired`;
  },
};

export interface FaultOptions {
  /** Wait for the election after a leader is taken out, or for convergence after a member returns. */
  wait?: boolean;
  timeoutMs?: number;
  /** `loss`: the share of peer packets dropped, 1–99. */
  lossPercent?: number;
  /** `delay`: how long the member's own peer connections hold each chunk, each way (ms). */
  delayMs?: number;
}

/** What a fault's steps share, and how far it got. */
interface FaultContext {
  runtime: LabRuntime;
  action: FaultAction;
  names: string[];
  reporter: Reporter;
  opts: FaultOptions;
  targets: LabMemberContainer[];
  /** The leader before, looked up once: the member taken out and the one whose election is awaited are the same. */
  leaderBefore?: { member: string; term: number };
  /** The members acted on so far, and what was said of each. */
  acted: LabMemberContainer[];
  done: string[];
  /** What a half-way stop put back. */
  undone: string[];
  started: number;
  result?: FaultResult;
}

/**
 * A fault as steps: which members (nothing changes until they are known), the network helper's
 * image when it needs one, the action on each member — undone when it stops half-way, and past the
 * point of no return once every member is done — then the wait for the election, or for the members
 * to serve again (Ctrl-C there only ends the wait).
 */
export const FAULT_STEPS: Step<FaultContext>[] = [
  { title: 'which members', reportsItself: true, run: chooseTargets },
  {
    title: "the network helper's image",
    reportsItself: true,
    when: (ctx) => isImpairment(ctx.action),
    // Built the first time (or again when its recipe changed).
    run: async (ctx) => void (await ctx.runtime.buildImages({ nettoolsOnly: true }, ctx.reporter)),
  },
  {
    title: (ctx) => `${ctx.action} ${ctx.targets.map((t) => t.member).join(', ') || '(nothing to do)'}`,
    commits: (ctx) => ctx.acted.length === ctx.targets.length,
    run: async (ctx) => {
      ctx.started = Date.now();
      for (const c of ctx.targets) {
        throwIfInterrupted();
        ctx.done.push(await PERFORM[ctx.action](ctx.runtime, c, ctx.opts));
        ctx.acted.push(c);
        // The moment it happened, for the lab's event log (check's faults too, not only the commands').
        const leader = ctx.leaderBefore?.member === c.member ? ` (the leader, term ${ctx.leaderBefore.term})` : '';
        appendEvent(ctx.runtime.lab.outDir, { id: newEventId(), phase: 'point', op: ctx.action, detail: `${c.member}${leader}` });
      }
    },
    undo: async (ctx) => {
      const restore = RESTORE[ctx.action];
      if (!restore) return [];
      const now = await ctx.runtime.memberContainers();
      for (const c of ctx.acted) {
        const fresh = now.find((x) => x.id === c.id);
        if (fresh) ctx.undone.push(await PERFORM[restore](ctx.runtime, fresh, {}));
      }
      return ctx.undone;
    },
  },
  {
    title: 'the election, or the members serving again',
    reportsItself: true,
    run: async (ctx) => {
      const { runtime, action, targets, opts } = ctx;
      const after = await runtime.memberContainers();
      // A member that hears none of its peers is out of the quorum, whatever Docker says of it.
      const deaf = new Set((await impairments(runtime)).filter((h) => impairmentOf(h).kind === 'blackhole').map((h) => impairmentOf(h).member));
      const alive = after.filter((c) => isAlive(runtime, c) && !deaf.has(c.member));
      const state = aliveState(alive.length, runtime.topology.members.length);
      const result: FaultResult = (ctx.result = { action, members: targets.map((t) => t.member), done: ctx.done, ...(ctx.leaderBefore ? { leaderBefore: ctx.leaderBefore.member } : {}), state });
      if (opts.wait === false || targets.length === 0) return;
      const deadline = Date.now() + (opts.timeoutMs ?? Math.max(15_000, 10 * runtime.lab.spec.etcd.electionTimeoutMs));
      await waitAfter(runtime, action, ctx.reporter, { leaderBefore: ctx.leaderBefore, targets, alive, state, started: ctx.started, deadline, result });
    },
  },
];

export async function applyFault(
  runtime: LabRuntime,
  action: FaultAction,
  names: string[],
  reporter: Reporter,
  opts: FaultOptions = {},
): Promise<FaultResult> {
  const ctx: FaultContext = { runtime, action, names, reporter, opts, targets: [], acted: [], done: [], undone: [], started: Date.now() };
  await runSteps(FAULT_STEPS, ctx, reporter, {
    command: action,
    undoing: 'stopping: members already acted on are put back if the action was half-way, a finished action stays',
    leftovers: () => membersOut(runtime),
    // Half-way: what was put back; past it (the wait): the action stands.
    failure: (error, { committed }) => {
      if (!(error instanceof Interrupted)) return error;
      if (committed) return new Interrupted(`stopped waiting; done: ${ctx.done.join('; ')}`, '`etcd-lab status` shows where the lab stands');
      if (ctx.acted.length === 0) return new Interrupted(`${action} interrupted before it acted on any member`);
      return new Interrupted(`${action} interrupted half-way${ctx.undone.length > 0 ? `; undone: ${ctx.undone.join('; ')}` : ''}`);
    },
  });
  return ctx.result!;
}

/** The members the action takes, checked before anything changes; the leader named once. */
async function chooseTargets(ctx: FaultContext): Promise<void> {
  const { runtime, action, names, reporter, opts } = ctx;
  await runtime.ping();
  const containers = await runtime.memberContainers();
  if (containers.length === 0) throw new UserError(`lab "${runtime.name}" is not running`, { hint: 'start it with `etcd-lab up`' });
  if (opts.lossPercent !== undefined && !(Number.isInteger(opts.lossPercent) && opts.lossPercent >= 1 && opts.lossPercent <= 99)) {
    throw new UserError(`--percent takes a whole number from 1 to 99 (got ${opts.lossPercent}; all of it is \`etcd-lab partition\`)`, { exitCode: ExitCode.badInput });
  }
  if (opts.delayMs !== undefined && !(Number.isInteger(opts.delayMs) && opts.delayMs >= 1 && opts.delayMs <= 10_000)) {
    throw new UserError(`--ms takes a whole number from 1 to 10000 (got ${opts.delayMs})`, { exitCode: ExitCode.badInput });
  }
  // Without names, the returning actions take every member that needs it.
  let targetNames = names;
  if (names.length === 0) {
    const impaired = action === 'heal' ? new Set((await impairments(runtime)).map((h) => impairmentOf(h).member)) : new Set<string>();
    const needing: Partial<Record<FaultAction, (c: LabMemberContainer) => boolean>> = {
      start: (c) => c.state !== 'running' && c.state !== 'paused',
      unpause: (c) => c.state === 'paused',
      heal: (c) => runtime.isPartitioned(c) || impaired.has(c.member),
    };
    const need = needing[action];
    if (!need) throw new UserError(`\`etcd-lab ${action}\` needs a member: ${containers.map((c) => c.member).join(', ')}, or leader`, { exitCode: ExitCode.badInput });
    targetNames = containers.filter(need).map((c) => c.member);
  }
  const findLeader = async (): Promise<string> => {
    if (!ctx.leaderBefore) {
      const view = await reporter.step('find the leader', (step) =>
        runtime.awaitLeader(Date.now() + runtime.electionWaitMs, step).catch((error: unknown) => {
          if (error instanceof UserError) throw new UserError(error.message, { hint: `name a member instead: ${containers.map((c) => c.member).join(', ')}`, exitCode: ExitCode.refused });
          throw error;
        }),
      );
      ctx.leaderBefore = { member: view.container.member, term: view.elected.term };
    }
    return ctx.leaderBefore.member;
  };
  ctx.targets = await resolveTargets(runtime, targetNames, containers, findLeader);
  if (!ctx.leaderBefore && TAKES_OUT.includes(action)) {
    const view = await runtime.leaderView();
    if (view.container && view.elected) ctx.leaderBefore = { member: view.container.member, term: view.elected.term };
  }
}

/** After the action: the election when the leader went, convergence when members came back. */
async function waitAfter(
  runtime: LabRuntime,
  action: FaultAction,
  reporter: Reporter,
  w: { leaderBefore?: { member: string; term: number }; targets: LabMemberContainer[]; alive: LabMemberContainer[]; state: AliveState; started: number; deadline: number; result: FaultResult },
): Promise<void> {
  const { leaderBefore, targets, alive, state, started, deadline, result } = w;
  // Only actions that take a member out of the quorum end its leadership: a leader given loss or
  // delay may well stay leader (`loss leader` is no election to wait for).
  const leaderGone = TAKES_OUT.includes(action) && leaderBefore !== undefined && targets.some((t) => t.member === leaderBefore!.member);
  if (leaderGone && state.held) {
    result.election = await reporter.step('election', (step) =>
      waitUntil(
        'a new leader',
        deadline,
        async () => {
          // The one rule, over the members still alive: a quorum names one of them in a newer term.
          const answers = await runtime.statuses(alive, 500);
          const elected = electedLeader(
            memberViews(answers),
            state.members,
          );
          const leader = elected && elected.term > leaderBefore!.term ? elected.member : undefined;
          return leader
            ? { done: true, value: { leader, term: elected!.term, afterMs: Date.now() - started }, detail: `${leader} leads at term ${elected!.term}` }
            : { done: false, detail: `${answers.filter((a) => a.status).length}/${alive.length} answering, no new leader yet` };
        },
        step,
      ),
    );
  }
  const returning = ['start', 'unpause', 'heal'].includes(action);
  if (returning && state.held) {
    await waitUntilReady(runtime, deadline, reporter, {
      members: alive.map((c) => c.member),
      hint: 'see `etcd-lab status` and `etcd-lab logs <member>`',
    });
  }
}

/** What puts a member back after each action that takes it out. */
export const RESTORE: Partial<Record<FaultAction, FaultAction>> = { kill: 'start', stop: 'start', pause: 'unpause', partition: 'heal', loss: 'heal', blackhole: 'heal', delay: 'heal' };

/**
 * Puts every member back: starts the stopped, thaws the paused, heals the cut off and the impaired
 * (Docker's side only: the members rejoin by themselves). What `check` does after any failure or Ctrl-C.
 */
export async function restoreLab(runtime: LabRuntime, reporter: Reporter): Promise<string[]> {
  const done: string[] = [];
  await reporter.step('restore every member', async () => {
    for (const c of await runtime.memberContainers()) {
      if (c.state === 'paused') done.push(await PERFORM.unpause(runtime, c, {}));
      else if (c.state !== 'running') done.push(await PERFORM.start(runtime, c, {}));
    }
    for (const helper of await impairments(runtime)) done.push(await unimpair(runtime, helper));
    for (const c of await runtime.memberContainers()) if (runtime.isPartitioned(c)) done.push(await PERFORM.heal(runtime, c, {}));
  });
  return done;
}

export interface FaultCommandOptions extends LoadOptions {
  action: FaultAction;
  members: string[];
  wait?: boolean;
  timeoutMs?: number;
  lossPercent?: number;
  delayMs?: number;
  engine?: Engine;
  /** How long to wait for another command's lock (the dashboard's buttons: not at all). */
  lockWaitMs?: number;
}

export async function fault(opts: FaultCommandOptions, reporter: Reporter): Promise<FaultResult> {
  return withLab(opts, { lock: opts.action, detail: opts.members.join(', ') || undefined, lockWaitMs: opts.lockWaitMs }, reporter, (runtime) =>
    applyFault(runtime, opts.action, opts.members, reporter, { wait: opts.wait, timeoutMs: opts.timeoutMs, lossPercent: opts.lossPercent, delayMs: opts.delayMs }),
  );
}
