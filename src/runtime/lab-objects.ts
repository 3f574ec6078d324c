// A lab's objects in Docker, found by label: its containers (members, HAProxy, the API server),
// network and volumes, whose checkout made them; and the two actions every operation shares, a
// compose run that keeps each member as it was made, and an HAProxy reload.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { readFile } from 'node:fs/promises';
import { HAPROXY_FILE } from '../render/index.js';
import { joinValuesOf, memberImageVar } from '../render/etcd-flags.js';
import { configHashOf } from '../render/haproxy.js';
import { fetchStats } from '../protocol/haproxy-stats.js';
import { waitUntil } from './wait.js';
import { LABEL, type Role } from '../config/topology.js';
import type { ContainerInfo, Engine, EngineInfo, NetworkInfo, ServiceRun, ToolResult, ToolRun } from '../engine/engine.js';
import { Writable } from 'node:stream';
import type { Reporter } from '../progress.js';
import { buildLocalImages, ensureLabImages, type BuildImagesOptions, type ImageChoice, type ImagesResult } from './images.js';
import { toolLabels } from './snapshot.js';
import type { StepHandle } from '../progress.js';
import { ExitCode } from '../exit-codes.js';
import { LabAddresses } from './lab-addresses.js';

export interface LabMemberContainer extends ContainerInfo {
  member: string;
}

export class LabObjects extends LabAddresses {
  async containers(): Promise<ContainerInfo[]> {
    return this.engine.containers.list([this.labLabel]);
  }

  /** Member containers in member order (etcd1, etcd2, …). */
  async memberContainers(): Promise<LabMemberContainer[]> {
    const all = await this.engine.containers.list([this.labLabel, `${LABEL.role}=etcd`]);
    return all
      .map((c) => ({ ...c, member: c.labels[LABEL.member] ?? '' }))
      .sort((a, b) => a.member.localeCompare(b.member, 'en', { numeric: true }));
  }

