// The runtime boundary: the only module that talks to Docker (dockerode for the engine API,
// `docker compose` as a child process). Everything else uses this class, so errors carry a fix.
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import Docker from 'dockerode';
import tar from 'tar-stream';
import { UserError } from '../errors.js';
import { Interrupted, interruptSignal, unlessInterrupted } from '../interrupt.js';

export interface BuildOptions {
  context: string;
  tag: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  onLine?: (line: string) => void;
}

export function dockerUnreachable(cause: unknown): UserError {
  const host = process.env.DOCKER_HOST;
  return new UserError(
    host ? `Docker is not reachable at DOCKER_HOST=${host}` : 'Docker is not running (no engine answers on its socket)',
    {
      hint: host
        ? 'start that engine, or unset DOCKER_HOST to use the local one'
        : 'start Docker Desktop, or your Docker service (`sudo systemctl start docker`, or `etcd-lab setup-host` on a bare Debian machine)',
      cause,
      exitCode: 3,
    },
  );
}

/**
 * Resolves when a dockerode progress stream ends; rejects on an error event inside it. Ctrl-C closes
 * the stream, which makes the engine give up the pull or build.
 */
function followStream(docker: Docker, stream: NodeJS.ReadableStream, onLine?: (line: string) => void): Promise<void> {
  const signal = interruptSignal();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      (stream as unknown as { destroy(): void }).destroy();
      reject(new Interrupted());
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    docker.modem.followProgress(
      stream,
      (error: Error | null, events: { error?: string; errorDetail?: { message?: string } }[]) => {
        signal.removeEventListener('abort', onAbort);
        const failed = error ?? events.find((e) => e.error);
        if (failed) reject(new Error(failed instanceof Error ? failed.message : (failed.errorDetail?.message ?? failed.error)));
        else resolve();
      },
      (event: { stream?: string; status?: string; progress?: string }) => {
        const text = (event.stream ?? [event.status, event.progress].filter(Boolean).join(' ')).trim();
        if (text && onLine) onLine(text);
      },
    );
  });
}

/** A file put into a tool's container before it starts: from the host, or given as content. */
export interface ToolFile {
  name: string;
  content?: string | Buffer;
  /** A host file, streamed (a snapshot may be gigabytes). */
  hostPath?: string;
  mode?: number;
}

export interface ToolRun {
  image: string;
  /** The executable, then its arguments. */
  command: string[];
  env?: string[];
  /** A Docker network to join; none by default. */
  network?: string;
  /** Named volumes to mount. */
  volumes?: { volume: string; path: string }[];
  /** "host:container:ro" bind mounts. */
  binds?: string[];
  /** Files to put into a directory that exists in the image (/tmp) before the tool starts. */
  inputs?: { dir: string; files: ToolFile[] };
  /** A file the tool leaves behind, copied to the host when it exits 0. */
  output?: { from: string; to: string };
  /** Keep the exited container (its files are read later with copyIntoVolume); the caller removes it. */
  keep?: boolean;
  labels: Record<string, string>;
  timeoutMs: number;
}

/** A container as etcd-lab sees it: found by label, with the host port of its client port. */
export interface ContainerInfo {
  id: string;
  name: string;
  labels: Record<string, string>;
  image: string;
  /** running, exited, paused, created, restarting, dead */
  state: string;
  /** Docker's own words: "Up 3 seconds (healthy)". */
  status: string;
  /** Host port published for a container port, e.g. 2379 → 49153. */
  hostPorts: Record<number, number>;
  /** Names of the networks it is attached to. */
  networks: string[];
}

export interface NetworkInfo {
  id: string;
  name: string;
  labels: Record<string, string>;
  subnets: string[];
}

/** A catch handler that lets through Docker's answer `status` ("not found", "already so") and rethrows the rest. */
function unless(status: number) {
  return (e: { statusCode?: number }) => {
    if (e.statusCode !== status) throw e;
  };
}

export class DockerEngine {
  readonly docker: Docker;

  constructor(docker?: Docker) {
    // dockerode honours DOCKER_HOST (and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) like the docker CLI.
    this.docker = docker ?? new Docker();
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (error) {
      throw dockerUnreachable(error);
    }
  }

