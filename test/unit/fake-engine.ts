// An engine in memory, behind the same interface as DockerEngine: containers, networks and volumes
// are records; `docker compose up` reads the generated compose file (with its .env) and creates
// what it lists, in order. A scenario makes one call fail, fail half-way, or hang, so the
// orchestration's error paths (rollback, undo, messages) are tested without Docker.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { parseDotenv } from '../../src/config/local.js';
import { engineHung } from '../../src/engine/docker.js';
import type { ComposeOptions, ContainerInfo, Engine, NetworkInfo, ServiceRun } from '../../src/engine/engine.js';

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
export type Trouble = { fail: Error } | { hangMs: number };

export class FakeEngine implements Engine {
  readonly containersById = new Map<string, ContainerInfo>();
  readonly networksByName = new Map<string, NetworkInfo>();
  readonly volumesByName = new Map<string, Record<string, string>>();
  /** Every change, in order: "create container demo-etcd1", "remove network demo". */
  readonly calls: string[] = [];
  /** Troubles by method name; `compose` also takes `composeFailsAfter`. */
  readonly trouble = new Map<string, Trouble>();
  /** `compose up` creates this many containers, then fails as compose does when one cannot start. */
  composeFailsAfter?: number;
  /** Host port each new member publishes for its client port (a fake etcd, or a port nobody serves). */
  memberPort: (member: string) => number | undefined = () => undefined;
  private nextId = 1;

  private async maybeTrouble(method: string, call: string): Promise<void> {
    const t = this.trouble.get(method);
    if (!t) return;
    if ('fail' in t) throw t.fail;
    await new Promise((r) => setTimeout(r, t.hangMs));
    throw engineHung(call, t.hangMs);
  }

  private filtered(labels: Record<string, string>, filters: string[] = []): boolean {
    return filters.every((f) => {
      const [key, value] = f.split('=');
      return value === undefined ? key! in labels : labels[key!] === value;
    });
  }

  async ping(): Promise<void> {}
  async info() {
    return { operatingSystem: 'Debian GNU/Linux (fake)', serverVersion: '0.0.0-fake', dockerDesktop: false };
  }
  async imageExists(): Promise<boolean> {
    return true;
  }
  async imageLabels(): Promise<Record<string, string>> {
    return {};
  }
  async pullImage(): Promise<{ ok: true }> {
    return { ok: true };
  }
  async buildImage(): Promise<void> {}
  async removeDanglingImages(): Promise<{ removed: number; bytes: number }> {
    return { removed: 0, bytes: 0 };
  }
  async importImage(): Promise<void> {}

  async containers(labelFilters: string[]): Promise<ContainerInfo[]> {
    await this.maybeTrouble('containers', 'list containers');
    return [...this.containersById.values()].filter((c) => this.filtered(c.labels, labelFilters)).map((c) => ({ ...c }));
  }
  async removeContainer(id: string): Promise<void> {
    await this.maybeTrouble('removeContainer', `remove container ${id}`);
    const c = this.containersById.get(id);
    if (c) this.calls.push(`remove container ${c.name}`);
    this.containersById.delete(id);
  }
  private setState(id: string, state: string): void {
    const c = this.containersById.get(id);
    if (!c) throw Object.assign(new Error(`No such container: ${id}`), { statusCode: 404 });
    c.state = state;
  }
  async killContainer(id: string): Promise<void> {
    this.setState(id, 'exited');
  }
  async stopContainer(id: string): Promise<void> {
    this.setState(id, 'exited');
  }
  async startContainer(id: string): Promise<void> {
    this.setState(id, 'running');
  }
  async pauseContainer(id: string): Promise<void> {
    this.setState(id, 'paused');
  }
  async unpauseContainer(id: string): Promise<void> {
    this.setState(id, 'running');
  }
  async logs(): Promise<void> {}
  async runOnce(): Promise<{ exitCode: number; output: string }> {
    return { exitCode: 0, output: '' };
  }
  async runTool(): Promise<{ exitCode: number; output: string; containerId: string }> {
    return { exitCode: 0, output: '', containerId: 'tool' };
  }
  async runService(opts: ServiceRun): Promise<string> {
    await this.maybeTrouble('runService', `create container ${opts.name}`);
    const id = `svc${this.nextId++}`;
    this.calls.push(`run ${opts.name}`);
    this.containersById.set(id, { id, name: opts.name, labels: opts.labels, image: opts.image, state: 'running', status: 'Up', hostPorts: opts.publish ? { [opts.publish.containerPort]: 40000 + this.nextId } : {}, networks: [opts.network] });
    return id;
  }

