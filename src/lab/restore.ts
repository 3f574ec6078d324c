// `etcd-lab snapshot restore|rollback`: disaster recovery as the Kubernetes etcd operations guide
// describes it, with etcd's own tools. A restore keeps the data it replaces until the restored lab
// is proven up, and puts it back when anything fails or Ctrl-C is pressed; `rollback` puts it back
// after a restore that was killed outright.
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { guarded, Interrupted, throwIfInterrupted } from '../interrupt.js';
import type { Reporter, StepHandle } from '../progress.js';
import type { LoadOptions } from '../config/load.js';
import { waitApiServerReady } from './apiserver.js';
import { DEFAULT_BUMP_REVISION } from '../config/defaults.js';
import type { Engine } from '../engine/engine.js';
import { writeFileAtomic } from '../files.js';
import { currentRevision } from '../protocol/etcd-http.js';
import type { LabRuntime } from '../runtime/lab.js';
import { checkMembership } from '../runtime/preflight.js';
import { waitUntilReady } from '../runtime/readiness.js';
import { restoreForMember, snapshotStatus, type SnapshotInfo } from '../runtime/snapshot.js';
import { fillFromKept, fillFromPrepared, hasKeptCopy, keepCopy, keptVolumeName, keptVolumes, removeKeptCopies } from '../runtime/data-volumes.js';
import { withLab } from './session.js';
import { runSteps, type Step } from './steps.js';
import { humanBytes } from '../ui/bytes.js';
import { ExitCode } from '../exit-codes.js';

import { toolImage } from './snapshot.js';

export interface RestoreOptions extends LoadOptions {
  file: string;
  yes?: boolean;
  confirm?: (question: string) => Promise<boolean>;
  /** Go on although a KIND cluster uses the lab. */
  ignoreKind?: boolean;
  skipHashCheck?: boolean;
  /** How far to move the revision past the snapshot's (etcdutl --bump-revision, with --mark-compacted); 0: not at all. */
  bumpRevision?: number;
  /** Deadline for the restored lab to be ready. */
  timeoutMs?: number;
  engine?: Engine;
}

export interface RestoreResult {
  lab: string;
  snapshot: SnapshotInfo;
  /** The lab's revision after the restore, read through HAProxy. */
  revision: number;
  /** How far the revision was moved past the snapshot's (0: not; etcd 3.4's etcdctl cannot). */
  bumpedBy: number;
  /** The lab's API server (`etcd-lab apiserver`), stopped for the restore and started again. */
  apiServerRestarted?: string;
  members: string[];
  elapsedMs: number;
}

/** Written beside the generated files while a restore runs: which members' data was replaced, for rollback after a crash. */
const RESTORE_STATE = '.restore-state.json';
interface RestoreState {
  snapshot: string;
  /** Members whose data has been copied whole to their kept volume. */
  kept: string[];
  /** Members whose volume no longer holds their own data (only their kept copy does). */
  replaced: string[];
}

async function writeState(runtime: LabRuntime, state: RestoreState): Promise<void> {
  // Whole or not at all: a rollback after a crash reads it.
  await writeFileAtomic(join(runtime.lab.outDir, RESTORE_STATE), `${JSON.stringify(state, null, 2)}\n`);
}

async function readState(runtime: LabRuntime): Promise<RestoreState | undefined> {
  try {
    return JSON.parse(await readFile(join(runtime.lab.outDir, RESTORE_STATE), 'utf8')) as RestoreState;
  } catch {
    return undefined;
  }
}

export async function restoreLabSnapshot(opts: RestoreOptions, reporter: Reporter): Promise<RestoreResult> {
  return withLab(opts, { lock: 'snapshot restore', warn: true, detail: opts.file }, reporter, (runtime) => restoreOwnedLab(runtime, opts, reporter));
}

