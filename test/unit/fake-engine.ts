// An engine in memory, behind the same interface as DockerEngine, as one fake per client over one
// shared state: containers, networks and volumes are records; `docker compose up` reads the
// generated compose file (with its .env) and creates what it lists, in order. A scenario makes one call fail, fail half-way, or hang, so the
// orchestration's error paths (rollback, undo, messages) are tested without Docker.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { parseDotenv } from '../../src/config/local.js';
import { engineHung } from '../../src/engine/deadlines.js';
import type { ComposeClient, ComposeOptions, ContainerClient, ContainerInfo, Engine, ImageClient, NetworkClient, NetworkInfo, ServiceRun, ToolClient, ToolRun, VolumeClient } from '../../src/engine/engine.js';

interface ComposeService {
  container_name: string;
  image: string;
  labels: Record<string, string>;
  ports?: string[];
  volumes?: string[];
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  networks: Record<string, { name: string; labels: Record<string, string>; ipam: { config: { subnet: string }[] } }>;
  volumes: Record<string, { name: string; labels: Record<string, string> }>;
}

/** What a scenario may do to one call (by method name): throw, or never answer until its deadline. */
export type Trouble = ({ fail: Error } | { hangMs: number }) & {
  /** Only calls this says yes to ("remove volume …-before-restore"); every call of the method otherwise. */
  only?: (call: string) => boolean;
};

/** What the fakes share: the records, every change in order, and the troubles a scenario planted. */
export class FakeState {
  readonly containersById = new Map<string, ContainerInfo>();
  readonly networksByName = new Map<string, NetworkInfo>();
  readonly volumesByName = new Map<string, Record<string, string>>();
  /** Every change, in order: "create container demo-etcd1", "remove network demo". */
  readonly calls: string[] = [];
  /** Troubles by call ("containers.remove", "compose.run"); `compose.run` also takes `composeFailsAfter`. */
  readonly trouble = new Map<string, Trouble>();
  /** `compose up` creates this many containers, then fails as compose does when one cannot start. */
  composeFailsAfter?: number;
  /** Host port each new member publishes for its client port (a fake etcd, or a port nobody serves). */
  memberPort: (member: string) => number | undefined = () => undefined;
  nextId = 1;

  async maybeTrouble(method: string, call: string): Promise<void> {
    const t = this.trouble.get(method);
    if (!t || (t.only && !t.only(call))) return;
    if ('fail' in t) throw t.fail;
    await new Promise((r) => setTimeout(r, t.hangMs));
    throw engineHung(call, t.hangMs);
  }

  filtered(labels: Record<string, string>, filters: string[] = []): boolean {
    return filters.every((f) => {
      const [key, value] = f.split('=');
      return value === undefined ? key! in labels : labels[key!] === value;
    });
  }
}

export class FakeContainers implements ContainerClient {
  constructor(private readonly state: FakeState) {}

  async list(labelFilters: string[]): Promise<ContainerInfo[]> {
    await this.state.maybeTrouble('containers.list', 'list containers');
    return [...this.state.containersById.values()].filter((c) => this.state.filtered(c.labels, labelFilters)).map((c) => ({ ...c }));
  }
  async remove(id: string): Promise<void> {
    await this.state.maybeTrouble('containers.remove', `remove container ${id}`);
    const c = this.state.containersById.get(id);
    if (c) this.state.calls.push(`remove container ${c.name}`);
    this.state.containersById.delete(id);
  }
  private setState(id: string, state: string, call: string): void {
    const c = this.state.containersById.get(id);
    if (!c) throw Object.assign(new Error(`No such container: ${id}`), { statusCode: 404 });
    this.state.calls.push(`${call} container ${c.name}`);
    c.state = state;
  }
  async kill(id: string, signal = 'SIGKILL'): Promise<void> {
    await this.state.maybeTrouble('containers.kill', `kill container ${id}`);
    // SIGUSR2 (HAProxy's reload) and the like leave it running.
    const c = this.state.containersById.get(id);
    if (c && signal !== 'SIGKILL' && signal !== 'SIGTERM') this.state.calls.push(`signal ${signal} container ${c.name}`);
    else this.setState(id, 'exited', 'kill');
  }
  async stop(id: string): Promise<void> {
    await this.state.maybeTrouble('containers.stop', `stop container ${id}`);
    this.setState(id, 'exited', 'stop');
  }
  async start(id: string): Promise<void> {
    await this.state.maybeTrouble('containers.start', `start container ${id}`);
    this.setState(id, 'running', 'start');
  }
  async pause(id: string): Promise<void> {
    this.setState(id, 'paused', 'pause');
  }
  async unpause(id: string): Promise<void> {
    this.setState(id, 'running', 'unpause');
  }
  async logs(): Promise<void> {}
  async run(opts: ServiceRun): Promise<string> {
    await this.state.maybeTrouble('containers.run', `create container ${opts.name}`);
    const id = `svc${this.state.nextId++}`;
    this.state.calls.push(`run ${opts.name}`);
    this.state.containersById.set(id, { id, name: opts.name, labels: opts.labels, image: opts.image, state: 'running', status: 'Up', hostPorts: opts.publish ? { [opts.publish.containerPort]: 40000 + this.state.nextId } : {}, networks: [opts.network] });
    return id;
  }
}

