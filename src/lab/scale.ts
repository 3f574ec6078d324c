// `etcd-lab scale <n>`: membership grows and shrinks one member at a time on a running lab. New
// members join as learners and are promoted once caught up (etcd's advice since 3.4); leaving
// members hand leadership off first and are removed before they stop. HAProxy is reloaded in place,
// never restarted, and the members that stay keep running. Afterwards the spec, the generated files,
// HAProxy's backends and etcd's membership all say n, so `up` changes nothing.
import { UserError } from '../errors.js';
import { Interrupted, sleep } from '../interrupt.js';
import { HARD_STOP_AFTER_MS } from '../render/haproxy.js';
import type { Reporter, StepHandle } from '../progress.js';
import type { LoadOptions } from '../config/load.js';
import { resizedLab, writeMemberCount } from '../config/edit.js';
import { Invalid } from '../config/fields.js';
import { memberCount } from '../config/read.js';
import { memberName, quorumOf } from '../config/topology.js';
import type { Engine } from '../engine/engine.js';
import { listMembers } from '../protocol/etcd-http.js';
import { LabRuntime } from '../runtime/lab.js';
import { waitUntilReady } from '../runtime/readiness.js';
import { waitUntil } from '../runtime/wait.js';
import { writeLabFiles } from './generate.js';
import { moveLeadershipIn } from './membership.js';
import { addWhenHealthy, promoteWhenCaughtUp, removeWhenAllowed, startJoining } from './member-changes.js';
import { withLab } from './session.js';
import { runSteps, type Step } from './steps.js';
import { ExitCode } from '../exit-codes.js';

export interface ScaleOptions extends LoadOptions {
  members: number;
  timeoutMs?: number;
  engine?: Engine;
}

export interface ScaleResult {
  lab: string;
  from: number;
  to: number;
  added: string[];
  removed: string[];
  spec: string;
  elapsedMs: number;
}

/** What scale's steps share: the lab at its current size, at the new one, and what changed so far. */
interface ScaleContext {
  current: LabRuntime;
  /** The lab at the new size (its spec, files and topology). */
  next: LabRuntime;
  /** The files at the current size: what the undo writes back. */
  previous: LabRuntime;
  from: number;
  to: number;
  reporter: Reporter;
  /** Each step's deadline: waits, and the compose runs between them. */
  deadline: () => number;
  added: string[];
  removed: string[];
  /** A view of the first k members (between steps the lab has k, even ones too). */
  sized: (k: number) => LabRuntime;
  /** HAProxy was reloaded without the leaving members: its previous process still holds connections. */
  reloaded?: boolean;
  /** The new count is in etcd-lab.yaml: the membership change is whole. */
  recorded?: boolean;
}

/** HAProxy learns a new membership by a reload in place: its listening sockets pass to the new process. */
const reloadHaproxy = async (ctx: ScaleContext, step: StepHandle) => {
  ctx.reloaded = await ctx.next.reloadHaproxy(ctx.deadline(), step);
};

/**
 * The steps from `from` to `to` members, one member at a time: joining members added as learners,
 * started, promoted once caught up; leaving ones, from the highest, handed leadership off and
 * removed before they stop. Until a member joined or left, a failure puts the files and HAProxy
 * back; after that the error says how far it got (etcd's membership cannot be rolled back).
 */
export function scaleSteps(from: number, to: number): Step<ScaleContext>[] {
  const generate: Step<ScaleContext> = {
    title: `generate files for ${to} members`,
    run: async (ctx) => void (await writeLabFiles(ctx.next.lab)),
    undo: async (ctx) => {
      await writeLabFiles(ctx.previous.lab);
      await ctx.current.reloadHaproxy(Date.now() + 10_000).catch(() => {});
      for (const m of ctx.next.topology.members.slice(from)) await ctx.current.removeVolume(m.volume).catch(() => {});
      return [`files for ${to} members`];
    },
  };
  const changes = to > from ? joinSteps(from, to) : leaveSteps(from, to);
  return [
    { title: 'preflight', run: preflight },
    generate,
    ...changes,
    {
      title: `record members: ${to} in etcd-lab.yaml`,
      run: async (ctx) => {
        await writeMemberCount(ctx.current.lab.configPath!, to);
        ctx.recorded = true;
      },
    },
    ...(to > from
      ? [
          {
            // A failure here is HAProxy's alone: the membership change is done, and `up` reloads HAProxy.
            title: `HAProxy reloaded with ${to} backends (listening sockets kept)`,
            run: (ctx: ScaleContext, step: StepHandle) =>
              reloadHaproxy(ctx, step).catch((error: unknown) => {
                throw new UserError(`${to} members serve, but HAProxy was not reloaded with them: ${(error as Error).message}`, {
                  hint: '`etcd-lab up` reloads it (`etcd-lab logs haproxy` says what it refused); the membership change itself is done',
                  exitCode: ExitCode.failedPartWay,
                  cause: error,
                });
              }),
          },
        ]
      : []),
    { title: 'lab ready', reportsItself: true, run: (ctx) => waitUntilReady(ctx.next, ctx.deadline(), ctx.reporter, { probe: 'read' }) },
  ];
}