  async networks(labelFilters?: string[]): Promise<NetworkInfo[]> {
    await this.maybeTrouble('networks', 'list networks');
    return [...this.networksByName.values()].filter((n) => this.filtered(n.labels, labelFilters)).map((n) => ({ ...n }));
  }
  async createNetwork(name: string, labels: Record<string, string>): Promise<string> {
    this.calls.push(`create network ${name}`);
    this.networksByName.set(name, { id: name, name, labels, subnets: [] });
    return name;
  }
  async connectNetwork(): Promise<void> {}
  async disconnectNetwork(): Promise<void> {}
  async removeNetwork(id: string): Promise<void> {
    await this.maybeTrouble('removeNetwork', `remove network ${id}`);
    const inUse = [...this.containersById.values()].some((c) => c.networks.includes(id));
    if (inUse) throw Object.assign(new Error(`network ${id} has active endpoints`), { statusCode: 409 });
    this.calls.push(`remove network ${id}`);
    this.networksByName.delete(id);
  }

  async volumes(labelFilters: string[]): Promise<{ name: string; labels: Record<string, string> }[]> {
    return [...this.volumesByName].filter(([, labels]) => this.filtered(labels, labelFilters)).map(([name, labels]) => ({ name, labels }));
  }
  async volumeLabels(name: string): Promise<Record<string, string> | undefined> {
    return this.volumesByName.get(name);
  }
  async createVolume(name: string, labels: Record<string, string>): Promise<void> {
    this.calls.push(`create volume ${name}`);
    this.volumesByName.set(name, labels);
  }
  async copyIntoVolume(): Promise<void> {}
  async copyVolume(): Promise<void> {}
  async removeVolume(name: string): Promise<void> {
    const inUse = [...this.containersById.values()].some((c) => c.labels['fake.volumes']?.split(',').includes(name));
    if (inUse) throw Object.assign(new Error(`volume ${name} is in use`), { statusCode: 409 });
    this.calls.push(`remove volume ${name}`);
    this.volumesByName.delete(name);
  }

  async composeVersion(): Promise<string> {
    return '2.0.0-fake';
  }

  /** `up` creates the file's network, volumes and containers, in that order, as compose does; `down` removes the containers. */
  async compose(project: string, file: string, args: string[], onLine?: (line: string) => void, _opts?: ComposeOptions): Promise<string> {
    await this.maybeTrouble('compose', `docker compose ${args[0]}`);
    const env = parseDotenv(readFileSync(join(dirname(file), '.env'), 'utf8'));
    const text = readFileSync(file, 'utf8').replace(/\$\{(\w+)(?::[-?]((?:[^{}]|\{[^}]*\})*))?\}/g, (_m, name: string, fallback?: string) => env[name] ?? fallback ?? '');
    const spec = parse(text) as ComposeFile;
    if (args[0] !== 'up') {
      for (const c of [...this.containersById.values()]) if (c.labels['io.etcd-lab.lab'] === project) this.containersById.delete(c.id);
      return '';
    }
    const network = Object.values(spec.networks)[0]!;
    if (!this.networksByName.has(network.name)) {
      await this.createNetwork(network.name, network.labels);
      this.networksByName.get(network.name)!.subnets = network.ipam.config.map((c) => c.subnet);
    }
    for (const v of Object.values(spec.volumes ?? {})) if (!this.volumesByName.has(v.name)) await this.createVolume(v.name, v.labels);
    let created = 0;
    for (const service of Object.values(spec.services)) {
      if ([...this.containersById.values()].some((c) => c.name === service.container_name)) continue;
      if (this.composeFailsAfter !== undefined && created >= this.composeFailsAfter) {
        throw Object.assign(new Error('docker compose up failed'), {
          stderr: `Container ${service.container_name}  Creating\nError response from daemon: failed to create shim task: OCI runtime create failed (fake)`,
        });
      }
      const member = service.labels['io.etcd-lab.member'];
      const port = member ? this.memberPort(member) : undefined;
      const volumes = (service.volumes ?? []).map((v) => v.split(':')[0]!).filter((v) => !v.startsWith('.')).map((v) => spec.volumes[v]!.name);
      const id = `fake${this.nextId++}`;
      this.calls.push(`create container ${service.container_name}`);
      this.containersById.set(id, {
        id,
        name: service.container_name,
        labels: { ...service.labels, 'fake.volumes': volumes.join(',') },
        image: service.image,
        state: 'running',
        status: 'Up 1 second',
        hostPorts: port ? { 2379: port } : {},
        networks: [network.name],
      });
      onLine?.(`Container ${service.container_name}  Started`);
      created += 1;
    }
    return '';
  }
}
