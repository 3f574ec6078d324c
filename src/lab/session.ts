// How every command that touches a running lab begins: load the spec, check that Docker answers,
// take the lab's lock (for commands that change it), and make sure this checkout owns the lab.
import { formatProblem } from '../errors.js';
import type { Reporter } from '../progress.js';
import { DockerEngine } from '../engine/docker.js';
import type { Engine } from '../engine/engine.js';
import { LabRuntime } from '../runtime/lab.js';
import { acquireLabLock, type LabLock } from '../runtime/lock.js';
import { loadLab, type LoadOptions } from '../config/load.js';

export interface SessionOptions {
  /** The command, for the lock file and for whoever waits on it; no lock when undefined. */
  lock?: string;
  /** Act even on a lab another checkout made (`down --take-over`). */
  takeOver?: boolean;
  /** Print the spec's warnings (commands that start or change the lab do). */
  warn?: boolean;
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
      onWait: (text) => {
        if (!told) reporter.info(`lab "${lab.spec.name}" is busy: ${text}`);
        told = true;
      },
    });
  }
  try {
    if (!session.takeOver) await runtime.assertOwned();
    return await work(runtime);
  } finally {
    lock?.release();
  }
}
