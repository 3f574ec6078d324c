// `check`'s faults, while its clients run: each takes something away (or disturbs it), holds, and
// puts it back, recording its window for the checker's report. Leader and follower alternate as the
// target, so both kinds of loss are seen.
import { UserError } from '../errors.js';
import { sleep } from '../interrupt.js';
import type { Reporter } from '../progress.js';
import { toleratedFailures } from '../config/topology.js';
import type { FaultWindow } from '../checker/history.js';
import { compact, defragment } from '../protocol/etcd-http.js';
import { applyFault } from './faults.js';
import type { LabRuntime } from '../runtime/lab.js';
import { moveLeadershipIn, replaceOn } from './membership.js';
import { NotBack, recreateOnImage } from './upgrade.js';
import { ExitCode } from '../exit-codes.js';

export const NEMESES = ['kill', 'pause', 'partition', 'leader', 'defrag', 'compact', 'replace', 'loss', 'blackhole', 'delay', 'upgrade'] as const;
export type Nemesis = (typeof NEMESES)[number];
/** What `check` injects unless told: every kind but the upgrade, which needs an image to move to. */
export const DEFAULT_NEMESES: Nemesis[] = NEMESES.filter((n) => n !== 'upgrade');

/** The upgrade fault without --upgrade-image: refused before anything runs (the CLI, and check itself). */
export function upgradeImageNeeded(): UserError {
  return new UserError('the upgrade fault needs an image to move members to', {
    hint: 'add --upgrade-image REF (etcd-lab/etcd:trixie is etcd 3.5; a lab on etcd-lab/etcd:3.4-bookworm can move to it)',
    exitCode: ExitCode.badInput,
  });
}

/** The upgrade fault's target: an image, and the etcd version it holds (read before the clients start). */
export interface UpgradeTarget {
  image: string;
  version: string;
}

export interface NemesisContext {
  runtime: LabRuntime;
  reporter: Reporter;
  /** How long each fault is held, and the calm after it. */
  holdMs: number;
  /** The workload's clock: fault windows are drawn on the same time axis as the operations. */
  now: () => number;
  /** The highest revision every watcher has delivered: compaction never goes past it. */
  watched: () => number;
  /** Called once members are back (a restarted one may be published on another host port). */
  membersChanged: () => Promise<void>;
  /** Where the upgrade fault moves members to. */
  upgrade?: UpgradeTarget;
}

export function parseNemeses(list: string): Nemesis[] {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(NEMESES as readonly string[]).includes(n));
  if (unknown.length > 0 || names.length === 0) {
    throw new UserError(`--nemesis takes a comma-separated list of: ${NEMESES.join(', ')} (got "${list}")`, { exitCode: ExitCode.badInput });
  }
  return [...new Set(names)] as Nemesis[];
}

async function leaderOf(runtime: LabRuntime): Promise<string> {
  return (await runtime.awaitLeader(Date.now() + runtime.electionWaitMs)).container.member;
}

/** The members other than the leader, in order. */
async function followers(runtime: LabRuntime): Promise<{ leader: string; followers: string[] }> {
  const leader = await leaderOf(runtime);
  return { leader, followers: runtime.topology.members.map((m) => m.name).filter((m) => m !== leader) };
}