/** Every image is there: nothing to pull or build in a unit test. */
export class FakeImages implements ImageClient {
  async exists(): Promise<boolean> {
    return true;
  }
  async labels(): Promise<Record<string, string>> {
    return {};
  }
  async pull(): Promise<{ ok: true }> {
    return { ok: true };
  }
  async build(): Promise<void> {}
  async removeDangling(): Promise<{ removed: number; bytes: number }> {
    return { removed: 0, bytes: 0 };
  }
  async importRootfs(): Promise<void> {}
}

export class FakeNetworks implements NetworkClient {
  constructor(private readonly state: FakeState) {}

  async list(labelFilters?: string[]): Promise<NetworkInfo[]> {
    await this.state.maybeTrouble('networks.list', 'list networks');
    return [...this.state.networksByName.values()].filter((n) => this.state.filtered(n.labels, labelFilters)).map((n) => ({ ...n }));
  }
  async create(name: string, labels: Record<string, string>): Promise<string> {
    this.state.calls.push(`create network ${name}`);
    this.state.networksByName.set(name, { id: name, name, labels, subnets: [] });
    return name;
  }
  async connect(networkId: string, containerId: string): Promise<void> {
    this.state.calls.push(`connect ${this.state.containersById.get(containerId)?.name ?? containerId} to ${networkId}`);
  }
  async disconnect(networkId: string, containerId: string): Promise<void> {
    this.state.calls.push(`disconnect ${this.state.containersById.get(containerId)?.name ?? containerId} from ${networkId}`);
  }
  async remove(id: string): Promise<void> {
    await this.state.maybeTrouble('networks.remove', `remove network ${id}`);
    const inUse = [...this.state.containersById.values()].some((c) => c.networks.includes(id));
    if (inUse) throw Object.assign(new Error(`network ${id} has active endpoints`), { statusCode: 409 });
    this.state.calls.push(`remove network ${id}`);
    this.state.networksByName.delete(id);
  }
}

export class FakeVolumes implements VolumeClient {
  constructor(private readonly state: FakeState) {}

  async list(labelFilters: string[]): Promise<{ name: string; labels: Record<string, string> }[]> {
    return [...this.state.volumesByName].filter(([, labels]) => this.state.filtered(labels, labelFilters)).map(([name, labels]) => ({ name, labels }));
  }
  async labels(name: string): Promise<Record<string, string> | undefined> {
    return this.state.volumesByName.get(name);
  }
  async create(name: string, labels: Record<string, string>): Promise<void> {
    await this.state.maybeTrouble('volumes.create', `create volume ${name}`);
    this.state.calls.push(`create volume ${name}`);
    this.state.volumesByName.set(name, labels);
  }
  async copyInto(from: { containerId: string; path: string }, volume: string): Promise<void> {
    await this.state.maybeTrouble('volumes.copyInto', `copy into volume ${volume}`);
    this.state.calls.push(`copy ${this.state.containersById.get(from.containerId)?.name ?? from.containerId}:${from.path} into volume ${volume}`);
  }
  async copy(from: string, to: string): Promise<void> {
    await this.state.maybeTrouble('volumes.copy', `copy volume ${from}`);
    this.state.calls.push(`copy volume ${from} to ${to}`);
  }
  async remove(name: string): Promise<void> {
    await this.state.maybeTrouble('volumes.remove', `remove volume ${name}`);
    const inUse = [...this.state.containersById.values()].some((c) => c.labels['fake.volumes']?.split(',').includes(name));
    if (inUse) throw Object.assign(new Error(`volume ${name} is in use`), { statusCode: 409 });
    this.state.calls.push(`remove volume ${name}`);
    this.state.volumesByName.delete(name);
  }
}

export class FakeCompose implements ComposeClient {
  constructor(
    private readonly state: FakeState,
    private readonly networks: FakeNetworks,
    private readonly volumes: FakeVolumes,
  ) {}

  async version(): Promise<string> {
    return '2.0.0-fake';
  }

