// A lab as it exists in Docker: its containers, network and volumes found by label, and the
// host endpoints to reach it. Observation only; `up`/`down` and the failure commands act on it.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { COMPOSE_FILE } from '../render/index.js';
import type { LoadedLab } from '../config/load.js';
import { ETCD_CLIENT_PORT, LABEL, labTopology, type LabTopology } from '../config/topology.js';
import { DockerEngine, type ContainerInfo } from './docker.js';
import { memberHealth, memberStatus, type ClientTls, type Endpoint, type MemberStatus } from './etcd-http.js';
import { readClientTls } from './pki.js';
import { CLIENTS, pkiDirOf } from '../render/pki.js';

export interface LabMemberContainer extends ContainerInfo {
  member: string;
}

export class LabRuntime {
  readonly topology: LabTopology;

  constructor(
    readonly lab: LoadedLab,
    readonly engine: DockerEngine = new DockerEngine(),
  ) {
    this.topology = labTopology(lab.spec);
  }

  get name(): string {
    return this.lab.spec.name;
  }

  get composeFile(): string {
    return join(this.lab.outDir, COMPOSE_FILE);
  }

  private get labLabel(): string {
    return `${LABEL.lab}=${this.name}`;
  }

  /** Where this machine reaches a published port: loopback when bound to every address. */
  private get hostAddress(): string {
    const bind = this.lab.local.bindAddress;
    return bind === '0.0.0.0' ? '127.0.0.1' : bind;
  }

  private get scheme(): string {
    return this.lab.spec.tls.enabled ? 'https' : 'http';
  }

  /** The lab's client URL through HAProxy, as people dial it. */
  get clientEndpoint(): string {
    return `${this.scheme}://${this.hostAddress}:${this.lab.local.clientPort}`;
  }

  private tls: ClientTls | undefined;
  /** Where etcd-lab's own TLS files are: generated/pki/. */
  get pkiDir(): string {
    return pkiDirOf(this.lab.outDir);
  }

  /** A URL of this lab as etcd-lab itself reaches it: in TLS mode with the admin client certificate. */
  endpoint(url: string): Endpoint {
    if (!this.lab.spec.tls.enabled) return url;
    this.tls ??= readClientTls(this.pkiDir, CLIENTS.admin);
    return { url, tls: this.tls };
  }

  /** HAProxy's client port, as etcd-lab reaches it. */
  get client(): Endpoint {
    return this.endpoint(this.clientEndpoint);
  }

  get statsUrl(): string {
    return `http://${this.hostAddress}:${this.lab.local.statsPort}/stats`;
  }

  get statsCredentials(): { user: string; password: string } {
    return { user: this.lab.local.statsUser, password: this.lab.local.statsPassword };
  }

  async containers(): Promise<ContainerInfo[]> {
    return this.engine.containers([this.labLabel]);
  }

  /** Member containers in member order (etcd1, etcd2, …). */
  async memberContainers(): Promise<LabMemberContainer[]> {
    const all = await this.engine.containers([this.labLabel, `${LABEL.role}=etcd`]);
    return all
      .map((c) => ({ ...c, member: c.labels[LABEL.member] ?? '' }))
      .sort((a, b) => a.member.localeCompare(b.member, 'en', { numeric: true }));
  }

  async haproxyContainer(): Promise<ContainerInfo | undefined> {
    return (await this.engine.containers([this.labLabel, `${LABEL.role}=haproxy`]))[0];
  }

  async volumes(): Promise<string[]> {
    return (await this.engine.volumes([this.labLabel])).map((v) => v.name).sort();
  }

  /** The members' data volumes (not the copies a restore keeps meanwhile). */
  async dataVolumes(): Promise<string[]> {
    return (await this.engine.volumes([this.labLabel, `${LABEL.role}=data`])).map((v) => v.name).sort();
  }

  /** The lab's own network (fixed subnet), not the ones `partition` makes. */
  async network() {
    return (await this.networks()).find((n) => n.name === this.topology.network);
  }

  /** Every network carrying the lab's label: its own and any partition networks. */
  async networks() {
    return this.engine.networks([this.labLabel]);
  }

  /**
   * The spec files, other than this checkout's, that own what Docker holds under this lab's name.
   * Objects from before owner labels are judged by the compose file compose recorded on containers.
   */
  async foreignOwners(): Promise<string[]> {
    const [containers, networks, volumes] = await Promise.all([
      this.containers(),
      this.networks(),
      this.engine.volumes([this.labLabel]),
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
      exitCode: 3,
    });
  }

  /** A member is cut off when it is not on the lab network (see `partition`). */
  isPartitioned(container: ContainerInfo): boolean {
    return !container.networks.includes(this.topology.network);
  }

  /** Each member's raft status over its own API (undefined where it does not answer in time). */
  async statuses(
    members?: LabMemberContainer[],
    timeoutMs = 500,
  ): Promise<{ container: LabMemberContainer; status: MemberStatus | undefined }[]> {
    const list = members ?? (await this.memberContainers());
    return Promise.all(
      list.map(async (container) => {
        try {
          const endpoint = this.memberEndpoint(container);
          return { container, status: endpoint ? await memberStatus(endpoint, timeoutMs).catch(() => undefined) : undefined };
        } catch {
          return { container, status: undefined }; // no client certificate here (generated/pki removed): no answer
        }
      }),
    );
  }

  /** The member the reachable members name as leader, if any answers within the timeout. */
  async leader(timeoutMs = 500): Promise<string | undefined> {
    return (await this.leaderContainer(timeoutMs))?.member;
  }

  /** The leader's container (to reach it, as move-leader must). */
  async leaderContainer(timeoutMs = 500): Promise<LabMemberContainer | undefined> {
    const statuses = await this.statuses(undefined, timeoutMs);
    const leaderId = statuses.find((s) => s.status && s.status.leader !== '0')?.status?.leader;
    return statuses.find((s) => s.status?.memberId === leaderId)?.container;
  }

  /** The spec's members that are not healthy now: no container, not running, or /health not 200. */
  async unhealthyMembers(timeoutMs = 1000): Promise<string[]> {
    const containers = await this.memberContainers();
    const answers = await Promise.all(
      this.topology.members.map(async (m) => {
        const c = containers.find((x) => x.member === m.name);
        const endpoint = c && this.memberEndpoint(c);
        return endpoint && (await memberHealth(endpoint, timeoutMs)).healthy ? '' : m.name;
      }),
    );
    return answers.filter(Boolean);
  }

  /** The member's client API on this machine, if its container runs and publishes it. */
  memberEndpoint(container: ContainerInfo): Endpoint | undefined {
    const port = container.hostPorts[ETCD_CLIENT_PORT];
    return container.state === 'running' && port ? this.endpoint(`${this.scheme}://${this.hostAddress}:${port}`) : undefined;
  }
}
