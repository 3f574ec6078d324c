// How every command that touches a running lab begins: load the spec, check that Docker answers,
// take the lab's lock (for commands that change it), and make sure this checkout owns the lab. A
// command that takes the lock is recorded in the lab's event log, with its start and end.
import { formatProblem } from '../errors.js';
import type { Reporter } from '../progress.js';
import { DockerEngine } from '../engine/docker.js';
import type { Engine } from '../engine/engine.js';
import { LabRuntime } from '../runtime/lab.js';
import { acquireLabLock, type LabLock } from '../runtime/lock.js';
import { recorded } from '../runtime/event-log.js';
import { loadLab, type LoadOptions } from '../config/load.js';

export interface SessionOptions {
  /** The command, for the lock file and for whoever waits on it; no lock when undefined. */
  lock?: string;
  /** Act even on a lab another checkout made (`down --take-over`). */
  takeOver?: boolean;
  /** Print the spec's warnings (commands that start or change the lab do). */
  warn?: boolean;
  /** What a locked command acts on, in words, for the lab's event log ("etcd2", "3 → 5 members"). */
  detail?: string;
  /** How long to wait for a lock another command holds (ETCD_LAB_LOCK_WAIT, 10 s, when not given). */
  lockWaitMs?: number;
}

/**
 * Runs `work` on this checkout's lab: loaded, Docker answering, locked if asked, owned. The lock is
 * released when `work` ends, however it ends.
 */
export async function withLab<T>(
  opts: LoadOptions & { engine?: Engine },
  session: SessionOptions,
  reporter: Reporter,
  work: (runtime: LabRuntime) => Promise<T>,
): Promise<T> {
  const lab = loadLab(opts);
  if (session.warn) for (const w of lab.warnings) reporter.warn(formatProblem(w));
  const runtime = new LabRuntime(lab, opts.engine ?? new DockerEngine());
  await runtime.ping();
  let lock: LabLock | undefined;
  if (session.lock) {
    let told = false;
    lock = await acquireLabLock(lab.spec.name, session.lock, {
      ...(session.lockWaitMs !== undefined ? { waitMs: session.lockWaitMs } : {}),
      onWait: (text) => {
        if (!told) reporter.info(`lab "${lab.spec.name}" is busy: ${text}`);
        told = true;
      },
    });
  }
  try {
    if (!session.takeOver) await runtime.assertOwned();
    if (!session.lock) return await work(runtime);
    return await recorded(lab.outDir, session.lock, session.detail, () => work(runtime));
  } finally {
    lock?.release();
  }
}