/** What restore's steps share, and how far it got: the undo and the error read it. */
interface RestoreContext {
  runtime: LabRuntime;
  opts: RestoreOptions;
  reporter: Reporter;
  /** The snapshot, resolved. */
  file: string;
  snapshot?: SnapshotInfo;
  /** The image whose etcdutl restores and copies. */
  image?: string;
  state: RestoreState;
  /** Each member's restored data, in an exited container, until it is copied into place. */
  prepared: Map<string, { containerId: string; path: string }>;
  /** The members were stopped: from here a failure puts their own data back. */
  stopped?: boolean;
  /** The restored lab serves: from here a failure must not put the old data back. */
  proven?: boolean;
  revision?: number;
  bumpedBy?: number;
  /** The lab's API server, running when the restore began: stopped before the members, started after. */
  apiServer?: { id: string; name: string; stopped?: boolean };
  /** Putting the old data back failed too. */
  putBackFailed?: unknown;
}

/**
 * A restore, in order. etcdutl prepares every member's data while the lab still runs (a snapshot
 * it refuses costs nothing); only then are the members stopped, their data kept, the restored
 * data put in place, and the lab proven. Any failure before that proof puts the kept data back.
 */
export function restoreSteps(members: number): Step<RestoreContext>[] {
  return [
    { title: 'preflight', run: restorePreflight },
    {
      title: 'what the snapshot holds, and the go-ahead',
      reportsItself: true,
      run: async ({ runtime, opts, reporter, file, snapshot }) => {
        reporter.info(`snapshot ${file}: revision ${snapshot!.revision}, ${snapshot!.totalKeys} keys, ${humanBytes(snapshot!.totalSize)}`);
        if (opts.yes) return;
        if (!opts.confirm) {
          throw new UserError(`refusing to replace the data of lab "${runtime.name}" without confirmation`, { hint: 'there is no terminal to ask: add --yes', exitCode: ExitCode.nothingDone });
        }
        if (!(await opts.confirm(`Replace the data of every member of lab "${runtime.name}" with the snapshot at revision ${snapshot!.revision}? Writes made after it are lost.`))) {
          throw new UserError('nothing was changed', { exitCode: ExitCode.nothingDone });
        }
      },
    },
    {
      title: `snapshot restore for ${members} members`,
      run: prepareMembers,
      undo: async (ctx) => {
        await removePrepared(ctx);
        return [];
      },
    },
    {
      title: (ctx) => `stop the API server ${ctx.apiServer!.name} (it caches what etcd holds)`,
      when: (ctx) => ctx.apiServer !== undefined,
      run: async ({ runtime, apiServer }) => {
        apiServer!.stopped = true;
        await runtime.stop(apiServer!, 5);
      },
      undo: async ({ runtime, apiServer, reporter }) => {
        // Started again on the data it had (nothing was replaced), or on the restored data (a later step failed).
        await runtime.start(apiServer!).catch((error: Error) => reporter.warn(`could not start the API server ${apiServer!.name} again: ${error.message} (\`docker start ${apiServer!.name}\`)`));
        return [`the API server ${apiServer!.name} running`];
      },
    },
    {
      title: 'stop the members',
      reportsItself: true,
      run: async (ctx) => {
        ctx.stopped = true;
        await writeState(ctx.runtime, ctx.state);
        await stopMembers(ctx.runtime, ctx.reporter);
      },
      undo: async (ctx, error) => {
        ctx.reporter.warn(`restore failed (${(error as Error).message.split('\n')[0]}): putting back the data it replaced`);
        try {
          await putBack(ctx.runtime, ctx.state, ctx.image!, ctx.reporter);
        } catch (undoError) {
          ctx.putBackFailed = undoError;
          throw undoError;
        }
        return ["the members' own data"];
      },
    },
    { title: 'keep the current data', run: keepCurrentData },
    { title: 'put the restored data in place', run: putRestoredData },
    { title: 'start the members', reportsItself: true, run: (ctx) => startMembers(ctx.runtime, ctx.reporter) },
    {
      title: 'lab ready',
      reportsItself: true,
      run: (ctx) => waitUntilReady(ctx.runtime, Date.now() + (ctx.opts.timeoutMs ?? 60_000), ctx.reporter, { probe: 'read', hint: 'the data the restore replaced is put back now' }),
    },
    {
      title: "a read at the snapshot's revision or later",
      // Proven: the restored data stays, whatever fails after (the old data's copies are not put back).
      commits: (ctx) => ctx.proven === true,
      run: async (ctx) => {
        const revision = await ctx.runtime.ask('current revision', (endpoint) => currentRevision(endpoint, 5000), { idempotent: true, deadline: Date.now() + 15_000 });
        // At least the snapshot's: a client (an API server let in with --ignore-kind, a lease expiring) may write at once.
        if (revision < ctx.snapshot!.revision) throw new Error(`the restored lab is at revision ${revision}, before the snapshot's ${ctx.snapshot!.revision}`);
        ctx.revision = revision;
        ctx.proven = true;
      },
    },
    {
      title: 'remove the replaced data',
      run: (ctx) =>
        removeKept(ctx.runtime).catch((error: Error) => {
          throw new UserError(`the lab is restored (revision ${ctx.revision}), but removing the copies of the old data failed: ${error.message}`, {
            hint:
              `remove them yourself: \`docker volume rm ${ctx.runtime.topology.members.map((m) => keptVolumeName(m.volume)).join(' ')}\`` +
              (ctx.apiServer?.stopped ? `; then start the API server again: \`docker start ${ctx.apiServer.name}\`` : ''),
            exitCode: ExitCode.failedPartWay,
          });
        }),
    },
    {
      // As Kubernetes' etcd guide says: API servers are restarted after a restore, with empty caches.
      // Last: the restore is done and cleaned up whether or not this works.
      title: (ctx) => `start the API server ${ctx.apiServer!.name} again`,
      when: (ctx) => ctx.apiServer?.stopped === true,
      run: async ({ runtime, apiServer, opts }, step) => {
        try {
          await runtime.start(apiServer!);
          await waitApiServerReady(runtime, apiServer!.id, Date.now() + (opts.timeoutMs ?? 60_000), step);
        } catch (error) {
          if (error instanceof Interrupted) throw error;
          throw new UserError(`the lab is restored, but its API server ${apiServer!.name} did not serve again: ${(error as Error).message}`, {
            hint: `\`docker logs ${apiServer!.name}\`; then \`etcd-lab apiserver --delete\` and \`etcd-lab apiserver\``,
            exitCode: ExitCode.failedPartWay,
          });
        }
      },
    },
  ];
}

