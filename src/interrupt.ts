// Ctrl-C (SIGINT) and SIGTERM. Outside a guarded section the process exits at once (130): nothing
// is half-made there. Inside one, the first signal aborts `interruptSignal` — child processes are
// stopped, waits end — and the command undoes what it did, as after a failure; a second signal
// exits at once and lists what is left. Core code only reads the signal; the CLI installs the handlers.
import { UserError } from './errors.js';
import { ExitCode } from './exit-codes.js';

export class Interrupted extends UserError {
  constructor(message = 'interrupted', hint?: string) {
    super(message, { exitCode: ExitCode.interrupted, hint });
    this.name = 'Interrupted';
  }
}

interface Guard {
  /** What happens now, for the line printed at the first Ctrl-C: "rolling back what this run created". */
  undoing: string;
  /** What would be left if the process exited now (asked at the second Ctrl-C, briefly). */
  leftovers?: () => Promise<string[]>;
}

const controller = new AbortController();
const guards: Guard[] = [];

/** Aborted at the first Ctrl-C inside a guarded section. */
export function interruptSignal(): AbortSignal {
  return controller.signal;
}

export function isInterrupted(): boolean {
  return controller.signal.aborted;
}

export function throwIfInterrupted(): void {
  if (controller.signal.aborted) throw new Interrupted();
}

/** Runs `work` so that a Ctrl-C lets it clean up instead of killing the process mid-change. */
export async function guarded<T>(guard: Guard, work: () => Promise<T>): Promise<T> {
  guards.push(guard);
  try {
    return await work();
  } finally {
    guards.splice(guards.indexOf(guard), 1);
  }
}

/** Sleeps; resolves false (early) when `signal` aborts (Ctrl-C unless told otherwise). Leaves no listener behind. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal = controller.signal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (value: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(value);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Sleeps, or throws Interrupted at Ctrl-C. */
export async function sleep(ms: number): Promise<void> {
  if (!(await sleepUnlessAborted(ms))) throw new Interrupted();
}

/** Races a promise against the interrupt; `onInterrupt` may stop the work behind it. */
export function unlessInterrupted<T>(work: Promise<T>, onInterrupt?: () => void): Promise<T> {
  const signal = controller.signal;
  if (signal.aborted) {
    onInterrupt?.();
    return Promise.reject(new Interrupted());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      onInterrupt?.();
      reject(new Interrupted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function withDeadline<T>(work: Promise<T>, ms: number, fallback: T): Promise<T> {
  return Promise.race([work.catch(() => fallback), new Promise<T>((r) => setTimeout(() => r(fallback), ms).unref())]);
}

let installed = false;

/** Installs the SIGINT/SIGTERM handlers, once per process (tests run the CLI many times in one). */
export function installInterruptHandlers(stderr: NodeJS.WritableStream = process.stderr): void {
  if (installed) return;
  installed = true;
  let count = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    count += 1;
    const guard = guards.at(-1);
    if (!guard) {
      stderr.write(`\ninterrupted (${signal})\n`);
      process.exit(ExitCode.interrupted);
    }
    if (count === 1) {
      stderr.write(`\ninterrupted (${signal}): ${guard.undoing} — press Ctrl-C again to stop at once\n`);
      controller.abort();
      return;
    }
    // One line, written whole once the leftovers are known: the undoing may still print meanwhile.
    void withDeadline(guard.leftovers?.() ?? Promise.resolve([]), 1500, [] as string[]).then((left) => {
      stderr.write(`\nstopping at once${left.length > 0 ? `; left behind: ${left.join(', ')}` : ''}\n`);
      process.exit(ExitCode.interrupted);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