/** Member k joins: etcd has k - 1 voters meanwhile, so the leader is the one a quorum of those names. */
function joinSteps(from: number, to: number): Step<ScaleContext>[] {
  return Array.from({ length: to - from }, (_, i) => {
    const k = from + i + 1;
    const name = memberName(k);
    return {
      title: `${name} joins as a learner, starts, is promoted and serves`,
      reportsItself: true,
      // Once etcd has it in its membership, there is no taking the files back.
      commits: (ctx: ScaleContext) => ctx.added.includes(name),
      run: async (ctx: ScaleContext) => {
        const member = ctx.next.topology.members[k - 1]!;
        const before = ctx.sized(k - 1);
        const joined = await addWhenHealthy(before, member, ctx.deadline(), ctx.reporter);
        ctx.added.push(member.name); // in etcd's membership from here on, whatever happens next
        await startJoining(ctx.next, member, joined.members, ctx.reporter, ctx.deadline());
        await promoteWhenCaughtUp(before, member, joined.added.id, ctx.deadline(), ctx.reporter);
        await waitUntilMembersServe(ctx.sized(k), ctx.deadline(), ctx.reporter);
      },
    };
  });
}

/** HAProxy first stops sending clients to the leaving members; then they leave from the highest. */
function leaveSteps(from: number, to: number): Step<ScaleContext>[] {
  const steps: Step<ScaleContext>[] = [
    { title: `HAProxy reloaded with ${to} backends (listening sockets kept)`, run: reloadHaproxy },
    {
      // The replaced HAProxy process keeps the connections it has, some on members about to
      // leave, until hard-stop-after; once it is gone no client waits on a leaving member.
      title: "HAProxy's previous process lets go of its connections (hard-stop-after)",
      when: (ctx) => Boolean(ctx.reloaded),
      run: () => sleep(HARD_STOP_AFTER_MS + 250),
    },
  ];
  for (let k = from; k > to; k--) {
    const name = memberName(k);
    steps.push(
      {
        // etcd has k voters while member k leaves: the leader is the one a quorum of those names.
        title: `leadership off ${name}`,
        reportsItself: true,
        run: async (ctx) => {
          const at = ctx.sized(k);
          if ((await at.leader()) === name) await moveLeadershipIn(at, memberName(1), ctx.reporter);
        },
      },
      { title: `member remove ${name}; its container and data`, commits: (ctx) => ctx.removed.includes(name), run: (ctx, step) => removeMember(ctx, k, step) },
      { title: `${k - 1} members agree on a leader`, run: (ctx, step) => waitUntilQuorum(ctx.sized(k - 1), quorumOf(k - 1), ctx.deadline(), step) },
    );
  }
  return steps;
}

/** Past a join or a leave: etcd's membership changed, so the error says how far it got and what to do. */
function stoppedPartWay(ctx: ScaleContext, error: unknown): unknown {
  const { added, removed, from } = ctx;
  // Every member joined or left and the count is recorded: what failed after (HAProxy's reload, the
  // readiness proof) says what to do in its own words. (Ctrl-C there is said as below.)
  if (ctx.recorded && !(error instanceof Interrupted)) return error;
  const now = from + added.length - removed.length;
  return new UserError(`scaling stopped with ${now} members in etcd's membership (${[...added.map((m) => `${m} added`), ...removed.map((m) => `${m} removed`)].join(', ')}): ${(error as Error).message}`, {
    hint:
      `\`etcd-lab member list\` shows etcd's view beside the lab's; etcd-lab.yaml still says ${from}. ` +
      (added.length > 0
        ? 'A member that joined but does not serve can be taken out with `etcdctl member remove <ID>` (then `docker rm -f` its container)'
        : 'The members that left are gone for good: set members: in etcd-lab.yaml to what etcd has'),
    exitCode: error instanceof Interrupted ? ExitCode.interrupted : ExitCode.failedPartWay,
    cause: error,
  });
}

async function removeMember(ctx: ScaleContext, k: number, step: StepHandle): Promise<void> {
  const member = ctx.current.topology.members[k - 1]!;
  const at = ctx.sized(k);
  const listed = await at.ask('member list', (endpoint) => listMembers(endpoint, 3000), { idempotent: true, exclude: [member.name], deadline: ctx.deadline(), step });
  const found = listed.find((m) => m.peerUrls.includes(member.peerUrl));
  if (found) await removeWhenAllowed(at, found.id, member.name, ctx.deadline(), step);
  ctx.removed.push(member.name);
  step.update('stopping');
  const { container } = (await ctx.current.member(member.name))!;
  if (container) await ctx.current.removeContainers([container], undefined, 5);
  await ctx.current.removeVolume(member.volume);
}

