// The one interface everything above engine/ uses to reach a container engine, as small clients:
// containers, images, networks, volumes, compose, one-off tool runs. DockerEngine (docker.ts) is the
// real one; the unit tests
// drive orchestration error paths with a fake (a compose that fails half-way, a member that never
// becomes healthy, an engine that hangs) through the same interface. The shapes of the engine's
// failures are read here too, and nowhere above.
import { UserError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';

export interface BuildOptions {
  context: string;
  tag: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  onLine?: (line: string) => void;
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

/** A long-running container etcd-lab starts by itself, outside compose (the API server). */
export interface ServiceRun {
  name: string;
  image: string;
  /** Arguments to the image's entrypoint. */
  args: string[];
  labels: Record<string, string>;
  /** The network it joins (and is known on by its name), or "container:<id>": another container's own. */
  network: string;
  /** Linux capabilities beyond the default set (NET_ADMIN for iptables). */
  capAdd?: string[];
  /** "host:container[:ro]" bind mounts. */
  binds?: string[];
  /** A container port published on the host's loopback; host port 0 lets the engine pick one. */
  publish?: { containerPort: number; hostPort: number };
  /** NAME=value environment variables. */
  env?: string[];
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
  /** Its command line as Docker lists it (entrypoint and arguments, space-separated). */
  command?: string;
}

export interface NetworkInfo {
  id: string;
  name: string;
  labels: Record<string, string>;
  subnets: string[];
}

export interface ComposeOptions {
  cleanup?: boolean;
  /** Values for this run only (a joining member's start). */
  env?: Record<string, string>;
  /** Stop it after this long (a caller with a deadline passes what is left of it). */
  timeoutMs?: number;
}

/** Containers: found by label, acted on one at a time, and the long-running ones started outside compose. */
export interface ContainerClient {
  list(labelFilters: string[]): Promise<ContainerInfo[]>;
  /** Stops gracefully (SIGTERM, then SIGKILL after `graceSeconds`) and removes. */
  remove(id: string, graceSeconds?: number): Promise<void>;
  kill(id: string, signal?: string): Promise<void>;
  stop(id: string, graceSeconds?: number): Promise<void>;
  start(id: string): Promise<void>;
  pause(id: string): Promise<void>;
  unpause(id: string): Promise<void>;
  logs(id: string, opts: { follow: boolean; tail?: number; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }): Promise<void>;
  /** Creates and starts a long-running container; its id. */
  run(opts: ServiceRun): Promise<string>;
}

export interface ImageClient {
  exists(ref: string): Promise<boolean>;
  /** An image's labels; undefined when there is no such image. */
  labels(ref: string): Promise<Record<string, string> | undefined>;
  /** The registry's refusal comes back as text (no registry here, no such tag), not as an error. */
  pull(ref: string, onLine?: (line: string) => void): Promise<{ ok: true } | { ok: false; reason: string }>;
  build(opts: BuildOptions): Promise<void>;
  /** Removes the untagged images (a build's left-behind stages) carrying every label; what it freed. */
  removeDangling(labelFilters: string[]): Promise<{ removed: number; bytes: number }>;
  /** Imports a root file system (a tar stream) as an image. */
  importRootfs(tar: NodeJS.ReadableStream, repo: string, tag: string): Promise<void>;
}

export interface NetworkClient {
  list(labelFilters?: string[]): Promise<NetworkInfo[]>;
  create(name: string, labels: Record<string, string>, options?: Record<string, string>): Promise<string>;
  connect(networkId: string, containerId: string, ipv4Address?: string): Promise<void>;
  disconnect(networkId: string, containerId: string): Promise<void>;
  remove(id: string): Promise<void>;
}

export interface VolumeClient {
  list(labelFilters: string[]): Promise<{ name: string; labels: Record<string, string> }[]>;
  /** A volume's labels; undefined when there is no such volume. */
  labels(name: string): Promise<Record<string, string> | undefined>;
  create(name: string, labels: Record<string, string>): Promise<void>;
  copyInto(from: { containerId: string; path: string }, volume: string, image: string, labels: Record<string, string>): Promise<void>;
  copy(from: string, to: string, image: string, labels: Record<string, string>): Promise<void>;
  remove(name: string): Promise<void>;
}

export interface ComposeClient {
  /** `docker compose version`; undefined when compose v2 is missing. */
  version(): Promise<string | undefined>;
  /** `docker compose -p <project> -f <file> <args>`; its stdout. */
  run(project: string, file: string, args: string[], onLine?: (line: string) => void, opts?: ComposeOptions): Promise<string>;
}

/** One-off runs: one of an image's own tools (etcdctl, etcdutl), or a look at the lab from inside a network. */
export interface ToolClient {
  run(opts: ToolRun): Promise<ToolResult>;
}

export interface EngineInfo {
  operatingSystem: string;
  serverVersion: string;
  dockerDesktop: boolean;
}

/** A tool run's exit code and its output (both streams); the container, when kept. */
export interface ToolResult {
  exitCode: number;
  output: string;
  containerId: string;
}

/** The engine as small clients by resource, each with its own deadlines, each small enough to fake. */
export interface Engine {
  ping(): Promise<void>;
  info(): Promise<EngineInfo>;
  readonly containers: ContainerClient;
  readonly images: ImageClient;
  readonly networks: NetworkClient;
  readonly volumes: VolumeClient;
  readonly compose: ComposeClient;
  readonly tools: ToolClient;
}

/** The Docker engine's own refusal, with its HTTP status kept for callers that expect one (a 404, a 409). */
export class EngineRefusal extends UserError {
  readonly statusCode: number;

  constructor(statusCode: number, message: string, opts: { hint?: string; cause?: unknown }) {
    super(message, { ...opts, exitCode: ExitCode.refused });
    this.name = 'EngineRefusal';
    this.statusCode = statusCode;
  }
}

/**
 * The Docker engine's own refusal (dockerode errors carry its HTTP status) as what it is, with what
 * to do; undefined for anything else. `call` names the request, when known.
 */
export function dockerRefusal(error: unknown, call?: string): EngineRefusal | undefined {
  const e = error as { statusCode?: unknown; message?: unknown; json?: { message?: unknown } } | undefined;
  if (typeof e?.statusCode !== 'number' || typeof e.message !== 'string' || !e.message.startsWith('(HTTP code')) return undefined;
  const said = typeof e.json?.message === 'string' ? e.json.message : e.message.replace(/^\(HTTP code \d+\)\s*/, '').trim();
  const hints: Record<number, string> = {
    400: 'the engine could not accept what it was given: check the image references and names in etcd-lab.yaml (an image reference is lowercase, e.g. gcr.io/etcd-development/etcd:v3.5.33)',
    404: 'something etcd-lab expected is not there (removed by hand, never pulled or built, or changed by another tool meanwhile): `etcd-lab status` shows the lab as it is',
    409: 'the object is in a state that does not allow this (already running, paused, being removed): `etcd-lab status` shows the lab as it is, then try again',
  };
  return new EngineRefusal(e.statusCode, `the Docker engine refused ${call ? `"${call}"` : 'a request'} (HTTP ${e.statusCode}): ${said}`, {
    hint: hints[e.statusCode] ?? 'the engine failed: see its log (Docker Desktop: Troubleshoot; Linux: `journalctl -u docker` or the dockerd log), then try again',
    cause: error,
  });
}

/** The engine said 409: the object is in use (a network with endpoints, a volume a container holds). */
export function isConflict(error: unknown): boolean {
  return (error as { statusCode?: unknown } | undefined)?.statusCode === 409;
}

/** The last line a failed `docker compose` (or other child process) wrote: where it says why. */
export function lastWords(error: unknown): string {
  const e = error as { stderr?: string; message?: string } | undefined;
  return ((e?.stderr || e?.message) ?? String(error)).trim().split('\n').at(-1) ?? '';
}
