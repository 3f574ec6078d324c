// Child processes (docker compose, kind, git): each in its own process group, under a deadline,
// stopped at Ctrl-C before whatever it made is undone.
import { spawn } from 'node:child_process';
import { UserError } from '../errors.js';
import { Interrupted, interruptSignal } from '../interrupt.js';
import { ExitCode } from '../exit-codes.js';
import { inSeconds } from './deadlines.js';

/** A child that ran past its deadline, by its command line, with its last words. */
function runTimedOut(command: string, args: string[], opts: { timeoutMs: number; idle?: boolean }, output: string): UserError {
  const last = output.trim().split('\n').filter(Boolean).at(-1)?.trim();
  return new UserError(`\`${[command, ...args].join(' ')}\` ${opts.idle ? 'printed nothing' : 'did not finish'} within ${inSeconds(opts.timeoutMs)}: stopped`, {
    hint: `${last ? `its last output: "${last}". ` : ''}It may wait on the Docker engine (does \`docker info\` answer?) or on the network; a longer --timeout gives it more time, where the command has one`,
    exitCode: ExitCode.failedPartWay,
  });
}

/** Signals a child's whole process group (it runs detached, in a group of its own). */
function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  try {
    if (pid) process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/**
 * Runs a command to completion, collecting output; rejects with the tail of stderr. The child runs
 * in its own process group, so a Ctrl-C at the terminal reaches etcd-lab only; etcd-lab then stops
 * the child (SIGTERM, SIGKILL after 5 s) and rejects with Interrupted once it has exited, so that
 * whatever it made can be undone after it, not while it still works. Past `timeoutMs` it is stopped
 * the same way and the error names the command. One function, longer than most: the child's
 * deadline, signals, exit hook and output share their state.
 */
export function run(
  command: string,
  args: string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    onLine?: (line: string) => void;
    input?: string;
    cleanup?: boolean;
    /** Every run has a deadline: the caller's, or what is left of it. */
    timeoutMs: number;
    /** `timeoutMs` counts from the last output instead: for long work that prints its progress. */
    idle?: boolean;
  },
): Promise<{ stdout: string; stderr: string }> {
  // Cleanup after a Ctrl-C runs with a signal that never aborts: it is the undoing.
  const signal = opts.cleanup ? new AbortController().signal : interruptSignal();
  if (signal.aborted) return Promise.reject(new Interrupted());
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let stopped: 'interrupted' | 'timed out' | undefined;
    const stopChild = (why: 'interrupted' | 'timed out' = 'interrupted') => {
      stopped ??= why;
      signalGroup(child.pid, 'SIGTERM');
      setTimeout(() => signalGroup(child.pid, 'SIGKILL'), 5000).unref();
    };
    const onAbort = () => stopChild('interrupted');
    signal.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => stopChild('timed out'), opts.timeoutMs);
    };
    arm();
    // Its own process group outlives us: if we exit first (a second Ctrl-C), take it along.
    const onExit = () => signalGroup(child.pid, 'SIGKILL');
    process.on('exit', onExit);
    let stdout = '';
    let stderr = '';
    const lines = (chunk: Buffer) => {
      if (opts.idle && !stopped) arm();
      if (!opts.onLine) return;
      for (const line of chunk.toString().split('\n')) if (line.trim()) opts.onLine(line.trim());
    };
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c;
      lines(c);
    });
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c;
      lines(c);
    });
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      process.off('exit', onExit);
    };
    child.on('error', (error) => {
      done();
      reject(error);
    });
    child.on('close', (code) => {
      done();
      if (stopped === 'interrupted') reject(new Interrupted());
      else if (stopped === 'timed out') reject(runTimedOut(command, args, opts, `${stderr}\n${stdout}`));
      else if (code === 0) resolve({ stdout, stderr });
      else {
        const tail = stderr.trim().split('\n').slice(-5).join('\n');
        reject(Object.assign(new Error(`${command} ${args.join(' ')} exited with ${code}${tail ? `:\n${tail}` : ''}`), { code, stdout, stderr }));
      }
    });
    if (child.stdin) {
      // A child that exits without reading its input must not crash us with EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
  });
}
