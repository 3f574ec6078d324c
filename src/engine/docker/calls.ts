// What every Docker client shares: the dockerode handle, the deadlines, and how a call is made
// (named, under its deadline, its failure told apart), plus the streams' small helpers.
import { pipeline as pipeStreams, Transform } from 'node:stream';
import type Docker from 'dockerode';
import { Interrupted, interruptSignal } from '../../interrupt.js';
import { DEADLINES, engineError, withDeadline } from '../deadlines.js';

export class DockerCalls {
  /** Deadline of a question to the engine (DEADLINES.engineMs). */
  readonly engineMs: number;
  /** Deadline of a change the engine makes (DEADLINES.changeMs). */
  readonly changeMs: number;
  /** Inactivity deadline of pulls, builds, imports and file copies (DEADLINES.idleMs). */
  readonly idleMs: number;

  constructor(
    readonly docker: Docker,
    deadlines: { engineMs?: number; changeMs?: number; idleMs?: number } = {},
  ) {
    this.engineMs = deadlines.engineMs ?? DEADLINES.engineMs;
    this.changeMs = deadlines.changeMs ?? DEADLINES.changeMs;
    this.idleMs = deadlines.idleMs ?? DEADLINES.idleMs;
  }

  /** Every engine call goes through here: named, under a deadline, its failure told apart by engineError. */
  call<T>(name: string, work: (signal: AbortSignal, alive: () => void) => Promise<T>, ms = this.engineMs): Promise<T> {
    return withDeadline(name, ms, work).catch((error: unknown) => {
      throw engineError(name, error);
    });
  }

  /** A call that changes something (DEADLINES.changeMs, plus `extraMs` such as a stop's grace period). */
  change<T>(name: string, work: (signal: AbortSignal) => Promise<T>, extraMs = 0): Promise<T> {
    return this.call(name, work, this.changeMs + extraMs);
  }
}

/** A container or network id as the docker CLI shows it; a name stays whole. */
export function short(idOrName: string): string {
  return /^[0-9a-f]{64}$/.test(idOrName) ? idOrName.slice(0, 12) : idOrName;
}

/** A catch handler that lets through Docker's answer `status` ("not found", "already so") and rethrows the rest. */
export function unless(status: number) {
  return (e: { statusCode?: number }) => {
    if (e.statusCode !== status) throw e;
  };
}

/**
 * Resolves when a dockerode progress stream ends; rejects on an error event inside it. Ctrl-C, or the
 * call's deadline (`signal`), closes the stream, which makes the engine give up the pull or build;
 * each event counts as progress (`alive`).
 */
export function followStream(
  docker: Docker,
  stream: NodeJS.ReadableStream,
  onLine: ((line: string) => void) | undefined,
  deadline: { signal: AbortSignal; alive: () => void },
): Promise<void> {
  const signal = interruptSignal();
  return new Promise((resolve, reject) => {
    const close = () => (stream as unknown as { destroy(): void }).destroy();
    const onAbort = () => {
      close();
      reject(new Interrupted());
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    deadline.signal.addEventListener('abort', close, { once: true });
    docker.modem.followProgress(
      stream,
      (error: Error | null, events: { error?: string; errorDetail?: { message?: string } }[]) => {
        signal.removeEventListener('abort', onAbort);
        deadline.signal.removeEventListener('abort', close);
        const failed = error ?? events.find((e) => e.error);
        if (failed) reject(new Error(failed instanceof Error ? failed.message : (failed.errorDetail?.message ?? failed.error)));
        else resolve();
      },
      (event: { stream?: string; status?: string; progress?: string }) => {
        deadline.alive();
        // The engine colours a build step's stderr (ESC[91m … ESC[0m); progress shows plain text.
        const text = (event.stream ?? [event.status, event.progress].filter(Boolean).join(' ')).replace(/\u001b\[[0-9;]*m/g, '').trim();
        if (text && onLine) onLine(text);
      },
    );
  });
}

/** The same stream, each chunk through it counting as progress for an inactivity deadline. */
export function counted(source: NodeJS.ReadableStream, alive: () => void): NodeJS.ReadableStream {
  const through = new Transform({
    transform(chunk, _encoding, done) {
      alive();
      done(null, chunk);
    },
  });
  pipeStreams(source, through, () => {}); // an error in the source ends `through` with it
  return through;
}
