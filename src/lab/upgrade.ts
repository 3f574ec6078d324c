// `etcd-lab upgrade --etcd-image REF`: a rolling upgrade as etcd's upgrade guides do it — a snapshot
// first, then one member at a time (followers first, the leader last after handing leadership to an
// upgraded member), each recreated on the new image with its own data volume and proven healthy and
// caught up before the next. It stops at the first member that does not come back, quorum held.
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { Interrupted } from '../interrupt.js';
import type { Reporter, StepHandle } from '../progress.js';
import type { LoadOptions } from '../config/load.js';
import { ENV_VARS } from '../config/local.js';
import { setInDotenv } from '../config/edit.js';
import { memberImageVar } from '../render/etcd-flags.js';
import { ENV_FILE } from '../render/index.js';
import type { Engine } from '../engine/engine.js';
import { memberHealth, memberStatus, versions } from '../protocol/etcd-http.js';
import type { LabRuntime } from '../runtime/lab.js';
import { waitUntilReady } from '../runtime/readiness.js';
import { waitUntil } from '../runtime/wait.js';
import { writeLabFiles } from './generate.js';
import { moveLeadershipIn } from './membership.js';
import { saveSnapshotOf } from './snapshot.js';
import { withLab } from './session.js';
import { runSteps, type Step } from './steps.js';
import { ExitCode } from '../exit-codes.js';

export interface UpgradeOptions extends LoadOptions {
  image: string;
  /** Per member: how long it may take to be healthy and caught up on the new image. */
  timeoutMs?: number;
  engine?: Engine;
}

export interface UpgradeResult {
  lab: string;
  image: string;
  snapshot: string;
  before: { servers: Record<string, string>; cluster: string };
  after: { servers: Record<string, string>; cluster: string };
  /** In the order they were upgraded, with how long each took. */
  members: { member: string; wasLeader: boolean; ms: number }[];
  elapsedMs: number;
}

