// How long an engine call may take, and what its failure means to the user: every call to the
// engine is named, under a deadline, and its failure told apart (no engine, a refusal, a hang).
import { UserError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { dockerRefusal } from './engine.js';

export function dockerUnreachable(cause: unknown): UserError {
  const host = process.env.DOCKER_HOST;
  if ((cause as NodeJS.ErrnoException | undefined)?.code === 'EACCES') {
    return new UserError(`Docker's socket is there but not open to this user (permission denied${host ? ` at DOCKER_HOST=${host}` : ''})`, {
      hint: 'add yourself to the docker group (`sudo usermod -aG docker $USER`, then log in again), or run as a user that may use Docker',
      cause,
      exitCode: ExitCode.refused,
    });
  }
  return new UserError(
    host ? `Docker is not reachable at DOCKER_HOST=${host}` : 'Docker is not running (no engine answers on its socket)',
    {
      hint: host
        ? 'start that engine, or unset DOCKER_HOST to use the local one'
        : 'start Docker Desktop, or your Docker service (`sudo systemctl start docker`, or `etcd-lab setup-host` on a bare Debian machine)',
      cause,
      exitCode: ExitCode.refused,
    },
  );
}

/** How long a call may take when its caller has no deadline of its own. */
export const DEADLINES = {
  /** A question a well engine answers at once: ping, info, list, inspect. */
  engineMs: 10_000,
  /**
   * A change: create, start, kill, pause, connect, remove. A well engine usually makes it in well
   * under a second, but a busy one (a container's exit still being torn down, iptables locked by
   * another start, a slow disk) has been seen to take over 10 s to start a container. Only an
   * engine slower than this is taken for hung.
   */
  changeMs: 60_000,
  /** `docker compose up` (containers created or recreated, old ones stopped with their grace period). */
  composeMs: 120_000,
  /**
   * Image pulls, builds and imports, and file copies in and out of containers. They are long and
   * stream progress, and a build step may print nothing for minutes: this is an inactivity deadline,
   * started anew by each progress line or chunk, not a bound on the whole.
   */
  idleMs: 300_000,
};

/** What is left until `deadline` (epoch ms), for a call under it; at least 1 s, so the call still says what it was. */
export function timeLeft(deadline: number): number {
  return Math.max(1000, deadline - Date.now());
}

export function inSeconds(ms: number): string {
  return `${ms % 1000 === 0 ? ms / 1000 : (ms / 1000).toFixed(1)} s`;
}

/** The engine took longer than a call's deadline: it names the call, since that is what hung. */
export function engineHung(call: string, ms: number, idle = false): UserError {
  return new UserError(idle ? `the Docker engine stopped making progress on "${call}" (nothing for ${inSeconds(ms)})` : `the Docker engine did not answer "${call}" within ${inSeconds(ms)}`, {
    hint: 'the engine may be hung: check that `docker info` answers; restart Docker Desktop, or the Docker service (`sudo systemctl restart docker`)',
    exitCode: ExitCode.refused,
  });
}

/**
 * Runs one engine call under a deadline, by name. `work` gets a signal that aborts its request when
 * the deadline passes (dockerode takes it as `abortSignal`; where a call does not, we stop waiting).
 * A `work` that calls `alive()` has an inactivity deadline: each sign of progress starts it anew.
 */
export function withDeadline<T>(call: string, ms: number, work: (signal: AbortSignal, alive: () => void) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let progressed = false;
    let done = false;
    const expire = () => {
      done = true;
      controller.abort();
      reject(engineHung(call, ms, progressed));
    };
    const alive = (first = false) => {
      if (done) return;
      if (!first) progressed = true;
      clearTimeout(timer);
      timer = setTimeout(expire, ms);
    };
    alive(true);
    // Not aborted once settled: a stream the call returned (a followed log) lives on.
    const settle = () => {
      done = true;
      clearTimeout(timer);
    };
    Promise.resolve()
      .then(() => work(controller.signal, () => alive()))
      .then(
        (value) => {
          settle();
          resolve(value);
        },
        (error: unknown) => {
          settle();
          reject(error);
        },
      );
  });
}

/** Errors connecting to the engine's socket or DOCKER_HOST: nothing answers there (or not for us). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'EPERM', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN']);

export function isUnreachable(error: unknown): boolean {
  const e = error as NodeJS.ErrnoException | undefined;
  return typeof e?.code === 'string' && UNREACHABLE.has(e.code) && (e.syscall === 'connect' || e.syscall === 'getaddrinfo');
}

/**
 * What an engine call's failure means to the user. Only a socket (or DOCKER_HOST) that refuses or
 * is missing is "Docker is not running"; an answer from the engine (a 400, a 404, a 409, a 500) is
 * shown in the engine's own words; anything else with its own message. A UserError (a deadline,
 * Ctrl-C) is already that.
 */
export function engineError(call: string, error: unknown): UserError {
  if (error instanceof UserError) return error;
  if (isUnreachable(error)) return dockerUnreachable(error);
  return (
    dockerRefusal(error, call) ??
    new UserError(`the Docker engine failed "${call}": ${error instanceof Error ? error.message : String(error)}`, {
      hint: 'see the engine\'s log (Docker Desktop: Troubleshoot; Linux: `journalctl -u docker` or the dockerd log), then try again',
      exitCode: ExitCode.refused,
      cause: error,
    })
  );
}