/** A whole and healthy lab whose etcd membership is the members the lab expects. */
async function preflight(ctx: ScaleContext, step: StepHandle): Promise<void> {
  const { current, from } = ctx;
  // Right after a failure, an election may still run: wait for it, so that only the members that
  // are really down are named below.
  await current.awaitLeader(Date.now() + current.electionWaitMs, step).catch(() => undefined);
  const unhealthy = await current.unhealthyMembers();
  if (unhealthy.length > 0) {
    throw new UserError(`${unhealthy.join(', ')} ${unhealthy.length === 1 ? 'is' : 'are'} not healthy: membership changes start from a healthy cluster`, {
      hint: 'while a member joins, the cluster counts it towards quorum as soon as it is promoted, and while one leaves it has one fewer to lose: `etcd-lab start` or `etcd-lab member replace` first',
      exitCode: ExitCode.refused,
    });
  }
  const members = await current.ask('member list', (endpoint) => listMembers(endpoint, 3000), { idempotent: true, step });
  const expected = current.topology.members.map((m) => m.peerUrl).sort();
  const actual = members.map((m) => m.peerUrls[0] ?? '').sort();
  if (members.some((m) => m.isLearner) || expected.join() !== actual.join()) {
    throw new UserError(`etcd's membership is not the ${from} members the lab expects`, { hint: '`etcd-lab member list` shows the difference; `etcd-lab member replace` mends one member', exitCode: ExitCode.refused });
  }
}

export async function scale(opts: ScaleOptions, reporter: Reporter): Promise<ScaleResult> {
  // A count etcd is safe with, checked before anything else runs.
  const refused = memberCount(opts.members);
  if (refused instanceof Invalid) {
    throw new UserError(`cannot scale to ${opts.members} members: the count ${refused.message}`, { hint: refused.fix, exitCode: ExitCode.badInput });
  }
  return withLab(opts, { lock: 'scale', warn: true, detail: `to ${opts.members} members` }, reporter, async (current) => {
    const started = Date.now();
    const from = current.lab.spec.members;
    const to = opts.members;
    if (to === from) throw new UserError(`lab "${current.name}" already has ${to} members`, { exitCode: ExitCode.nothingDone });
    if (!current.lab.configPath) {
      throw new UserError('scale records the member count in etcd-lab.yaml, and there is none here', { hint: 'run `etcd-lab init` first (or point --config at yours)', exitCode: ExitCode.badInput });
    }
    // The spec at each size, validated as any spec (the subnet must hold every address), on the
    // images the lab runs now (a local stand-in, say), not whatever the spec would pull.
    const images = { etcdImage: (await current.memberContainers())[0]?.image, haproxyImage: (await current.haproxyContainer())?.image };
    const onImages = { ...current.lab, local: { ...current.lab.local, ...definedOnly(images) } };
    const sizedRuntime = (k: number) => current.on(resizedLab(onImages, k));
    const next = sizedRuntime(to);
    const stepMs = opts.timeoutMs ?? 120_000;
    const ctx: ScaleContext = {
      current,
      next,
      previous: sizedRuntime(from),
      from,
      to,
      reporter,
      deadline: () => Date.now() + stepMs,
      added: [],
      removed: [],
      sized: (k) => (k === to ? next : sizedRuntime(k)),
    };
    await runSteps(scaleSteps(from, to), ctx, reporter, { command: 'scale', failure: (error, { committed }) => (committed ? stoppedPartWay(ctx, error) : error) });
    return { lab: current.name, from, to, added: ctx.added, removed: ctx.removed, spec: current.lab.configPath, elapsedMs: Date.now() - started };
  });
}

/** The entries of `values` that are set: an override that leaves the rest as it was. */
function definedOnly<T extends Record<string, string | undefined>>(values: T): Partial<Record<keyof T, string>> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<Record<keyof T, string>>;
}

async function waitUntilQuorum(runtime: LabRuntime, needed: number, deadline: number, step: StepHandle): Promise<void> {
  await waitUntil(
    'the remaining members to agree on a leader',
    deadline,
    async () => {
      const view = await runtime.leaderView();
      const answering = view.answers.filter((a) => a.status).length;
      const following = view.elected?.followers.length ?? 0;
      return { done: view.container !== undefined && following >= needed && following === answering, detail: `${answering} answering, ${following} following ${view.elected?.member ?? 'a leader'}` };
    },
    step,
  );
}

/** The first k members agree on one leader and each answers /health: a joined member serves. */
async function waitUntilMembersServe(runtime: LabRuntime, deadline: number, reporter: Reporter): Promise<void> {
  const n = runtime.topology.members.length;
  await reporter.step(`${n} members serve`, (step) =>
    waitUntil(
      `the ${n} members to serve`,
      deadline,
      async () => {
        const [view, unhealthy] = await Promise.all([runtime.leaderView(), runtime.unhealthyMembers()]);
        const following = view.elected?.followers.length ?? 0;
        return { done: following === n && unhealthy.length === 0, detail: `${following}/${n} following ${view.elected?.member ?? 'a leader'}${unhealthy.length ? `; not healthy: ${unhealthy.join(', ')}` : ''}` };
      },
      step,
      { intervalMs: 200 },
    ),
  );
}