/** "3.5.16" → [3, 5]. */
export function minorOf(version: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

const below = (a: [number, number], b: [number, number]) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

/**
 * etcd's rules: one minor version at a time, and no way back (3.6 brings a downgrade API; 3.4/3.5
 * have none). `servers` too: right after the last member moves (or halfway through), the cluster
 * version still names the old minor while members already run — and wrote data as — the new one.
 */
export function upgradeRefusal(cluster: string, target: string, servers: Record<string, string> = {}): string | undefined {
  const from = minorOf(cluster);
  const to = minorOf(target);
  if (!from || !to) return undefined;
  if (below(to, from)) {
    return `that is a downgrade (cluster version ${cluster} → ${target}): etcd raises the cluster version and its data format only forward, and etcd before 3.6 has no way down — restore the snapshot taken before the upgrade instead`;
  }
  const ahead = Object.entries(servers).filter(([, version]) => {
    const v = minorOf(version);
    return v !== undefined && below(to, v);
  });
  if (ahead.length > 0) {
    return `that is a downgrade (${ahead.map(([m, v]) => `${m} runs ${v}`).join(', ')} → ${target}): a member's data, once written by a newer etcd, cannot go back to an older one, whatever the cluster version still says — finish with the newer image, or restore the snapshot taken before the upgrade`;
  }
  if (to[0] !== from[0] || to[1] > from[1] + 1) {
    return `that skips a minor version (cluster version ${cluster} → ${target}): etcd supports upgrading one minor version at a time (3.4 → 3.5 → 3.6)`;
  }
  return undefined;
}

/** The etcd version an image holds (`etcd --version`), read in a container of its own. */
export async function etcdVersionInImage(runtime: LabRuntime, image: string): Promise<string> {
  if (!(await runtime.imageExists(image))) {
    const pulled = await runtime.pullImage(image);
    if (!pulled.ok) {
      throw new UserError(`image ${image} is not on this machine and cannot be pulled: ${pulled.reason}`, {
        hint: 'without a registry, `etcd-lab images build --etcd-version 3.4` builds etcd 3.4 (etcd-lab/etcd:3.4-bookworm) and 3.5 (etcd-lab/etcd:trixie) from Debian packages',
        exitCode: ExitCode.refused,
      });
    }
  }
  const run = await runtime.runTool({ image, command: ['etcd', '--version'], timeoutMs: 30_000 });
  const version = /etcd Version:\s*(\S+)/.exec(run.output)?.[1];
  if (run.exitCode !== 0 || !version) {
    throw new UserError(`\`etcd --version\` in ${image} does not say which etcd it is: ${run.output.split('\n').at(-1)?.slice(0, 160)}`, {
      hint: 'is it an etcd image? It must have etcd on its PATH',
      exitCode: ExitCode.refused,
    });
  }
  return version;
}

export async function versionsOf(runtime: LabRuntime): Promise<{ servers: Record<string, string>; cluster: string }> {
  const servers: Record<string, string> = {};
  let cluster = '';
  for (const m of await runtime.members()) {
    const v = m.endpoint ? await versions(m.endpoint, 2000).catch(() => undefined) : undefined;
    if (v) {
      servers[m.name] = v.server;
      cluster ||= v.cluster;
    }
  }
  return { servers, cluster };
}

/** What upgrade's steps share. */
interface UpgradeContext {
  runtime: LabRuntime;
  image: string;
  reporter: Reporter;
  /** Per member: how long it may take to be healthy and caught up on the new image. */
  perMemberMs: number;
  before?: UpgradeResult['before'];
  /** The etcd version in the new image. */
  target?: string;
  snapshot?: string;
  /** Members in the order they are upgraded: followers first, the leader last. */
  order?: string[];
  done: UpgradeResult['members'];
  /** The member being moved now. */
  moving?: string;
  after?: UpgradeResult['after'];
}

/**
 * A rolling upgrade of `members` members, in order. Nothing is undone: etcd cannot go back a
 * version, so a member that does not come back stops it there, quorum held, with the snapshot
 * taken first named in the error.
 */
export function upgradeSteps(members: number): Step<UpgradeContext>[] {
  return [
    { title: 'preflight', run: preflight },
    {
      title: 'from which version to which',
      reportsItself: true,
      run: async ({ before, target, image, reporter }) => reporter.info(`etcd ${Object.values(before!.servers).join('/')} (cluster version ${before!.cluster}) → ${target} from ${image}`),
    },
    {
      title: 'snapshot before anything changes',
      reportsItself: true,
      run: async (ctx) => {
        ctx.snapshot = (await saveSnapshotOf(ctx.runtime, undefined, ctx.reporter, 'before-upgrade')).file;
      },
    },
    {
      title: 'order: followers first, the leader last',
      run: async (ctx, step) => {
        const leader = (await ctx.runtime.awaitLeader(Date.now() + ctx.runtime.electionWaitMs)).container.member;
        const names = ctx.runtime.topology.members.map((m) => m.name);
        ctx.order = [...names.filter((m) => m !== leader), leader];
        step.update(ctx.order.join(', '));
      },
    },
    ...Array.from({ length: members }, (_, i): Step<UpgradeContext> => ({
      title: (ctx) => `${ctx.order![i]}: hand leadership over if it leads, recreate on ${ctx.image}, healthy and caught up`,
      reportsItself: true,
      // etcd has no way back to the old version: nothing before is undone (and nothing is, anyway).
      commits: true,
      run: (ctx) => upgradeMember(ctx, ctx.order![i]!),
    })),
    {
      // Recorded where `up` reads it, so the next `up` keeps the new image.
      title: (ctx) => `record ${ENV_VARS.etcdImage}=${ctx.image} in ${join(ctx.runtime.lab.projectDir, ENV_FILE)}`,
      run: ({ runtime, image }) => recordEtcdImage(runtime, image),
    },
    { title: 'lab ready', reportsItself: true, run: (ctx) => waitUntilReady(ctx.runtime, Date.now() + ctx.perMemberMs, ctx.reporter, { probe: 'read' }) },
    { title: (ctx) => `cluster version ${minorOf(ctx.target!)!.join('.')}`, run: awaitClusterVersion },
  ];
}

/** Every member healthy, the step allowed, the image real. */
async function preflight(ctx: UpgradeContext, step: StepHandle): Promise<void> {
  const { runtime, image } = ctx;
  // Right after a failure, an election may still run: wait for it, so that only the members that
  // are really down are named below.
  await runtime.awaitLeader(Date.now() + runtime.electionWaitMs, step).catch(() => undefined);
  const unhealthy = await runtime.unhealthyMembers();
  if (unhealthy.length > 0) {
    throw new UserError(`${unhealthy.join(', ')} ${unhealthy.length === 1 ? 'is' : 'are'} not healthy: a rolling upgrade starts from a healthy cluster`, {
      hint: '`etcd-lab status` shows why; `etcd-lab start` or `etcd-lab member replace` first',
      exitCode: ExitCode.refused,
    });
  }
  step.update('versions');
  const before = (ctx.before = await versionsOf(runtime));
  step.update(`etcd --version in ${image}`);
  const target = (ctx.target = await etcdVersionInImage(runtime, image));
  const refusal = upgradeRefusal(before.cluster, target, before.servers);
  if (refusal) throw new UserError(`refusing to move lab "${runtime.name}" to etcd ${target}: ${refusal}`, { exitCode: ExitCode.refused });
}

/** One member: leadership handed to an upgraded member if it leads, recreated on the image, proven caught up. */
async function upgradeMember(ctx: UpgradeContext, member: string): Promise<void> {
  const { runtime, image, reporter, perMemberMs, done, order } = ctx;
  const started = Date.now();
  ctx.moving = member;
  // To an upgraded member when there is one; a lab of one member has nobody to hand over to.
  const heir = done.at(-1)?.member ?? order!.find((m) => m !== member);
  const wasLeader = await recreateOnImage(runtime, member, { image, version: ctx.target!, heir, perMemberMs }, reporter);
  done.push({ member, wasLeader, ms: Date.now() - started });
}

/** A member that did not come back on the new image: where the upgrade stopped, and the ways on from there. */
function stoppedAt(ctx: UpgradeContext, error: NotBack): UserError {
  const { image, done, order } = ctx;
  const member = ctx.moving!;
  const rest = order!.slice(order!.indexOf(member) + 1);
  return new UserError(`${member} did not come back on ${image}: ${(error.cause as Error).message}`, {
    hint:
      `the upgrade stopped there; the other members still hold quorum${done.length ? ` (${done.map((d) => d.member).join(', ')} on ${ctx.target})` : ''}${rest.length ? `, ${rest.join(', ')} untouched` : ''}. ` +
      `\`etcd-lab logs ${member}\` shows why. To put it back on the image it had: \`etcd-lab up\`; the snapshot taken first is ${ctx.snapshot}`,
    exitCode: ExitCode.failedPartWay,
    cause: error,
  });
}

/** A member recreated on its new image that did not serve again in time (`cause` says how far it got). */
export class NotBack extends Error {}

/**
 * One member moved to `image` as a rolling upgrade moves it: leadership handed to `heir` if it
 * leads, the container recreated on the image with its own data volume, then healthy on `version`
 * and caught up. Also `check`'s upgrade fault. True when it was the leader.
 */
export async function recreateOnImage(
  runtime: LabRuntime,
  member: string,
  to: { image: string; version: string; heir?: string; perMemberMs: number },
  reporter: Reporter,
): Promise<boolean> {
  const wasLeader = (await runtime.awaitLeader(Date.now() + runtime.electionWaitMs)).container.member === member;
  if (wasLeader && to.heir) await moveLeadershipIn(runtime, to.heir, reporter);
  await reporter.step(`${member}: stop, recreate on ${to.image}`, (step) =>
    runtime.compose(['up', '--detach', '--no-color', '--no-deps', member], (line) => step.update(line), {
      env: { [memberImageVar(member)]: to.image },
      timeoutMs: to.perMemberMs,
    }),
  );
  try {
    await reporter.step(`${member}: healthy on etcd ${to.version} and caught up`, (step) =>
      waitUntil(`${member} to serve on ${to.image}`, Date.now() + to.perMemberMs, () => caughtUp(runtime, member, to.version), step),
    );
  } catch (error) {
    if (error instanceof Interrupted) throw error;
    throw new NotBack(`${member} did not come back on ${to.image}`, { cause: error });
  }
  return wasLeader;
}

/** Where `up` reads it (the per-person .env), so the next `up` keeps the members on `image`. */
export async function recordEtcdImage(runtime: LabRuntime, image: string): Promise<void> {
  await setInDotenv(join(runtime.lab.projectDir, ENV_FILE), ENV_VARS.etcdImage, image);
  await writeLabFiles({ ...runtime.lab, local: { ...runtime.lab.local, etcdImage: image } });
}

/** The member answers on the target version, at most two entries behind the others. */
async function caughtUp(runtime: LabRuntime, member: string, target: string): Promise<{ done: boolean; detail: string }> {
  const { container: c, endpoint: e } = (await runtime.member(member))!;
  if (!e) return { done: false, detail: `container ${c?.state ?? 'missing'}` };
  const [health, status] = await Promise.all([memberHealth(e, 1000), memberStatus(e, 1000).catch(() => undefined)]);
  if (!health.healthy || !status) return { done: false, detail: health.reason || 'no status yet' };
  const others = (await runtime.statuses(undefined, 1000)).filter((a) => a.status && a.container.member !== member);
  const leaderIndex = Math.max(...others.map((a) => a.status!.raftIndex));
  const behind = leaderIndex - status.raftIndex;
  return { done: status.version === target && behind <= 2, detail: `version ${status.version}, ${Math.max(0, behind)} entries behind` };
}

async function awaitClusterVersion(ctx: UpgradeContext, step: StepHandle): Promise<void> {
  ctx.after = await clusterVersionFollows(ctx.runtime, ctx.target!, step);
}

/** etcd raises the cluster version a few seconds after the last member moves: waits for it to name `version`'s minor; the versions then. */
export async function clusterVersionFollows(runtime: LabRuntime, version: string, step?: StepHandle): Promise<UpgradeResult['after']> {
  const minor = minorOf(version)!.join('.');
  let seen: UpgradeResult['after'] = { servers: {}, cluster: '' };
  await waitUntil(
    'the cluster version to follow',
    Date.now() + 30_000,
    async () => {
      seen = await versionsOf(runtime);
      return { done: seen.cluster.startsWith(`${minor}.`), detail: `cluster version ${seen.cluster || 'unknown'}` };
    },
    step,
    { intervalMs: 500 },
  );
  return seen;
}

export async function upgrade(opts: UpgradeOptions, reporter: Reporter): Promise<UpgradeResult> {
  return withLab(opts, { lock: 'upgrade', warn: true, detail: `to ${opts.image}` }, reporter, async (runtime) => {
    const started = Date.now();
    const ctx: UpgradeContext = { runtime, image: opts.image, reporter, perMemberMs: opts.timeoutMs ?? 90_000, done: [] };
    await runSteps(upgradeSteps(runtime.topology.members.length), ctx, reporter, {
      command: 'upgrade',
      failure: (error, { committed }) => (committed && error instanceof NotBack ? stoppedAt(ctx, error) : error),
    });
    return { lab: runtime.name, image: opts.image, snapshot: ctx.snapshot!, before: ctx.before!, after: ctx.after!, members: ctx.done, elapsedMs: Date.now() - started };
  });
}