async function restoreOwnedLab(runtime: LabRuntime, opts: RestoreOptions, reporter: Reporter): Promise<RestoreResult> {
  const started = Date.now();
  const file = resolve(opts.file);
  const ctx: RestoreContext = { runtime, opts, reporter, file, state: { snapshot: file, kept: [], replaced: [] }, prepared: new Map() };
  const leftovers = async () => (await keptVolumes(runtime)).map((v) => `volume ${v} (\`etcd-lab snapshot rollback\`)`);
  await runSteps(restoreSteps(runtime.topology.members.length), ctx, reporter, {
    command: 'restore',
    undoing: 'putting back what the restore replaced',
    leftovers,
    failure: (error, { committed }) => (committed ? error : restoreFailure(ctx, error)),
  });
  return {
    lab: runtime.name,
    snapshot: ctx.snapshot!,
    revision: ctx.revision!,
    bumpedBy: ctx.bumpedBy ?? 0,
    ...(ctx.apiServer ? { apiServerRestarted: ctx.apiServer.name } : {}),
    members: runtime.topology.members.map((m) => m.name),
    elapsedMs: Date.now() - started,
  };
}

/** What a failed restore tells the user: whether the lab was touched, and whether it is back on its own data. */
/** Before the proof: what the failure left (nothing touched, the old data back, or not even that). */
async function restoreFailure(ctx: RestoreContext, error: unknown): Promise<unknown> {
  if (!ctx.stopped) return error instanceof Interrupted ? new Interrupted('restore interrupted before the lab was touched: nothing changed') : error;
  if (ctx.putBackFailed !== undefined) {
    return new UserError(`restore failed, and putting back the old data failed too: ${(ctx.putBackFailed as Error).message}`, {
      hint: `the old data is kept in volumes ${(await keptVolumes(ctx.runtime)).join(', ') || '(none)'}: \`etcd-lab snapshot rollback\` tries again`,
      exitCode: ExitCode.failedPartWay,
      cause: error,
    });
  }
  if (error instanceof Interrupted) return new Interrupted('restore interrupted: the lab is back on its own data, as it was before');
  return new UserError(`restore failed: ${(error as Error).message}`, {
    hint: 'the lab is back on its own data, as it was before (proven: quorum, one leader, HAProxy serving)',
    exitCode: (error as UserError).exitCode ?? ExitCode.failedPartWay,
    cause: error,
  });
}