  /** `up` creates the file's network, volumes and containers, in that order, as compose does; `down` removes the containers. */
  async run(project: string, file: string, args: string[], onLine?: (line: string) => void, opts?: ComposeOptions): Promise<string> {
    const { state } = this;
    await state.maybeTrouble('compose.run', `docker compose ${args[0]}`);
    const env = { ...parseDotenv(readFileSync(join(dirname(file), '.env'), 'utf8')), ...opts?.env };
    const text = readFileSync(file, 'utf8').replace(/\$\{(\w+)(?::[-?]((?:[^{}]|\{[^}]*\})*))?\}/g, (_m, name: string, fallback?: string) => env[name] ?? fallback ?? '');
    const spec = parse(text) as ComposeFile;
    if (args[0] !== 'up') {
      for (const c of [...state.containersById.values()]) if (c.labels['io.etcd-lab.lab'] === project) state.containersById.delete(c.id);
      return '';
    }
    const network = Object.values(spec.networks)[0]!;
    if (!state.networksByName.has(network.name)) {
      await this.networks.create(network.name, network.labels);
      state.networksByName.get(network.name)!.subnets = network.ipam.config.map((c) => c.subnet);
    }
    for (const v of Object.values(spec.volumes ?? {})) if (!state.volumesByName.has(v.name)) await this.volumes.create(v.name, v.labels);
    // `up SERVICE…` (--no-deps) touches only those services.
    const named = args.slice(1).filter((a) => !a.startsWith('-'));
    let created = 0;
    for (const [service, def] of Object.entries(spec.services)) {
      if (named.length > 0 && !named.includes(service)) continue;
      const existing = [...state.containersById.values()].find((c) => c.name === def.container_name);
      // The same image: compose leaves a container as it is (and starts it); another: it recreates it.
      if (existing && existing.image === def.image) {
        existing.state = 'running';
        continue;
      }
      if (state.composeFailsAfter !== undefined && created >= state.composeFailsAfter) {
        throw Object.assign(new Error('docker compose up failed'), {
          stderr: `Container ${def.container_name}  Creating\nError response from daemon: failed to create shim task: OCI runtime create failed (fake)`,
        });
      }
      if (existing) {
        state.calls.push(`recreate container ${def.container_name} on ${def.image}`);
        state.containersById.delete(existing.id);
      }
      const member = def.labels['io.etcd-lab.member'];
      const port = member ? state.memberPort(member) : undefined;
      const volumes = (def.volumes ?? []).map((v) => v.split(':')[0]!).filter((v) => !v.startsWith('.')).map((v) => spec.volumes[v]!.name);
      const id = `fake${state.nextId++}`;
      if (!existing) state.calls.push(`create container ${def.container_name}`);
      state.containersById.set(id, {
        id,
        name: def.container_name,
        labels: { ...def.labels, 'fake.volumes': volumes.join(',') },
        image: def.image,
        state: 'running',
        status: 'Up 1 second',
        hostPorts: port ? { 2379: port } : {},
        networks: [network.name],
      });
      onLine?.(`Container ${def.container_name}  Started`);
      created += 1;
    }
    return '';
  }
}

/**
 * Tools as the lab's images answer them: `etcd --version` (the version set for the image), etcdutl's
 * `snapshot status`, and a snapshot file (a whole one: its sha256 trailer) where a run leaves an
 * output. A scenario can answer otherwise (`answer`).
 */
export class FakeTools implements ToolClient {
  constructor(private readonly state: FakeState) {}

  /** The etcd version of each image (`etcd --version`). */
  readonly versions = new Map<string, string>();
  answer: (run: ToolRun) => { exitCode: number; output: string } | undefined = () => undefined;

  async run(opts: ToolRun): Promise<{ exitCode: number; output: string; containerId: string }> {
    await this.state.maybeTrouble('tools.run', `run ${opts.command[0]}`);
    this.state.calls.push(`tool ${opts.command.slice(0, 2).join(' ')}`);
    const answer = this.answer(opts) ?? this.usual(opts);
    if (answer.exitCode === 0 && opts.output) {
      const body = Buffer.alloc(512);
      writeFileSync(opts.output.to, Buffer.concat([body, createHash('sha256').update(body).digest()]));
    }
    return { ...answer, containerId: 'tool' };
  }

  private usual(opts: ToolRun): { exitCode: number; output: string } {
    const line = opts.command.join(' ');
    if (line === 'etcd --version') return { exitCode: 0, output: `etcd Version: ${this.versions.get(opts.image) ?? '3.5.16'}\nGit SHA: fake` };
    if (line.includes('snapshot restore --help')) return { exitCode: 0, output: '--bump-revision' };
    if (line.includes('snapshot status')) return { exitCode: 0, output: '{"hash":1,"revision":42,"totalKey":3,"totalSize":20480,"version":"3.5.0"}' };
    return { exitCode: 0, output: '' };
  }
}

export class FakeEngine implements Engine {
  readonly state = new FakeState();
  readonly containers = new FakeContainers(this.state);
  readonly images = new FakeImages();
  readonly networks = new FakeNetworks(this.state);
  readonly volumes = new FakeVolumes(this.state);
  readonly compose = new FakeCompose(this.state, this.networks, this.volumes);
  readonly tools = new FakeTools(this.state);

  async ping(): Promise<void> {}
  async info() {
    return { operatingSystem: 'Debian GNU/Linux (fake)', serverVersion: '0.0.0-fake', dockerDesktop: false };
  }

  // The state's parts, for scenarios and assertions.
  get containersById() {
    return this.state.containersById;
  }
  get networksByName() {
    return this.state.networksByName;
  }
  get volumesByName() {
    return this.state.volumesByName;
  }
  get calls() {
    return this.state.calls;
  }
  get trouble() {
    return this.state.trouble;
  }
  set composeFailsAfter(n: number | undefined) {
    this.state.composeFailsAfter = n;
  }
  set memberPort(port: (member: string) => number | undefined) {
    this.state.memberPort = port;
  }
}
