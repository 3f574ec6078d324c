// The runtime boundary: the only module that talks to Docker (dockerode for the engine API,
// `docker compose` as a child process). Everything else uses this class, so errors carry a fix.
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { pipeline as pipeStreams, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Docker from 'dockerode';
import tar from 'tar-stream';
import { UserError } from '../errors.js';
import { Interrupted, interruptSignal, unlessInterrupted } from '../interrupt.js';
import { ExitCode } from '../exit-codes.js';
import { dockerRefusal, type BuildOptions, type ComposeOptions, type ContainerInfo, type Engine, type NetworkInfo, type ToolFile, type ToolRun, type ServiceRun } from './engine.js';

export type { BuildOptions, ContainerInfo, Engine, NetworkInfo, ToolFile, ToolRun } from './engine.js';


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

function inSeconds(ms: number): string {
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

function isUnreachable(error: unknown): boolean {
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

/**
 * Resolves when a dockerode progress stream ends; rejects on an error event inside it. Ctrl-C, or the
 * call's deadline (`signal`), closes the stream, which makes the engine give up the pull or build;
 * each event counts as progress (`alive`).
 */
function followStream(
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





/** A container or network id as the docker CLI shows it; a name stays whole. */
function short(idOrName: string): string {
  return /^[0-9a-f]{64}$/.test(idOrName) ? idOrName.slice(0, 12) : idOrName;
}

/** A catch handler that lets through Docker's answer `status` ("not found", "already so") and rethrows the rest. */
function unless(status: number) {
  return (e: { statusCode?: number }) => {
    if (e.statusCode !== status) throw e;
  };
}

/** dockerode takes an abortSignal for these too; its types do not say so. */
interface Abortable {
  ping(opts: { abortSignal: AbortSignal }): Promise<unknown>;
  info(opts: { abortSignal: AbortSignal }): Promise<{ OperatingSystem?: string; ServerVersion?: string }>;
}

export class DockerEngine implements Engine {
  readonly docker: Docker;
  /** Deadline of a question to the engine (DEADLINES.engineMs). */
  private readonly engineMs: number;
  /** Deadline of a change the engine makes (DEADLINES.changeMs). */
  private readonly changeMs: number;
  /** Inactivity deadline of pulls, builds, imports and file copies (DEADLINES.idleMs). */
  private readonly idleMs: number;

  /**
   * The deadlines are per call, not the modem's `timeout`: that one would also end a log that is
   * followed, or a build that streams progress for many minutes.
   */
  constructor(docker?: Docker, deadlines: { engineMs?: number; changeMs?: number; idleMs?: number } = {}) {
    // dockerode honours DOCKER_HOST (and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) like the docker CLI.
    this.docker = docker ?? new Docker();
    this.engineMs = deadlines.engineMs ?? DEADLINES.engineMs;
    this.changeMs = deadlines.changeMs ?? DEADLINES.changeMs;
    this.idleMs = deadlines.idleMs ?? DEADLINES.idleMs;
  }

  /** Every engine call goes through here: named, under a deadline, its failure told apart by engineError. */
  private call<T>(name: string, work: (signal: AbortSignal, alive: () => void) => Promise<T>, ms = this.engineMs): Promise<T> {
    return withDeadline(name, ms, work).catch((error: unknown) => {
      throw engineError(name, error);
    });
  }

  /** A call that changes something (DEADLINES.changeMs, plus `extraMs` such as a stop's grace period). */
  private change<T>(name: string, work: (signal: AbortSignal) => Promise<T>, extraMs = 0): Promise<T> {
    return this.call(name, work, this.changeMs + extraMs);
  }

  async ping(): Promise<void> {
    await this.call('ping', (abortSignal) => (this.docker as unknown as Abortable).ping({ abortSignal }));
  }

  async info(): Promise<{ operatingSystem: string; serverVersion: string; dockerDesktop: boolean }> {
    const info = await this.call('info', (abortSignal) => (this.docker as unknown as Abortable).info({ abortSignal }));
    const operatingSystem = String(info.OperatingSystem ?? '');
    return { operatingSystem, serverVersion: String(info.ServerVersion ?? ''), dockerDesktop: /Docker Desktop/i.test(operatingSystem) };
  }

  async imageExists(ref: string): Promise<boolean> {
    return (await this.imageLabels(ref)) !== undefined;
  }

  async imageLabels(ref: string): Promise<Record<string, string> | undefined> {
    try {
      // No abortSignal here in dockerode: on expiry we stop waiting.
      const image = await this.call(`inspect image ${ref}`, () => this.docker.getImage(ref).inspect());
      return (image.Config?.Labels as Record<string, string> | null | undefined) ?? {};
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
  }

  /** Pulls an image. Returns the registry's refusal as text (no registry here, no such tag) instead of throwing. */
  async pullImage(ref: string, onLine?: (line: string) => void): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      await withDeadline(`pull ${ref}`, this.idleMs, async (abortSignal, alive) => {
        const stream = (await this.docker.pull(ref, { abortSignal })) as NodeJS.ReadableStream;
        await followStream(this.docker, stream, onLine, { signal: abortSignal, alive });
      });
      return { ok: true };
    } catch (error) {
      // Ctrl-C, a hung engine, no engine: not the registry's answer.
      if (error instanceof UserError) throw error;
      if (isUnreachable(error)) throw dockerUnreachable(error);
      return { ok: false, reason: shortPullError((error as Error).message) };
    }
  }

  async buildImage(opts: BuildOptions): Promise<void> {
    await this.call(
      `build image ${opts.tag}`,
      async (abortSignal, alive) => {
        const stream = await this.docker.buildImage(
          // The whole directory: a recipe's other files (patches) are part of it.
          { context: opts.context, src: readdirSync(opts.context) },
          { t: opts.tag, buildargs: opts.buildArgs ?? {}, labels: opts.labels ?? {}, rm: true, forcerm: true, abortSignal },
        );
        await followStream(this.docker, stream, opts.onLine, { signal: abortSignal, alive });
      },
      this.idleMs,
    );
  }

  async removeDanglingImages(labelFilters: string[]): Promise<{ removed: number; bytes: number }> {
    const images = await this.call('list images', (abortSignal) => this.docker.listImages({ filters: { dangling: ['true'], label: labelFilters }, abortSignal }));
    let bytes = 0;
    for (const image of images) {
      await this.change(`remove image ${image.Id.slice(7, 19)}`, (abortSignal) => this.docker.getImage(image.Id).remove({ abortSignal }));
      bytes += image.Size;
    }
    return { removed: images.length, bytes };
  }

  async containers(labelFilters: string[]): Promise<ContainerInfo[]> {
    const list = await this.call('list containers', (abortSignal) => this.docker.listContainers({ all: true, filters: { label: labelFilters }, abortSignal }));
    return list.map((c) => {
      const hostPorts: Record<number, number> = {};
      for (const p of c.Ports ?? []) if (p.PublicPort && p.Type === 'tcp') hostPorts[p.PrivatePort] = p.PublicPort;
      return {
        id: c.Id,
        name: (c.Names?.[0] ?? '').replace(/^\//, ''),
        labels: c.Labels ?? {},
        image: c.Image,
        state: c.State,
        status: c.Status,
        hostPorts,
        networks: Object.keys(c.NetworkSettings?.Networks ?? {}),
        command: c.Command,
      };
    });
  }

  async networks(labelFilters?: string[]): Promise<NetworkInfo[]> {
    const list = await this.call('list networks', (abortSignal) => this.docker.listNetworks({ ...(labelFilters ? { filters: { label: labelFilters } } : {}), abortSignal }));
    return list.map((n) => ({
      id: n.Id,
      name: n.Name,
      labels: n.Labels ?? {},
      subnets: (n.IPAM?.Config ?? []).map((c) => c.Subnet ?? '').filter((s) => s.includes('.')),
    }));
  }

  async volumes(labelFilters: string[]): Promise<{ name: string; labels: Record<string, string> }[]> {
    const { Volumes } = await this.call('list volumes', (abortSignal) => this.docker.listVolumes({ filters: { label: labelFilters }, abortSignal }));
    return (Volumes ?? []).map((v) => ({ name: v.Name, labels: (v.Labels ?? {}) as Record<string, string> }));
  }

  /** Stops gracefully (SIGTERM, then SIGKILL after `graceSeconds`) and removes. */
  async removeContainer(id: string, graceSeconds = 10): Promise<void> {
    const container = this.docker.getContainer(id);
    // A paused container cannot take the stop signal.
    await this.change(`unpause container ${short(id)}`, (abortSignal) => container.unpause({ abortSignal })).catch(() => {});
    await this.change(`stop container ${short(id)}`, (abortSignal) => container.stop({ t: graceSeconds, abortSignal }), graceSeconds * 1000).catch(() => {});
    await this.change(`remove container ${short(id)}`, (abortSignal) => container.remove({ force: true, v: false, abortSignal })).catch(unless(404));
  }

  async killContainer(id: string, signal = 'SIGKILL'): Promise<void> {
    await this.change(`kill container ${short(id)}`, (abortSignal) => this.docker.getContainer(id).kill({ signal, abortSignal }));
  }

  async stopContainer(id: string, graceSeconds = 10): Promise<void> {
    await this.change(`stop container ${short(id)}`, (abortSignal) => this.docker.getContainer(id).stop({ t: graceSeconds, abortSignal }), graceSeconds * 1000).catch(
      unless(304), // already stopped
    );
  }

  async startContainer(id: string): Promise<void> {
    await this.change(`start container ${short(id)}`, (abortSignal) => this.docker.getContainer(id).start({ abortSignal })).catch(unless(304)); // 304: already running
  }

  async pauseContainer(id: string): Promise<void> {
    await this.change(`pause container ${short(id)}`, (abortSignal) => this.docker.getContainer(id).pause({ abortSignal }));
  }

  async unpauseContainer(id: string): Promise<void> {
    await this.change(`unpause container ${short(id)}`, (abortSignal) => this.docker.getContainer(id).unpause({ abortSignal }));
  }

  async createNetwork(name: string, labels: Record<string, string>, options: Record<string, string> = {}): Promise<string> {
    const network = await this.change(`create network ${name}`, (abortSignal) =>
      this.docker.createNetwork({ Name: name, Driver: 'bridge', Labels: labels, Options: options, CheckDuplicate: true, abortSignal }),
    );
    return network.id;
  }

  async connectNetwork(networkId: string, containerId: string, ipv4Address?: string): Promise<void> {
    await this.change(`connect container ${short(containerId)} to network ${short(networkId)}`, (abortSignal) => {
      const options = { Container: containerId, ...(ipv4Address ? { EndpointConfig: { IPAMConfig: { IPv4Address: ipv4Address } } } : {}), abortSignal };
      return this.docker.getNetwork(networkId).connect(options);
    });
  }

  async disconnectNetwork(networkId: string, containerId: string): Promise<void> {
    await this.change(`disconnect container ${short(containerId)} from network ${short(networkId)}`, (abortSignal) =>
      this.docker.getNetwork(networkId).disconnect({ Container: containerId, Force: true, abortSignal }),
    );
  }

  /**
   * Runs a short-lived container to completion and returns its exit code and output: how etcd-lab
   * looks at the lab from inside a Docker network, as a KIND node would.
   */
  async runOnce(opts: {
    image: string;
    command: string[];
    network: string;
    labels: Record<string, string>;
    timeoutMs: number;
    /** "host:container:ro" bind mounts. */
    binds?: string[];
  }): Promise<{ exitCode: number; output: string }> {
    return this.runTool(opts);
  }

  /**
   * Runs one of an image's own tools (etcdctl, etcdutl) in a container of its own and removes it.
   * Files go in and out through the engine's archive API, not bind mounts: that needs no shell in
   * the image and no host path the engine can see (Docker Desktop shares only some).
   */
  async runTool(opts: ToolRun): Promise<{ exitCode: number; output: string; containerId: string }> {
    const tool = opts.command[0] ?? 'tool';
    const container = await this.change(`create container for ${tool}`, (abortSignal) =>
      this.docker.createContainer({
        Image: opts.image,
        Entrypoint: opts.command.slice(0, 1),
        Cmd: opts.command.slice(1),
        Env: opts.env,
        Labels: opts.labels,
        HostConfig: {
          NetworkMode: opts.network ?? 'none',
          Binds: [...(opts.binds ?? []), ...(opts.volumes ?? []).map((v) => `${v.volume}:${v.path}`)],
        },
        abortSignal,
      }),
    );
    const kill = () => void this.change(`kill ${tool}`, (abortSignal) => container.kill({ abortSignal })).catch(() => {});
    let kept = false;
    try {
      const inputs = opts.inputs;
      if (inputs) {
        await this.call(
          `copy files into ${tool}'s container`,
          (abortSignal, alive) => container.putArchive(counted(packFiles(inputs.files), alive), { path: inputs.dir, abortSignal }),
          this.idleMs,
        );
      }
      await this.change(`start ${tool}`, (abortSignal) => container.start({ abortSignal }));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, opts.timeoutMs);
      // The tool's own timeout kills it; the engine then has its usual deadline to say so.
      const { StatusCode } = (await this.call(`wait for ${tool}`, (abortSignal) => unlessInterrupted(container.wait({ abortSignal }), kill), opts.timeoutMs + this.engineMs).finally(() =>
        clearTimeout(timer),
      )) as { StatusCode: number };
      const raw = (await this.call(`logs of ${tool}`, (abortSignal) => container.logs({ stdout: true, stderr: true, abortSignal }))) as unknown as Buffer;
      const output = opts.output;
      if (StatusCode === 0 && output) {
        await this.call(
          `copy ${output.from} out of ${tool}'s container`,
          async (abortSignal, alive) => extractFile(counted((await container.getArchive({ path: output.from, abortSignal })) as unknown as NodeJS.ReadableStream, alive), output.to),
          this.idleMs,
        );
      }
      const text = demuxedText(raw).trim();
      // Kept only for a caller that gets its id back: a failure on the way removes it.
      kept = Boolean(opts.keep);
      return { exitCode: StatusCode, output: timedOut ? `${text}\n${tool} timed out after ${Math.round(opts.timeoutMs / 1000)} s`.trim() : text, containerId: container.id };
    } finally {
      if (!kept) await this.change(`remove ${tool}'s container`, (abortSignal) => container.remove({ force: true, abortSignal })).catch(() => {});
    }
  }

  async runService(opts: ServiceRun): Promise<string> {
    const port = opts.publish ? `${opts.publish.containerPort}/tcp` : undefined;
    const container = await this.change(`create container ${opts.name}`, (abortSignal) =>
      this.docker.createContainer({
        name: opts.name,
        Image: opts.image,
        Cmd: opts.args,
        Labels: opts.labels,
        ...(opts.env ? { Env: opts.env } : {}),
        ...(port ? { ExposedPorts: { [port]: {} } } : {}),
        HostConfig: {
          NetworkMode: opts.network,
          Binds: opts.binds ?? [],
          ...(opts.capAdd ? { CapAdd: opts.capAdd } : {}),
          ...(port ? { PortBindings: { [port]: [{ HostIp: '127.0.0.1', HostPort: opts.publish!.hostPort === 0 ? '' : String(opts.publish!.hostPort) }] } } : {}),
        },
        abortSignal,
      }),
    );
    try {
      await this.change(`start container ${opts.name}`, (abortSignal) => container.start({ abortSignal }));
    } catch (error) {
      // Started or nothing: a container that was created but cannot start is removed again.
      await this.change(`remove container ${opts.name}`, (abortSignal) => container.remove({ force: true, abortSignal })).catch(() => {});
      throw error;
    }
    return container.id;
  }

  /** A named volume's labels, or undefined when there is no such volume. */
  async volumeLabels(name: string): Promise<Record<string, string> | undefined> {
    try {
      const info = await this.call(`inspect volume ${name}`, (abortSignal) => this.docker.getVolume(name).inspect({ abortSignal }));
      return (info.Labels ?? {}) as Record<string, string>;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<void> {
    await this.change(`create volume ${name}`, (abortSignal) => this.docker.createVolume({ Name: name, Driver: 'local', Labels: labels, abortSignal }));
  }

  /**
   * Copies the contents of a directory of a (stopped) container into a volume, owners and modes kept,
   * as a tar stream to a second container that is created but never started (one container cannot
   * stream to itself: the engine holds it for the read while the write waits).
   */
  async copyIntoVolume(from: { containerId: string; path: string }, volume: string, image: string, labels: Record<string, string>): Promise<void> {
    const target = await this.change(`create container for volume ${volume}`, (abortSignal) =>
      this.docker.createContainer({ Image: image, Entrypoint: ['true'], Labels: labels, HostConfig: { NetworkMode: 'none', Binds: [`${volume}:/to`] }, abortSignal }),
    );
    try {
      await this.call(
        `copy ${from.path} of container ${short(from.containerId)} into volume ${volume}`,
        async (abortSignal, alive) => {
          const stream = (await this.docker.getContainer(from.containerId).getArchive({ path: `${from.path.replace(/\/$/, '')}/.`, abortSignal })) as unknown as NodeJS.ReadableStream;
          await target.putArchive(counted(stream, alive), { path: '/to', abortSignal });
        },
        this.idleMs,
      );
    } finally {
      await this.change(`remove container for volume ${volume}`, (abortSignal) => target.remove({ force: true, abortSignal })).catch(() => {});
    }
  }

  /** Copies every file of one volume into another. */
  async copyVolume(from: string, to: string, image: string, labels: Record<string, string>): Promise<void> {
    const source = await this.change(`create container for volume ${from}`, (abortSignal) =>
      this.docker.createContainer({ Image: image, Entrypoint: ['true'], Labels: labels, HostConfig: { NetworkMode: 'none', Binds: [`${from}:/from:ro`] }, abortSignal }),
    );
    try {
      await this.copyIntoVolume({ containerId: source.id, path: '/from' }, to, image, labels);
    } finally {
      await this.change(`remove container for volume ${from}`, (abortSignal) => source.remove({ force: true, abortSignal })).catch(() => {});
    }
  }

  async removeNetwork(id: string): Promise<void> {
    await this.change(`remove network ${short(id)}`, (abortSignal) => this.docker.getNetwork(id).remove({ abortSignal })).catch(unless(404));
  }

  async removeVolume(name: string): Promise<void> {
    await this.change(`remove volume ${name}`, (abortSignal) => this.docker.getVolume(name).remove({ abortSignal })).catch(unless(404));
  }

  /** Writes a container's logs to the given streams; resolves when done (or, following, when the container ends). */
  async logs(
    id: string,
    opts: { follow: boolean; tail?: number; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
  ): Promise<void> {
    const container = this.docker.getContainer(id);
    const info = await this.call(`inspect container ${short(id)}`, (abortSignal) => container.inspect({ abortSignal }));
    const options = { stdout: true, stderr: true, timestamps: false, ...(opts.tail === undefined ? {} : { tail: opts.tail }) };
    if (!opts.follow) {
      // Read whole, so a long log gets the long deadline.
      const buffer = (await this.call(`logs of ${short(id)}`, (abortSignal) => container.logs({ ...options, follow: false, abortSignal }), this.idleMs)) as unknown as Buffer;
      if (info.Config.Tty) opts.stdout.write(buffer);
      else demuxBuffer(buffer, opts.stdout, opts.stderr);
      return;
    }
    // The deadline covers the engine's answer; following then lasts as long as the container (or until Ctrl-C).
    const stream = (await this.call(`follow logs of ${short(id)}`, (abortSignal) => container.logs({ ...options, follow: true, abortSignal }))) as unknown as NodeJS.ReadableStream;
    if (info.Config.Tty) stream.pipe(opts.stdout, { end: false });
    else this.docker.modem.demuxStream(stream, opts.stdout, opts.stderr);
    await new Promise<void>((resolve) => stream.on('end', () => resolve()));
  }

  /** `docker compose version`: compose v2 answers as a docker plugin. */
  async composeVersion(): Promise<string | undefined> {
    try {
      const { stdout } = await run('docker', ['compose', 'version', '--short'], { timeoutMs: DEADLINES.engineMs });
      return stdout.trim();
    } catch (error) {
      // Ctrl-C, or a docker CLI that hangs: not "compose is missing".
      if (error instanceof UserError) throw error;
      return undefined;
    }
  }

  /**
   * Runs `docker compose -p <project> -f <file> <args>`. ETCD_LAB_* variables are removed from the
   * child's environment so the generated .env (already resolved from flags, env and .env) decides.
   * It is stopped after `timeoutMs` (a caller with a deadline passes what is left of it), else
   * after DEADLINES.composeMs.
   */
  async compose(
    project: string,
    file: string,
    args: string[],
    onLine?: (line: string) => void,
    opts: ComposeOptions = {},
  ): Promise<string> {
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_LAB_'))), ...opts.env };
    const { stdout } = await run('docker', ['compose', '--project-name', project, '--file', file, ...args], {
      env,
      onLine,
      cleanup: opts.cleanup,
      timeoutMs: opts.timeoutMs ?? DEADLINES.composeMs,
    });
    return stdout;
  }

  /** Imports a root file system (a tar stream) as an image: how a base is made without a registry. */
  async importImage(tar: NodeJS.ReadableStream, repo: string, tag: string): Promise<void> {
    await this.call(
      `import image ${repo}:${tag}`,
      async (abortSignal, alive) => {
        const stream = await this.docker.importImage(counted(tar, alive), { repo, tag, abortSignal });
        await followStream(this.docker, stream, undefined, { signal: abortSignal, alive });
      },
      this.idleMs,
    );
  }
}

/** "(HTTP code 500) server error - Get …: dial tcp: lookup gcr.io on …: no such host" → "lookup gcr.io …: no such host". */
export function shortPullError(message: string): string {
  const line = message.split('\n')[0]!.trim();
  const dial = /dial tcp: (.*)$/.exec(line)?.[1];
  return (dial ?? line.replace(/^\(HTTP code \d+\)\s*[\w ]*error - /, '')).replace(/ on [\d.:]+:53/, '').trim();
}

/** The same stream, each chunk through it counting as progress for an inactivity deadline. */
function counted(source: NodeJS.ReadableStream, alive: () => void): NodeJS.ReadableStream {
  const through = new Transform({
    transform(chunk, _encoding, done) {
      alive();
      done(null, chunk);
    },
  });
  pipeStreams(source, through, () => {}); // an error in the source ends `through` with it
  return through;
}

/** A tar stream of the given files, host files streamed rather than read whole. */
function packFiles(files: ToolFile[]): NodeJS.ReadableStream {
  const pack = tar.pack();
  void (async () => {
    try {
      for (const file of files) {
        const mode = file.mode ?? 0o600;
        if (file.hostPath !== undefined) {
          const { size } = await stat(file.hostPath);
          const entry = pack.entry({ name: file.name, size, mode });
          await pipeline(createReadStream(file.hostPath), entry);
        } else {
          await new Promise<void>((resolve, reject) => pack.entry({ name: file.name, mode }, file.content ?? '', (e) => (e ? reject(e) : resolve())));
        }
      }
      pack.finalize();
    } catch (error) {
      pack.destroy(error as Error);
    }
  })();
  return pack as unknown as NodeJS.ReadableStream;
}

/** Writes the single file of an archive the engine sent (GET …/archive) to `to`. */
async function extractFile(archive: NodeJS.ReadableStream, to: string): Promise<void> {
  const extract = tar.extract();
  let found = false;
  extract.on('entry', (header, stream, next) => {
    if (header.type !== 'file' || found) {
      stream.on('end', next);
      stream.resume();
      return;
    }
    found = true;
    pipeline(stream, createWriteStream(to, { mode: 0o600 })).then(() => next(), (e: Error) => extract.destroy(e));
  });
  await pipeline(archive, extract);
  if (!found) throw new Error(`the container's archive held no file for ${basename(to)}`);
}

/** Splits Docker's multiplexed log format (8-byte frame headers) into stdout and stderr. */
function demuxBuffer(buffer: Buffer, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): void {
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const kind = buffer[offset];
    const length = buffer.readUInt32BE(offset + 4);
    const payload = buffer.subarray(offset + 8, offset + 8 + length);
    (kind === 2 ? stderr : stdout).write(payload);
    offset += 8 + length;
  }
}

/** A container's log (no TTY) as text, stdout and stderr in the order they were written. */
export function demuxedText(buffer: Buffer): string {
  const out: Buffer[] = [];
  const sink = { write: (b: Buffer) => out.push(Buffer.from(b)) } as unknown as NodeJS.WritableStream;
  demuxBuffer(buffer, sink, sink);
  return Buffer.concat(out).toString('utf8');
}

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
