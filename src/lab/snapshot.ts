// `etcd-lab snapshot save|status`: backups as the Kubernetes etcd operations guide describes them,
// with etcd's own tools: from a healthy follower, whole or not at all, and read back by etcd's own
// `snapshot status`. Restore and rollback: restore.ts.
import { existsSync, statSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileError, UserError } from '../errors.js';
import { guarded } from '../interrupt.js';
import type { Reporter } from '../progress.js';
import type { LoadOptions } from '../config/load.js';
import type { Engine } from '../engine/engine.js';
import type { LabRuntime } from '../runtime/lab.js';
import { readClientTls } from '../runtime/pki.js';
import { saveSnapshot, snapshotStatus, type SnapshotInfo } from '../runtime/snapshot.js';
import { CLIENTS } from '../render/pki.js';
import { withLab } from './session.js';
import { ExitCode } from '../exit-codes.js';

export const SNAPSHOTS_DIR = 'snapshots';

/** "2026-11-22T16-05-09Z": sortable, and safe in a file name everywhere. */
function stamp(date = new Date()): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

export interface SaveOptions extends LoadOptions {
  file?: string;
  engine?: Engine;
}

export interface SaveResult extends SnapshotInfo {
  lab: string;
  /** The member the snapshot was streamed from. */
  member: string;
  elapsedMs: number;
}

/** A member to stream a snapshot from: one that follows the leader a quorum follows, a follower if there is one (the leader has enough to do). */
async function snapshotSource(runtime: LabRuntime, reporter: Reporter) {
  const view = await reporter.step('find a member that follows the leader', (step) => runtime.awaitLeader(Date.now() + runtime.electionWaitMs, step)).catch((error: unknown) => {
    if (!(error instanceof UserError)) throw error;
    throw new UserError(`no member of lab "${runtime.name}" answers with a leader: there is nothing consistent to save (${error.message})`, {
      hint: '`etcd-lab status` shows why; start stopped members with `etcd-lab start`',
      exitCode: ExitCode.refused,
    });
  });
  const following = view.answers.filter((a) => a.status && view.elected.followers.includes(a.container.member) && !runtime.isPartitioned(a.container));
  return (following.find((a) => a.container.member !== view.container.member) ?? following[0] ?? { container: view.container }).container;
}

const SNAPSHOT_FILE_FIX = 'name a file in a folder you can write, such as generated/snapshots/lab.db';

/**
 * Refuses a snapshot file that exists or cannot be written, before anything runs: found out now,
 * not after etcd streamed the whole database. A folder that does not exist yet is made later.
 */
async function checkSnapshotTarget(file: string): Promise<void> {
  if (existsSync(file)) throw new UserError(`${file} already exists`, { hint: 'name another file, or remove that one first', exitCode: ExitCode.badInput });
  const dir = dirname(file);
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new UserError(`the snapshot file ${file} cannot be made: ${dir} is not a folder`, { hint: SNAPSHOT_FILE_FIX, exitCode: ExitCode.badInput });
  // A name of its own: a `.part` left by a killed save must not read as "exists as something else".
  const probe = `${file}.probe-${process.pid}-${Date.now()}`;
  try {
    await (await open(probe, 'wx', 0o600)).close();
  } catch (error) {
    throw fileError(error, file, 'the snapshot file', SNAPSHOT_FILE_FIX);
  }
  await rm(probe, { force: true });
}

export async function saveLabSnapshot(opts: SaveOptions, reporter: Reporter): Promise<SaveResult> {
  if (opts.file !== undefined) await checkSnapshotTarget(resolve(opts.file));
  return withLab(opts, { lock: 'snapshot save' }, reporter, (runtime) => saveSnapshotOf(runtime, opts.file, reporter));
}

/** A snapshot of a lab this command already holds (`upgrade` takes one first); `tag` goes into the default name. */
export async function saveSnapshotOf(runtime: LabRuntime, requested: string | undefined, reporter: Reporter, tag = ''): Promise<SaveResult> {
  const started = Date.now();
  const { lab } = runtime;
  const file = resolve(requested ?? join(lab.outDir, SNAPSHOTS_DIR, `${lab.spec.name}${tag ? `-${tag}` : ''}-${stamp()}.db`));
  await checkSnapshotTarget(file);
  await mkdir(dirname(file), { recursive: true }).catch((error: unknown) => {
    throw fileError(error, dirname(file), 'the folder for the snapshot', SNAPSHOT_FILE_FIX);
  });
  const source = await snapshotSource(runtime, reporter);
  const member = runtime.topology.members.find((m) => m.name === source.member)!;
  await reporter.step(`etcdctl snapshot save from ${member.name} (${member.clientUrl})`, () =>
    guarded({ undoing: 'stopping the snapshot (no partial file is left)' }, () =>
      saveSnapshot(runtime, {
        image: source.image,
        network: runtime.topology.network,
        memberUrl: member.clientUrl,
        tls: lab.spec.tls.enabled ? readClientTls(runtime.pkiDir, CLIENTS.admin) : undefined,
        file,
      }),
    ),
  ).catch((error: unknown) => {
    // The disk filling up (or the folder going away) while the snapshot streams in is the file's problem, not a bug.
    if (String((error as NodeJS.ErrnoException).path ?? '').startsWith(file)) throw fileError(error, file, 'the snapshot file', SNAPSHOT_FILE_FIX);
    throw error;
  });
  const info = await reporter.step('snapshot status', () => snapshotStatus(runtime, source.image, file));
  return { lab: lab.spec.name, member: member.name, ...info, elapsedMs: Date.now() - started };
}

export interface StatusOptions extends LoadOptions {
  file: string;
  skipHashCheck?: boolean;
  engine?: Engine;
}

/** `snapshot status` of any file, with the lab's etcd image (from its running members, else the configured one). */
export async function labSnapshotStatus(opts: StatusOptions, reporter: Reporter): Promise<SnapshotInfo> {
  return withLab(opts, {}, reporter, async (runtime) => {
    const image = await toolImage(runtime);
    return reporter.step(`snapshot status ${opts.file}`, () => snapshotStatus(runtime, image, resolve(opts.file), opts));
  });
}

export async function toolImage(runtime: LabRuntime): Promise<string> {
  const running = (await runtime.memberContainers())[0]?.image;
  const image = running ?? runtime.lab.local.etcdImage;
  if (!(await runtime.imageExists(image))) {
    throw new UserError(`the etcd image ${image} is not on this machine: etcd-lab runs etcd's own snapshot tools from it`, {
      hint: '`etcd-lab up` gets it (or builds a local one), as does `etcd-lab images build`',
      exitCode: ExitCode.refused,
    });
  }
  return image;
}