/** One fault: `n` counts faults of this kind so far (even: the leader, odd: a follower). */
async function inject(kind: Nemesis, n: number, ctx: NemesisContext): Promise<FaultWindow> {
  const { runtime, reporter, holdMs } = ctx;
  const started = ctx.now();
  const onLeader = n % 2 === 0;
  const { leader, followers: rest } = await followers(runtime);
  const target = onLeader ? leader : rest[n % rest.length]!;
  let what = target;
  switch (kind) {
    case 'kill':
    case 'pause': {
      await applyFault(runtime, kind, [target], reporter);
      await sleep(holdMs);
      await applyFault(runtime, kind === 'kill' ? 'start' : 'unpause', [target], reporter);
      break;
    }
    case 'partition': {
      // A minority: with the leader (it must step down while the majority elects anew), or without it.
      const size = toleratedFailures(runtime.topology.members.length);
      const cut = onLeader ? [leader, ...rest.slice(0, size - 1)] : rest.slice(0, size);
      what = cut.join('+');
      await applyFault(runtime, 'partition', cut, reporter);
      // Cut off, a member is published on another host port: its pinned clients follow it there.
      await ctx.membersChanged();
      await sleep(holdMs);
      await applyFault(runtime, 'heal', [], reporter);
      break;
    }
    case 'loss':
    case 'blackhole':
    case 'delay': {
      // Peer traffic only: the member keeps its clients (a deaf one answers from what it last heard).
      await applyFault(runtime, kind, [target], reporter);
      await sleep(holdMs);
      await applyFault(runtime, 'heal', [target], reporter);
      break;
    }
    case 'leader': {
      what = `${leader}→${rest[n % rest.length]}`;
      await moveLeadershipIn(runtime, rest[n % rest.length]!, reporter);
      break;
    }
    case 'defrag': {
      const endpoint = (await runtime.member(target))?.endpoint;
      if (endpoint) await reporter.step(`defragment ${target}`, () => defragment(endpoint));
      break;
    }
    case 'replace': {
      // A member's disk lost: killed, then replaced (removed, its data gone, added anew as a learner).
      await applyFault(runtime, 'kill', [target], reporter);
      await ctx.membersChanged();
      await replaceOn(runtime, target, reporter);
      break;
    }
    case 'upgrade': {
      // One member per fault, as a rolling upgrade goes: followers first, the leader last (leadership
      // handed to an upgraded member first). Once all are there, the same recreate on the same image.
      const to = ctx.upgrade!;
      const names = runtime.topology.members.map((m) => m.name);
      const onImage = new Set((await runtime.memberContainers()).filter((c) => c.image === to.image).map((c) => c.member));
      const pending = [...rest, leader].filter((m) => !onImage.has(m));
      const member = pending[0] ?? target;
      what = pending.length > 0 ? `${member} → etcd ${to.version}` : `${member} recreated (every member on etcd ${to.version})`;
      const heir = names.find((m) => m !== member && onImage.has(m)) ?? names.find((m) => m !== member);
      try {
        await recreateOnImage(runtime, member, { image: to.image, version: to.version, heir, perMemberMs: 90_000 }, reporter);
      } catch (error) {
        if (!(error instanceof NotBack)) throw error;
        // Recreated on the image, though it does not serve there: later compose calls keep it there.
        runtime.pinMemberImage(member, to.image);
        throw new UserError(`the upgrade fault stopped: ${error.message} (${(error.cause as Error).message})`, {
          hint: `\`etcd-lab logs ${member}\` shows why; the other members hold quorum`,
          exitCode: ExitCode.failedPartWay,
          cause: error,
        });
      }
      runtime.pinMemberImage(member, to.image);
      break;
    }
    case 'compact': {
      // Below what every watcher has: a compaction the watchers are past, as in a cluster that keeps up.
      const revision = ctx.watched();
      what = `revision ${revision}`;
      const once = (endpoint: Parameters<typeof compact>[0]) =>
        compact(endpoint, revision).catch((error: Error) => {
          // Compacted there already (an earlier try that did not answer in time): done.
          if (!/compacted/.test(error.message)) throw error;
        });
      if (revision > 0) await reporter.step(`compact at revision ${revision}`, () => runtime.ask('compact', once, { idempotent: true }));
      break;
    }
  }
  await ctx.membersChanged();
  return { kind, target: what, startMs: started, endMs: ctx.now() };
}

/** `count` faults, the kinds taken in turn; each window recorded as it ends. */
export async function runNemesis(kinds: Nemesis[], count: number, ctx: NemesisContext, windows: FaultWindow[]): Promise<void> {
  const seen = new Map<Nemesis, number>();
  await sleep(ctx.holdMs);
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % kinds.length]!;
    const n = seen.get(kind) ?? 0;
    seen.set(kind, n + 1);
    windows.push(await inject(kind, n, ctx));
    await sleep(ctx.holdMs);
  }
}