/** Checks: nothing is touched until each passes. */
async function restorePreflight(ctx: RestoreContext, step: StepHandle): Promise<void> {
  const { runtime, opts, file } = ctx;
  const kept = await keptVolumes(runtime);
  if (kept.length > 0) {
    throw new UserError(`an earlier restore of lab "${runtime.name}" did not finish: it kept the data it replaced (${kept.join(', ')})`, {
      hint: '`etcd-lab snapshot rollback` puts that data back; or, to keep the lab as it is now, remove them: `docker volume rm ' + kept.join(' ') + '`',
      exitCode: ExitCode.refused,
    });
  }
  step.update('the lab');
  const [members, volumes] = await Promise.all([runtime.memberContainers(), runtime.dataVolumes()]);
  if (volumes.length === 0 || members.length === 0) {
    throw new UserError(`lab "${runtime.name}" does not exist here: there is nothing to restore into`, {
      hint: '`etcd-lab up` makes it (an empty cluster), then restore the snapshot into it',
      exitCode: ExitCode.refused,
    });
  }
  checkMembership(runtime, volumes);
  step.update('KIND');
  const nodes = (await runtime.kindNodes()).filter((n) => n.state === 'running').map((n) => n.name);
  if (nodes.length > 0 && !opts.ignoreKind) {
    throw new UserError(`KIND cluster "${runtime.lab.spec.kind.name}" is running on this lab (${nodes.join(', ')})`, {
      hint:
        'its API server caches what etcd holds and would go on serving it, newer than the restored data. As the etcd guide says, stop the API servers first ' +
        `(\`docker stop ${nodes.join(' ')}\`), restore, then start them (\`docker start …\`); or pass --ignore-kind to restore anyway`,
      exitCode: ExitCode.refused,
    });
  }
  const apiServer = await runtime.apiServerContainer();
  if (apiServer?.state === 'running') ctx.apiServer = { id: apiServer.id, name: apiServer.name };
  step.update(`checking ${file}`);
  ctx.image = await toolImage(runtime);
  ctx.snapshot = await snapshotStatus(runtime, ctx.image, file, opts);
}

/** Every member's data restored by etcdutl into an exited container, while the lab still runs. */
async function prepareMembers(ctx: RestoreContext, step: StepHandle): Promise<void> {
  const { runtime, opts, file } = ctx;
  const bumpRevision = opts.bumpRevision ?? DEFAULT_BUMP_REVISION;
  const { topology } = runtime;
  for (const member of topology.members) {
    throwIfInterrupted();
    step.update(member.name);
    const prepared = await restoreForMember(runtime, {
      image: ctx.image!,
      file,
      member,
      initialCluster: topology.initialCluster,
      token: runtime.lab.spec.name,
      skipHashCheck: opts.skipHashCheck,
      bumpRevision,
    });
    ctx.prepared.set(member.name, prepared);
    // One image restores every member: they all bump, or none does.
    ctx.bumpedBy = prepared.bumped ? bumpRevision : 0;
  }
  if (ctx.bumpedBy === 0 && bumpRevision > 0) {
    ctx.reporter.warn(`this etcd's tools cannot move the revision past the snapshot's (etcdutl 3.5.10+ can): a watcher resuming from before the restore may miss changes; restart your clients`);
  }
}

async function removePrepared(ctx: RestoreContext): Promise<void> {
  await Promise.all([...ctx.prepared.values()].map((p) => ctx.runtime.removeContainer({ id: p.containerId }, 0).catch(() => {})));
  ctx.prepared.clear();
}

