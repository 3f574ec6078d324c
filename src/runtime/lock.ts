// One command at a time per lab: `up` and `down`, `check` and `kill` must not interleave. A lock
// file per lab (and Docker engine) in a per-user temporary directory, created exclusively, holding
// who took it. A lock whose process is gone is stale and taken over (by exactly one of the commands
// that find it so at once); a live one is waited for briefly, then refused with its holder named.
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileError, UserError } from '../errors.js';
import { sleep } from '../interrupt.js';
import { ExitCode } from '../exit-codes.js';

export interface LockHolder {
  pid: number;
  /** The process's start time where the OS tells (Linux: /proc), so a reused pid is not mistaken for it. */
  started?: string;
  command: string;
  cwd: string;
  startedAt: string;
}

export function lockDir(): string {
  return process.env.ETCD_LAB_LOCK_DIR ?? join(tmpdir(), `etcd-lab-locks-${process.getuid?.() ?? 'user'}`);
}

/** Labs of the same name on different engines (DOCKER_HOST) are different labs. */
export function lockPath(lab: string): string {
  const engine = process.env.DOCKER_HOST;
  const suffix = engine ? `@${createHash('sha256').update(engine).digest('hex').slice(0, 8)}` : '';
  return join(lockDir(), `${lab}${suffix}.lock`);
}

function readHolder(path: string): LockHolder | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

/** A lock file as seen once: its identity (inode, time and bytes: a lock written since differs) and its holder. */
interface SeenLock {
  id: string;
  holder?: LockHolder;
  mtimeMs: number;
}

function seeLock(path: string): SeenLock | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const stats = fstatSync(fd);
    const text = readFileSync(fd, 'utf8');
    let holder: LockHolder | undefined;
    try {
      holder = JSON.parse(text) as LockHolder;
    } catch {
      /* being written, or its writer died mid-write */
    }
    return { id: `${stats.ino}:${stats.mtimeMs}:${text}`, holder, mtimeMs: stats.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

/** A takeover marker older than this was left by a process that died between two system calls. */
const MARKER_STALE_MS = 10_000;

/**
 * Removes the stale lock at `path` if it is still the one `seen`. Of the commands that found the same
 * dead holder at once, exactly one removes it: each first creates a marker named after that very lock
 * file, exclusively, and only the marker's creator looks again and removes the lock. The others go
 * round again and find the lock free, or a live holder (whoever created the next lock first).
 */
function takeOver(path: string, seen: SeenLock): void {
  const marker = `${path}.takeover-${createHash('sha256').update(seen.id).digest('hex').slice(0, 16)}`;
  try {
    closeSync(openSync(marker, 'wx', 0o644));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw fileError(error, marker, 'the lock takeover file', 'set ETCD_LAB_LOCK_DIR to a directory you can write');
    }
    if (Date.now() - mtimeMs(marker) > MARKER_STALE_MS) {
      try {
        unlinkSync(marker);
      } catch {
        /* removed meanwhile */
      }
    }
    return;
  }
  try {
    if (seeLock(path)?.id === seen.id) unlinkSync(path);
  } finally {
    unlinkSync(marker);
  }
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Alive, and (where /proc tells) the same process, not a later one that got its pid. */
/** The live command holding the lab's lock now, if one does. */
export function lockHolder(lab: string): LockHolder | undefined {
  const holder = readHolder(lockPath(lab));
  return holder && holderAlive(holder) ? holder : undefined;
}

export function holderAlive(holder: LockHolder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const started = processStart(holder.pid);
  return holder.started === undefined || started === undefined || started === holder.started;
}

function mtimeMs(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function tryCreate(path: string, holder: LockHolder): boolean {
  try {
    const fd = openSync(path, 'wx', 0o644);
    writeSync(fd, JSON.stringify(holder));
    closeSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw fileError(error, path, 'the lock file', 'set ETCD_LAB_LOCK_DIR to a directory you can write');
  }
}

function describeHolder(h: LockHolder): string {
  const seconds = Math.round((Date.now() - Date.parse(h.startedAt)) / 1000);
  return `\`etcd-lab ${h.command}\` (pid ${h.pid}, started ${seconds}s ago in ${h.cwd})`;
}

export interface LabLock {
  release(): void;
}

/**
 * Takes the lab's lock for `command`, waiting up to `waitMs` for a live holder to finish
 * (`onWait` says who is waited for). Released by `release()` or when the process exits.
 */
export async function acquireLabLock(
  lab: string,
  command: string,
  opts: { waitMs?: number; onWait?: (text: string) => void } = {},
): Promise<LabLock> {
  try {
    mkdirSync(lockDir(), { recursive: true, mode: 0o700 });
  } catch (error) {
    throw fileError(error, lockDir(), 'the lock directory', 'set ETCD_LAB_LOCK_DIR to a directory you can write');
  }
  const path = lockPath(lab);
  const waitSeconds = Number(process.env.ETCD_LAB_LOCK_WAIT ?? 10);
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0) {
    throw new UserError(`ETCD_LAB_LOCK_WAIT must be a number of seconds (got ${JSON.stringify(process.env.ETCD_LAB_LOCK_WAIT)})`, { exitCode: ExitCode.badInput });
  }
  const me: LockHolder = { pid: process.pid, started: processStart(process.pid), command, cwd: process.cwd(), startedAt: new Date().toISOString() };
  const deadline = Date.now() + (opts.waitMs ?? waitSeconds * 1000);
  for (;;) {
    if (tryCreate(path, me)) break;
    const seen = seeLock(path);
    if (!seen) continue; // released meanwhile
    const holder = seen.holder;
    // Unreadable for a moment is a lock being written: only a half-written one a while old is stale.
    if (!holder && Date.now() - seen.mtimeMs < 2000) {
      await sleep(50);
      continue;
    }
    if (!holder || !holderAlive(holder)) {
      // Stale (its process died) or half-written by a process that died: take it over, one of us.
      takeOver(path, seen);
      await sleep(10);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new UserError(`lab "${lab}" is busy: ${describeHolder(holder)} is working on it`, {
        hint: `wait for it to finish and run this again, or stop it (Ctrl-C there undoes what it was doing); the lock is ${path}`,
        exitCode: ExitCode.refused,
      });
    }
    opts.onWait?.(`waiting for ${describeHolder(holder)}`);
    await sleep(250);
  }
  const release = () => {
    if (readHolder(path)?.pid === process.pid) {
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
    }
    process.off('exit', release);
  };
  process.on('exit', release);
  return { release };
}