  /**
   * `docker compose` on the lab's file. A member that has a container keeps the bootstrap values it
   * was created with (`--initial-cluster` as on the day it bootstrapped or joined): etcd ignores them
   * once a member has data, and compose, which would otherwise see a changed definition after a
   * `scale` or `member replace`, leaves the member running instead of recreating it.
   */
  async compose(args: string[], onLine?: (line: string) => void, opts: { cleanup?: boolean; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<string> {
    const kept = keptBootstrapEnv(await this.memberContainers());
    const pinned = Object.fromEntries([...this.pinnedImages].map(([member, image]) => [memberImageVar(member), image]));
    return this.engine.compose.run(this.name, this.composeFile, args, onLine, { ...opts, env: { ...kept, ...pinned, ...opts.env } });
  }

  /** Members moved to another image by this process (check's upgrade fault): every later compose call keeps them there. */
  private readonly pinnedImages = new Map<string, string>();

  pinMemberImage(member: string, image: string): void {
    this.pinnedImages.set(member, image);
  }

  /** The hash of the haproxy.cfg HAProxy runs, as its stats page says; undefined while it does not answer. */
  async haproxyConfigHash(timeoutMs = 1000): Promise<string | undefined> {
    return (await fetchStats(this.statsUrl, this.statsCredentials, timeoutMs).catch(() => undefined))?.configHash;
  }

  /** The hash of generated/haproxy/haproxy.cfg, or undefined when there is none. */
  async haproxyFileHash(): Promise<string | undefined> {
    const cfg = await readFile(join(this.lab.outDir, HAPROXY_FILE), 'utf8').catch(() => undefined);
    return cfg === undefined ? undefined : configHashOf(cfg);
  }

  /**
   * Puts a running HAProxy on generated/haproxy/haproxy.cfg when it runs another: SIGUSR2 makes its
   * master process start new workers on the file, which take over the listening sockets (no client
   * is refused) while the old ones finish their connections (at most `hard-stop-after`). Waits until
   * the stats page says the new file is in use. False when nothing needed doing.
   */
  async reloadHaproxy(deadline: number, step?: StepHandle): Promise<boolean> {
    const container = await this.haproxyContainer();
    const wanted = await this.haproxyFileHash();
    if (container?.state !== 'running' || wanted === undefined) return false;
    let signalled = false;
    await waitUntil(
      'HAProxy to run the new haproxy.cfg',
      deadline,
      async () => {
        const running = await this.haproxyConfigHash(500);
        if (running === wanted) return { done: true, detail: 'reloaded' };
        // Signalled once the stats page answers: a HAProxy still starting reads the file itself.
        if (running !== undefined && !signalled) {
          await this.engine.containers.kill(container.id, 'SIGUSR2');
          signalled = true;
        }
        return { done: false, detail: running === undefined ? 'stats page not answering yet' : 'reloading' };
      },
      step,
      { intervalMs: 100, hint: `\`etcd-lab logs haproxy\` says why HAProxy kept its old configuration` },
    );
    return signalled;
  }

  async haproxyContainer(): Promise<ContainerInfo | undefined> {
    return (await this.engine.containers.list([this.labLabel, `${LABEL.role}=haproxy`]))[0];
  }

  /** The container of `etcd-lab apiserver` (one per lab: its name is the lab's), running or not. */
  async apiServerContainer(): Promise<ContainerInfo | undefined> {
    return (await this.engine.containers.list([this.labLabel, `${LABEL.role}=apiserver`]))[0];
  }

  async volumes(): Promise<string[]> {
    return (await this.engine.volumes.list([this.labLabel])).map((v) => v.name).sort();
  }

  /** The members' data volumes (not the copies a restore keeps meanwhile). */
  async dataVolumes(): Promise<string[]> {
    return (await this.engine.volumes.list([this.labLabel, `${LABEL.role}=data`])).map((v) => v.name).sort();
  }

  /** The lab's own network (fixed subnet), not the ones `partition` makes. */
  async network() {
    return (await this.networks()).find((n) => n.name === this.topology.network);
  }

  /** Every network carrying the lab's label: its own and any partition networks. */
  async networks() {
    return this.engine.networks.list([this.labLabel]);
  }

  /**
   * The spec files, other than this checkout's, that own what Docker holds under this lab's name.
   * Objects from before owner labels are judged by the compose file compose recorded on containers.
   */
  async foreignOwners(): Promise<string[]> {
    const [containers, networks, volumes] = await Promise.all([
      this.containers(),
      this.networks(),
      this.engine.volumes.list([this.labLabel]),
    ]);
    const owners = new Set<string>();
    for (const { labels } of [...containers, ...networks, ...volumes]) {
      const owner = labels[LABEL.owner];
      const composeFile = labels['com.docker.compose.project.config_files'];
      if (owner !== undefined) {
        if (owner !== this.lab.owner) owners.add(owner);
      } else if (composeFile !== undefined && composeFile !== this.composeFile) {
        owners.add(join(dirname(dirname(composeFile)), 'etcd-lab.yaml'));
      }
    }
    return [...owners].sort();
  }

  /**
   * Refuses to act on a lab another checkout made (same name, other spec): its HAProxy reads that
   * checkout's files, its credentials are that checkout's, and `down` here would end its work.
   */
  async assertOwned(): Promise<void> {
    const [other] = await this.foreignOwners();
    if (other === undefined) return;
    const gone = !existsSync(dirname(other));
    throw new UserError(`lab "${this.name}" belongs to another checkout: ${other}${gone ? ' (that directory no longer exists)' : ''}`, {
      hint:
        `this checkout's spec is ${this.lab.owner}. Either run etcd-lab in ${dirname(other)}, or give this lab another name ` +
        `(name: in etcd-lab.yaml, or --name ${this.name}-2)` +
        (gone ? `; to remove the orphaned lab from here: \`etcd-lab down --take-over\` (data volumes kept unless --volumes)` : ''),
      exitCode: ExitCode.refused,
    });
  }

  /** A member is cut off when it is not on the lab network (see `partition`). */
  isPartitioned(container: ContainerInfo): boolean {
    return !container.networks.includes(this.topology.network);
  }

  // What operations do to the lab's objects, in the lab's terms: lab/ asks these, never the engine.

  /** Refuses, with what to do, when the Docker engine does not answer. */
  async ping(): Promise<void> {
    await this.engine.ping();
  }

  async engineInfo(): Promise<EngineInfo> {
    return this.engine.info();
  }

  /** `docker compose version`; undefined when compose v2 is missing. */
  async composeVersion(): Promise<string | undefined> {
    return this.engine.compose.version();
  }

  /** SIGKILL: no graceful leadership transfer. */
  async kill(c: Ref): Promise<void> {
    await this.engine.containers.kill(c.id, 'SIGKILL');
  }

  /** SIGTERM, then SIGKILL after the grace period (Docker's default when none is given). */
  async stop(c: Ref, graceSeconds?: number): Promise<void> {
    await this.engine.containers.stop(c.id, graceSeconds);
  }

  async start(c: Ref): Promise<void> {
    await this.engine.containers.start(c.id);
  }

  /** Frozen: its connections stay open, nothing answers on them. */
  async pause(c: Ref): Promise<void> {
    await this.engine.containers.pause(c.id);
  }

  async unpause(c: Ref): Promise<void> {
    await this.engine.containers.unpause(c.id);
  }

  /** Any of the lab's containers (a helper, the API server, a prepared restore) stopped with grace and removed. */
  async removeContainer(c: Ref, graceSeconds: number): Promise<void> {
    await this.engine.containers.remove(c.id, graceSeconds);
  }

  async logs(c: Ref, opts: { follow: boolean; tail?: number; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }): Promise<void> {
    await this.engine.containers.logs(c.id, opts);
  }

  /** What a container printed so far, both streams as one text (empty when it cannot be read). */
  async output(c: Ref, tail?: number): Promise<string> {
    let text = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString();
        done();
      },
    });
    await this.engine.containers.logs(c.id, { follow: false, ...(tail !== undefined ? { tail } : {}), stdout: sink, stderr: sink }).catch(() => {});
    return text;
  }

  /** Starts a long-running container that belongs to the lab: labelled with it and its checkout, so it is found, counted and removed with it. */
  async runContainer(role: Role, run: Omit<ServiceRun, 'labels'> & { labels?: Record<string, string> }): Promise<string> {
    return this.engine.containers.run({ ...run, labels: { ...run.labels, [LABEL.lab]: this.name, [LABEL.role]: role, [LABEL.owner]: this.lab.owner } });
  }

  /** A one-off run of an image's tool for the lab, labelled as the lab's tool (found and removed with it) and with any labels given. */
  async runTool(run: Omit<ToolRun, 'labels'> & { labels?: Record<string, string> }): Promise<ToolResult> {
    return this.engine.tools.run({ ...run, labels: { ...toolLabels(this.name), ...run.labels } });
  }

  async imageExists(ref: string): Promise<boolean> {
    return this.engine.images.exists(ref);
  }

  async pullImage(ref: string, onLine?: (line: string) => void): ReturnType<Engine['images']['pull']> {
    return this.engine.images.pull(ref, onLine);
  }

  /** The lab's images as its settings name them: present, else pulled, else (etcd-lab's own) built here; which were chosen. */
  async ensureImages(reporter: Reporter): Promise<ImageChoice> {
    const { local, spec } = this.lab;
    return ensureLabImages(this.engine, { etcd: local.etcdImage, haproxy: local.haproxyImage }, { etcd: spec.etcd.image, haproxy: spec.haproxy.image }, reporter);
  }

  /** The images etcd-lab builds itself, each built when missing or when its recipe changed. */
  async buildImages(which: Omit<BuildImagesOptions, 'engine'>, reporter: Reporter): Promise<ImagesResult> {
    return buildLocalImages({ ...which, engine: this.engine }, reporter);
  }

  /**
   * Cuts a member off: onto a network of its own (labelled as the lab's partition), off the lab
   * network. It keeps its published client port (status can still ask it) but reaches no peer, and
   * HAProxy reaches it no more than the peers do.
   */
  async cutOff(c: LabMemberContainer): Promise<void> {
    const lab = await this.network();
    if (!lab) throw new UserError(`lab "${this.name}" has no network`, { hint: 'is it up? `etcd-lab up`' });
    const id = await this.engine.networks.create(`${this.name}-cut-${c.member}`, {
      [LABEL.lab]: this.name,
      [LABEL.role]: 'partition' satisfies Role,
      [LABEL.member]: c.member,
      [LABEL.owner]: this.lab.owner,
    });
    await this.engine.networks.disconnect(lab.id, c.id);
    await this.engine.networks.connect(id, c.id);
  }

  /** Back on the lab network first, at its fixed address, then off (and rid of) its partition networks; the address. */
  async reconnect(c: LabMemberContainer): Promise<string> {
    const networks = await this.networks();
    const lab = networks.find((n) => n.name === this.topology.network);
    if (!lab) throw new UserError(`lab "${this.name}" has no network`, { hint: 'is it up? `etcd-lab up`' });
    const address = this.topology.members.find((m) => m.name === c.member)!.address;
    await this.engine.networks.connect(lab.id, c.id, address);
    for (const n of networks.filter((x) => x.labels[LABEL.role] === 'partition' && x.labels[LABEL.member] === c.member)) {
      await this.engine.networks.disconnect(n.id, c.id).catch(() => {});
      await this.engine.networks.remove(n.id);
    }
    return address;
  }

  /** Any network on this engine by name (the kind network is not the lab's). */
  async networkNamed(name: string): Promise<NetworkInfo | undefined> {
    return (await this.engine.networks.list()).find((n) => n.name === name);
  }

  /** Every network on this engine: what a new lab's subnet must not overlap. */
  async allNetworks(): Promise<NetworkInfo[]> {
    return this.engine.networks.list();
  }

  async createNetwork(name: string, labels: Record<string, string>, options?: Record<string, string>): Promise<string> {
    return this.engine.networks.create(name, labels, options);
  }

  async attach(networkId: string, c: Ref): Promise<void> {
    await this.engine.networks.connect(networkId, c.id);
  }

  async detach(networkId: string, c: Ref): Promise<void> {
    await this.engine.networks.disconnect(networkId, c.id);
  }

  async removeNetwork(n: Ref): Promise<void> {
    await this.engine.networks.remove(n.id);
  }

  async removeVolume(name: string): Promise<void> {
    await this.engine.volumes.remove(name);
  }

  /** The node containers of the KIND cluster the spec names (by kind's own label). */
  async kindNodes(): Promise<ContainerInfo[]> {
    return this.engine.containers.list([`io.x-k8s.kind.cluster=${this.lab.spec.kind.name}`]);
  }
}

/** An object the engine knows by id. */
type Ref = { id: string };

/** For each member with a container, the join variables that reproduce its bootstrap flags (see LabRuntime.compose). */
export function keptBootstrapEnv(members: LabMemberContainer[]): Record<string, string> {
  return Object.assign({}, ...members.map((c) => joinValuesOf(c.member, c.command ?? '')));
}