  async info(): Promise<{ operatingSystem: string; serverVersion: string; dockerDesktop: boolean }> {
    const info = await this.docker.info().catch((e: unknown) => {
      throw dockerUnreachable(e);
    });
    const operatingSystem = String(info.OperatingSystem ?? '');
    return { operatingSystem, serverVersion: String(info.ServerVersion ?? ''), dockerDesktop: /Docker Desktop/i.test(operatingSystem) };
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return false;
      throw dockerUnreachable(error);
    }
  }

  /** Pulls an image. Returns the registry's refusal as text (no registry here, no such tag) instead of throwing. */
  async pullImage(ref: string, onLine?: (line: string) => void): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      const stream = await this.docker.pull(ref);
      await followStream(this.docker, stream, onLine);
      return { ok: true };
    } catch (error) {
      if (error instanceof Interrupted) throw error;
      return { ok: false, reason: shortPullError((error as Error).message) };
    }
  }

  async buildImage(opts: BuildOptions): Promise<void> {
    const stream = await this.docker.buildImage(
      { context: opts.context, src: ['Dockerfile'] },
      { t: opts.tag, buildargs: opts.buildArgs ?? {}, labels: opts.labels ?? {}, rm: true, forcerm: true },
    );
    await followStream(this.docker, stream, opts.onLine);
  }

  async containers(labelFilters: string[]): Promise<ContainerInfo[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: labelFilters } }).catch((e: unknown) => {
      throw dockerUnreachable(e);
    });
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
      };
    });
  }

  async networks(labelFilters?: string[]): Promise<NetworkInfo[]> {
    const list = await this.docker.listNetworks(labelFilters ? { filters: { label: labelFilters } } : {}).catch((e: unknown) => {
      throw dockerUnreachable(e);
    });
    return list.map((n) => ({
      id: n.Id,
      name: n.Name,
      labels: n.Labels ?? {},
      subnets: (n.IPAM?.Config ?? []).map((c) => c.Subnet ?? '').filter((s) => s.includes('.')),
    }));
  }

  async volumes(labelFilters: string[]): Promise<{ name: string; labels: Record<string, string> }[]> {
    const { Volumes } = await this.docker.listVolumes({ filters: { label: labelFilters } }).catch((e: unknown) => {
      throw dockerUnreachable(e);
    });
    return (Volumes ?? []).map((v) => ({ name: v.Name, labels: (v.Labels ?? {}) as Record<string, string> }));
  }

  /** Stops gracefully (SIGTERM, then SIGKILL after `graceSeconds`) and removes. */
  async removeContainer(id: string, graceSeconds = 10): Promise<void> {
    const container = this.docker.getContainer(id);
    // A paused container cannot take the stop signal.
    await container.unpause().catch(() => {});
    await container.stop({ t: graceSeconds }).catch(() => {});
    await container.remove({ force: true, v: false }).catch(unless(404));
  }

  async killContainer(id: string, signal = 'SIGKILL'): Promise<void> {
    await this.docker.getContainer(id).kill({ signal });
  }

  async stopContainer(id: string, graceSeconds = 10): Promise<void> {
    await this.docker.getContainer(id).stop({ t: graceSeconds }).catch(unless(304)); // 304: already stopped
  }

  async startContainer(id: string): Promise<void> {
    await this.docker.getContainer(id).start().catch(unless(304)); // 304: already running
  }

  async pauseContainer(id: string): Promise<void> {
    await this.docker.getContainer(id).pause();
  }

  async unpauseContainer(id: string): Promise<void> {
    await this.docker.getContainer(id).unpause();
  }

  async createNetwork(name: string, labels: Record<string, string>, options: Record<string, string> = {}): Promise<string> {
    const network = await this.docker.createNetwork({ Name: name, Driver: 'bridge', Labels: labels, Options: options, CheckDuplicate: true });
    return network.id;
  }

  async connectNetwork(networkId: string, containerId: string, ipv4Address?: string): Promise<void> {
    await this.docker.getNetwork(networkId).connect({
      Container: containerId,
      ...(ipv4Address ? { EndpointConfig: { IPAMConfig: { IPv4Address: ipv4Address } } } : {}),
    });
  }

  async disconnectNetwork(networkId: string, containerId: string): Promise<void> {
    await this.docker.getNetwork(networkId).disconnect({ Container: containerId, Force: true });
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
    const container = await this.docker.createContainer({
      Image: opts.image,
      Entrypoint: opts.command.slice(0, 1),
      Cmd: opts.command.slice(1),
      Env: opts.env,
      Labels: opts.labels,
      HostConfig: {
        NetworkMode: opts.network ?? 'none',
        Binds: [...(opts.binds ?? []), ...(opts.volumes ?? []).map((v) => `${v.volume}:${v.path}`)],
      },
    });
    let kept = false;
    try {
      if (opts.inputs) await container.putArchive(packFiles(opts.inputs.files), { path: opts.inputs.dir });
      await container.start();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        void container.kill().catch(() => {});
      }, opts.timeoutMs);
      const { StatusCode } = (await unlessInterrupted(container.wait(), () => void container.kill().catch(() => {})).finally(() => clearTimeout(timer))) as {
        StatusCode: number;
      };
      const raw = (await container.logs({ stdout: true, stderr: true })) as unknown as Buffer;
      if (StatusCode === 0 && opts.output) {
        await extractFile((await container.getArchive({ path: opts.output.from })) as unknown as NodeJS.ReadableStream, opts.output.to);
      }
      const output = demuxedText(raw).trim();
      // Kept only for a caller that gets its id back: a failure on the way removes it.
      kept = Boolean(opts.keep);
      return { exitCode: StatusCode, output: timedOut ? `${output}\n${opts.command[0]} timed out after ${Math.round(opts.timeoutMs / 1000)} s`.trim() : output, containerId: container.id };
    } finally {
      if (!kept) await container.remove({ force: true }).catch(() => {});
    }
  }

  /** A named volume's labels, or undefined when there is no such volume. */
  async volumeLabels(name: string): Promise<Record<string, string> | undefined> {
    try {
      const info = await this.docker.getVolume(name).inspect();
      return (info.Labels ?? {}) as Record<string, string>;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<void> {
    await this.docker.createVolume({ Name: name, Driver: 'local', Labels: labels });
  }

  /**
   * Copies the contents of a directory of a (stopped) container into a volume, owners and modes kept,
   * as a tar stream to a second container that is created but never started (one container cannot
   * stream to itself: the engine holds it for the read while the write waits).
   */
  async copyIntoVolume(from: { containerId: string; path: string }, volume: string, image: string, labels: Record<string, string>): Promise<void> {
    const target = await this.docker.createContainer({ Image: image, Entrypoint: ['true'], Labels: labels, HostConfig: { NetworkMode: 'none', Binds: [`${volume}:/to`] } });
    try {
      const stream = (await this.docker.getContainer(from.containerId).getArchive({ path: `${from.path.replace(/\/$/, '')}/.` })) as unknown as NodeJS.ReadableStream;
      await target.putArchive(stream, { path: '/to' });
    } finally {
      await target.remove({ force: true }).catch(() => {});
    }
  }

  /** Copies every file of one volume into another. */
  async copyVolume(from: string, to: string, image: string, labels: Record<string, string>): Promise<void> {
    const source = await this.docker.createContainer({ Image: image, Entrypoint: ['true'], Labels: labels, HostConfig: { NetworkMode: 'none', Binds: [`${from}:/from:ro`] } });
    try {
      await this.copyIntoVolume({ containerId: source.id, path: '/from' }, to, image, labels);
    } finally {
      await source.remove({ force: true }).catch(() => {});
    }
  }

  async removeNetwork(id: string): Promise<void> {
    await this.docker.getNetwork(id).remove().catch(unless(404));
  }

  async removeVolume(name: string): Promise<void> {
    await this.docker.getVolume(name).remove().catch(unless(404));
  }

  /** Writes a container's logs to the given streams; resolves when done (or, following, when the container ends). */
  async logs(
    id: string,
    opts: { follow: boolean; tail?: number; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
  ): Promise<void> {
    const container = this.docker.getContainer(id);
    const info = await container.inspect();
    const options = { stdout: true, stderr: true, timestamps: false, ...(opts.tail === undefined ? {} : { tail: opts.tail }) };
    if (!opts.follow) {
      const buffer = (await container.logs({ ...options, follow: false })) as unknown as Buffer;
      if (info.Config.Tty) opts.stdout.write(buffer);
      else demuxBuffer(buffer, opts.stdout, opts.stderr);
      return;
    }
    const stream = (await container.logs({ ...options, follow: true })) as unknown as NodeJS.ReadableStream;
    if (info.Config.Tty) stream.pipe(opts.stdout, { end: false });
    else this.docker.modem.demuxStream(stream, opts.stdout, opts.stderr);
    await new Promise<void>((resolve) => stream.on('end', () => resolve()));
  }

  /** `docker compose version`: compose v2 answers as a docker plugin. */
  async composeVersion(): Promise<string | undefined> {
    try {
      const { stdout } = await run('docker', ['compose', 'version', '--short']);
      return stdout.trim();
    } catch {
      return undefined;
    }
  }

  /**
   * Runs `docker compose -p <project> -f <file> <args>`. ETCD_LAB_* variables are removed from the
   * child's environment so the generated .env (already resolved from flags, env and .env) decides.
   */
  async compose(
    project: string,
    file: string,
    args: string[],
    onLine?: (line: string) => void,
    opts: { cleanup?: boolean; /** Values for this run only (a joining member's start). */ env?: Record<string, string> } = {},
  ): Promise<string> {
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_LAB_'))), ...opts.env };
    const { stdout } = await run('docker', ['compose', '--project-name', project, '--file', file, ...args], { env, onLine, cleanup: opts.cleanup });
    return stdout;
  }

  /** Imports a root file system (a tar stream) as an image: how a base is made without a registry. */
  async importImage(tar: NodeJS.ReadableStream, repo: string, tag: string): Promise<void> {
    const stream = await this.docker.importImage(tar, { repo, tag });
    await followStream(this.docker, stream);
  }
}

/** "(HTTP code 500) server error - Get …: dial tcp: lookup gcr.io on …: no such host" → "lookup gcr.io …: no such host". */
export function shortPullError(message: string): string {
  const line = message.split('\n')[0]!.trim();
  const dial = /dial tcp: (.*)$/.exec(line)?.[1];
  return (dial ?? line.replace(/^\(HTTP code \d+\)\s*[\w ]*error - /, '')).replace(/ on [\d.:]+:53/, '').trim();
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

/**
 * Runs a command to completion, collecting output; rejects with the tail of stderr. The child runs
 * in its own process group, so a Ctrl-C at the terminal reaches etcd-lab only; etcd-lab then stops
 * the child (SIGTERM, SIGKILL after 5 s) and rejects with Interrupted once it has exited, so that
 * whatever it made can be undone after it, not while it still works.
 */
export function run(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; onLine?: (line: string) => void; input?: string; cleanup?: boolean } = {},
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
    let interrupted = false;
    const stopChild = () => {
      interrupted = true;
      const kill = (sig: NodeJS.Signals) => {
        try {
          if (child.pid) process.kill(-child.pid, sig);
        } catch {
          /* already gone */
        }
      };
      kill('SIGTERM');
      setTimeout(() => kill('SIGKILL'), 5000).unref();
    };
    signal.addEventListener('abort', stopChild, { once: true });
    // Its own process group outlives us: if we exit first (a second Ctrl-C), take it along.
    const onExit = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    process.on('exit', onExit);
    let stdout = '';
    let stderr = '';
    const lines = (chunk: Buffer) => {
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
    child.on('error', (error) => {
      signal.removeEventListener('abort', stopChild);
      process.off('exit', onExit);
      reject(error);
    });
    child.on('close', (code) => {
      signal.removeEventListener('abort', stopChild);
      process.off('exit', onExit);
      if (interrupted) reject(new Interrupted());
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
