// Explicit waits with deadlines: poll a probe until it says done, never a fixed sleep. Ctrl-C ends
// a wait at once (Interrupted), so the command can undo what it did.
import { UserError } from '../errors.js';
import { sleep, throwIfInterrupted } from '../interrupt.js';
import type { StepHandle } from '../progress.js';
import { ExitCode } from '../exit-codes.js';

export interface Probe<T> {
  done: boolean;
  /** What is true right now, shown as progress and in the timeout error. */
  detail: string;
  value?: T;
}

export async function waitUntil<T>(
  what: string,
  deadline: number,
  probe: () => Promise<Probe<T>>,
  step?: StepHandle,
  /** cleanup: a wait that is part of undoing after Ctrl-C, so Ctrl-C does not end it. */
  opts: { intervalMs?: number; hint?: string; cleanup?: boolean } = {},
): Promise<T | undefined> {
  const interval = opts.intervalMs ?? 100;
  let last: Probe<T> = { done: false, detail: 'not checked yet' };
  for (;;) {
    if (!opts.cleanup) throwIfInterrupted();
    const started = Date.now();
    last = await probe();
    step?.update(last.detail);
    if (last.done) return last.value;
    if (Date.now() >= deadline) break;
    const pause = Math.min(Math.max(0, interval - (Date.now() - started)), Math.max(0, deadline - Date.now()));
    if (opts.cleanup) await new Promise((resolve) => setTimeout(resolve, pause));
    else await sleep(pause);
  }
  throw new UserError(`timed out waiting for ${what}: ${last.detail}`, { hint: opts.hint, exitCode: ExitCode.failedPartWay });
}