/** Each member's current data copied whole to a kept volume; the state file says which are whole. */
async function keepCurrentData(ctx: RestoreContext, step: StepHandle): Promise<void> {
  const { runtime, state } = ctx;
  for (const member of runtime.topology.members) {
    throwIfInterrupted();
    step.update(`${member.volume} → ${keptVolumeName(member.volume)}`);
    await keepCopy(runtime, member, ctx.image!);
    state.kept.push(member.name);
    await writeState(runtime, state);
  }
}

/** Each member's volume emptied and filled with its restored data; then the prepared containers go. */
async function putRestoredData(ctx: RestoreContext, step: StepHandle): Promise<void> {
  const { runtime, state } = ctx;
  for (const member of runtime.topology.members) {
    throwIfInterrupted();
    step.update(member.name);
    state.replaced.push(member.name);
    await writeState(runtime, state);
    await fillFromPrepared(runtime, member, ctx.prepared.get(member.name)!, ctx.image!);
  }
  await removePrepared(ctx);
}

async function stopMembers(runtime: LabRuntime, reporter: Reporter, graceSeconds = 10): Promise<void> {
  await reporter.step('stop the members', async () => runtime.removeContainers(await runtime.memberContainers(), undefined, graceSeconds));
}

async function startMembers(runtime: LabRuntime, reporter: Reporter, cleanup = false): Promise<void> {
  await reporter.step('start the members', (step) =>
    runtime.compose(['up', '--detach', '--no-color', '--no-recreate'], (line) => step.update(line), { cleanup }),
  );
}

async function removeKept(runtime: LabRuntime): Promise<void> {
  await removeKeptCopies(runtime);
  await rm(join(runtime.lab.outDir, RESTORE_STATE), { force: true });
}

/** Puts each replaced member's kept data back, starts the lab, proves it serves, then drops the copies. */
async function putBack(runtime: LabRuntime, state: RestoreState, image: string, reporter: Reporter): Promise<void> {
  await stopMembers(runtime, reporter, 2);
  await reporter.step('put back the kept data', async (step) => {
    for (const name of state.replaced) {
      const member = runtime.topology.members.find((m) => m.name === name)!;
      step.update(name);
      // Never empty a member for a copy that is not whole (or not there): that would lose both.
      if (!state.kept.includes(name) || !(await hasKeptCopy(runtime, member))) {
        throw new Error(`the kept copy of ${name}'s data (${keptVolumeName(member.volume)}) is missing or incomplete: ${name}'s volume is left as it is`);
      }
      await fillFromKept(runtime, member, image);
    }
  });
  await startMembers(runtime, reporter, true);
  await waitUntilReady(runtime, Date.now() + 60_000, reporter, { probe: 'read', cleanup: true });
  await reporter.step('remove the kept copies', () => removeKept(runtime));
}

export interface RollbackOptions extends LoadOptions {
  engine?: Engine;
}

/** After a restore that could not finish (the process was killed): puts back the data it kept. */
export async function rollbackRestore(opts: RollbackOptions, reporter: Reporter): Promise<{ lab: string; putBack: string[] }> {
  return withLab(opts, { lock: 'snapshot rollback' }, reporter, async (runtime) => {
    const kept = await keptVolumes(runtime);
    if (kept.length === 0) {
      throw new UserError(`lab "${runtime.name}" has no data kept by an unfinished restore: there is nothing to roll back`, { exitCode: ExitCode.nothingDone });
    }
    // Without the state file (deleted by hand), every member with a complete set of kept copies is put back.
    const state = await readState(runtime);
    if (!state) {
      throw new UserError(`the record of the unfinished restore (${join(runtime.lab.outDir, RESTORE_STATE)}) is gone: which copies are whole is not known`, {
        hint: `the kept copies are ${kept.join(', ')}; look into them before you remove any (\`docker run --rm -v ${kept[0]}:/d etcd-lab/etcd:trixie ls -R /d\`)`,
        exitCode: ExitCode.refused,
      });
    }
    const image = await toolImage(runtime);
    await guarded({ undoing: 'finishing the step under way; `etcd-lab snapshot rollback` again continues' }, () => putBack(runtime, state, image, reporter));
    return { lab: runtime.name, putBack: state.replaced };
  });
}
