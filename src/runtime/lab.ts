// A lab as it exists in Docker: its containers, network and volumes found by label, the host
// endpoints to reach it, and the cluster's view (leader, statuses, `ask`). It observes; of actions it
// has only the two every operation shares: a compose run with the members' join variables kept, and
// an HAProxy reload.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { readFile } from 'node:fs/promises';
import { COMPOSE_FILE, HAPROXY_FILE } from '../render/index.js';
import { joinValuesOf, memberImageVar } from '../render/etcd-flags.js';
import { configHashOf } from '../render/haproxy.js';
import { fetchStats } from '../protocol/haproxy-stats.js';
import { waitUntil } from './wait.js';
import type { LoadedLab } from '../config/load.js';
import { clientEndpointOf, dialAddress, ETCD_CLIENT_PORT, LABEL, labTopology, quorumOf, type LabTopology, type MemberTopology } from '../config/topology.js';
import { DockerEngine } from '../engine/docker.js';
import type { ContainerInfo, Engine } from '../engine/engine.js';
import { describeFetchError, isTransient, memberHealth, memberStatus, neverSent, type ClientTls, type Endpoint, type Health, type MemberStatus } from '../protocol/etcd-http.js';
import { electedLeader, type ElectedLeader, type MemberView } from './leader.js';
import { sleep, throwIfInterrupted } from '../interrupt.js';
import type { StepHandle } from '../progress.js';
import { readClientTls } from './pki.js';
import { CLIENTS, pkiDirOf } from '../render/pki.js';
import { ExitCode } from '../exit-codes.js';

export interface LabMemberContainer extends ContainerInfo {
  member: string;
}

/** A member of the spec joined to what exists of it (LabRuntime.members). */
export interface LabMember {
  name: string;
  topology: MemberTopology;
  container?: LabMemberContainer;
  /** Its client API on this machine, while its container runs and publishes it. */
  endpoint?: Endpoint;
}

export class LabRuntime {
  readonly topology: LabTopology;

  constructor(
    readonly lab: LoadedLab,
    readonly engine: Engine = new DockerEngine(),
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

  /** Where this machine reaches a published port. */
  private get hostAddress(): string {
    return dialAddress(this.lab.local.bindAddress);
  }

  private get scheme(): string {
    return this.lab.spec.tls.enabled ? 'https' : 'http';
  }

  /** The lab's client URL through HAProxy, as people dial it. */
  get clientEndpoint(): string {
    return clientEndpointOf(this.lab.spec, this.lab.local);
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

  /** Each member's raft status over its own API (undefined where it does not answer in time, with why). */
  async statuses(members?: LabMemberContainer[], timeoutMs = 500): Promise<MemberAnswer[]> {
    const list = members ?? (await this.memberContainers());
    return Promise.all(
      list.map(async (container): Promise<MemberAnswer> => {
        let endpoint: Endpoint | undefined;
        try {
          endpoint = this.memberEndpoint(container);
        } catch {
          return { container, error: 'no client certificate in generated/pki' };
        }
        if (!endpoint) return { container, error: `container ${container.state}` };
        try {
          return { container, endpoint, status: await memberStatus(endpoint, timeoutMs) };
        } catch (error) {
          return { container, endpoint, error: describeFetchError(error) };
        }
      }),
    );
  }

  /** The leader by the one rule (see leader.ts), and every member's answer it was read from. */
  async leaderView(timeoutMs = 1000, clusterSize = this.topology.members.length): Promise<LeaderView> {
    const answers = await this.statuses(undefined, timeoutMs);
    const elected = electedLeader(memberViews(answers), clusterSize);
    const container = elected?.member !== undefined ? answers.find((a) => a.container.member === elected.member)?.container : undefined;
    return { elected, answers, ...(container ? { container } : {}) };
  }

  /**
   * Stops and removes containers of the lab: HAProxy first, so no client connection holds a member's
   * graceful shutdown open. Then the followers, and the leader last: a leader stopping beside stopping
   * followers hands its leadership to one of them and then waits seconds for a leader that never comes.
   */
  async removeContainers(containers: ContainerInfo[], onRemoved: (name: string) => void = () => {}, graceSeconds = 10): Promise<void> {
    const remove = async (c: ContainerInfo) => {
      await this.engine.containers.remove(c.id, graceSeconds);
      onRemoved(c.name);
    };
    const role = (c: ContainerInfo) => c.labels[LABEL.role];
    // Best effort: without an answer (or without the TLS client files) the order is only slower.
    const leader = await this.leader().catch(() => undefined);
    const isLeader = (c: ContainerInfo) => role(c) === 'etcd' && c.labels[LABEL.member] === leader;
    await Promise.all(containers.filter((c) => role(c) !== 'etcd').map(remove));
    await Promise.all(containers.filter((c) => role(c) === 'etcd' && !isLeader(c)).map(remove));
    await Promise.all(containers.filter(isLeader).map(remove));
  }

  /** The member a quorum follows now, if it answers (a leader just killed does not). */
  async leader(timeoutMs = 1000): Promise<string | undefined> {
    return (await this.leaderView(timeoutMs)).container?.member;
  }

  /** The leader's container (to reach it, as move-leader must). */
  async leaderContainer(timeoutMs = 1000): Promise<LabMemberContainer | undefined> {
    return (await this.leaderView(timeoutMs)).container;
  }

  /**
   * Waits, within `deadline`, for a leader that a quorum follows and that answers: right after a
   * leader was killed, paused or cut off, its followers name it until the election timeout, then
   * elect another. Refuses with each member's answer when none comes (quorum lost).
   */
  async awaitLeader(deadline: number, step?: StepHandle, clusterSize?: number): Promise<LeaderView & { container: LabMemberContainer; elected: ElectedLeader }> {
    for (;;) {
      throwIfInterrupted();
      const view = await this.leaderView(1000, clusterSize);
      if (view.container && view.elected) return view as LeaderView & { container: LabMemberContainer; elected: ElectedLeader };
      step?.update(`waiting for a leader: ${describeAnswers(view.answers)}`);
      // Fewer members running than a quorum: no election can end, so no waiting for one.
      if (Date.now() >= deadline || this.running(view) < quorumOf(clusterSize ?? this.topology.members.length)) throw this.noLeader(view);
      await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
    }
  }

  /** Members whose containers run on the lab network: the most that could elect a leader. */
  private running(view: LeaderView): number {
    return view.answers.filter((a) => a.container.state === 'running' && !this.isPartitioned(a.container)).length;
  }

  /** How long a command waits for an election before calling quorum lost: several election timeouts. */
  get electionWaitMs(): number {
    return Math.max(10_000, 10 * this.lab.spec.etcd.electionTimeoutMs);
  }

  private noLeader(view: LeaderView): UserError {
    const size = this.topology.members.length;
    return new UserError(`lab "${this.name}" has no leader that a quorum (${quorumOf(size)} of ${size}) follows: ${describeAnswers(view.answers)}`, {
      hint: 'with quorum lost nothing can be written or read consistently: bring members back (`etcd-lab start`, `unpause`, `heal`; `etcd-lab status` shows which), or restore from a snapshot (`etcd-lab snapshot restore FILE`)',
      exitCode: ExitCode.refused,
    });
  }

  /**
   * Asks the cluster something through a member that answers and follows the leader (never blindly
   * through HAProxy, which may still send a connection to a member that just died). A call that
   * fails for the moment (see isTransient) is asked again, of the next member, until `deadline`; a
   * call that is not idempotent is asked again only when it never reached a member. What it cannot
   * get says which member did not answer and why.
   */
  async ask<T>(what: string, call: (endpoint: Endpoint, member: string) => Promise<T>, opts: AskOptions): Promise<T> {
    const deadline = opts.deadline ?? Date.now() + this.electionWaitMs;
    const tried: string[] = [];
    let round = 0;
    for (;;) {
      throwIfInterrupted();
      const view = await this.leaderView(1000, opts.clusterSize);
      const candidates = view.answers.filter(
        (a) =>
          a.status &&
          a.endpoint &&
          view.elected &&
          a.status.leader === view.elected.id &&
          a.status.raftTerm === view.elected.term &&
          !(opts.exclude ?? []).includes(a.container.member) &&
          !this.isPartitioned(a.container),
      );
      const isLeader = (a: MemberAnswer) => a.status!.memberId === a.status!.leader;
      const ordered = opts.prefer === 'leader' ? [...candidates.filter(isLeader), ...candidates.filter((a) => !isLeader(a))] : opts.prefer === 'follower' ? [...candidates.filter((a) => !isLeader(a)), ...candidates.filter(isLeader)] : candidates;
      // Not always the same member first: one that answers slowly should not take every round.
      const order = opts.prefer ? ordered : ordered.map((_, i) => ordered[(i + round) % ordered.length]!);
      round++;
      if (order.length === 0) tried.push(`no leader yet (${describeAnswers(view.answers)})`);
      // Fewer members running than a quorum: no leader can come, so no waiting for one.
      if (order.length === 0 && this.running(view) < quorumOf(opts.clusterSize ?? this.topology.members.length)) throw this.noLeader(view);
      for (const a of order) {
        try {
          return await call(a.endpoint!, a.container.member);
        } catch (error) {
          if (!isTransient(error)) throw error;
          tried.push(`${a.container.member}: ${etcdReason(error)}`);
          if (!opts.idempotent && !neverSent(error)) {
            throw new UserError(`${what}: ${a.container.member} did not answer (${etcdReason(error)}), so whether it was done is unknown`, {
              hint: '`etcd-lab status` and `etcd-lab member list` show where the lab stands; run the command again once it has a leader',
              exitCode: ExitCode.failedPartWay,
              cause: error,
            });
          }
        }
        if (Date.now() >= deadline) break;
      }
      opts.step?.update(`${what}: ${tried.at(-1)}; asking again`);
      if (Date.now() >= deadline) {
        throw new UserError(`${what}: no member of lab "${this.name}" could answer in time (${[...new Set(tried)].slice(-4).join('; ')})`, {
          hint: '`etcd-lab status` shows which members serve; bring the others back (`etcd-lab start`, `unpause`, `heal`) and run the command again',
          exitCode: ExitCode.refused,
        });
      }
      await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
    }
  }

  /**
   * The one view of the members: every member of the spec, in order, joined to its container (when
   * there is one) and, while that runs and publishes its client port, its endpoint on this machine.
   * `names` narrows it to those members.
   */
  async members(names?: string[]): Promise<LabMember[]> {
    const containers = await this.memberContainers();
    return this.topology.members
      .filter((m) => !names || names.includes(m.name))
      .map((topology) => {
        const container = containers.find((c) => c.member === topology.name);
        return { name: topology.name, topology, container, endpoint: container && this.memberEndpoint(container) };
      });
  }

  /** One member of the spec in that view; undefined for a name the spec does not have. */
  async member(name: string): Promise<LabMember | undefined> {
    return (await this.members([name]))[0];
  }

  /** The members with their health as /health says it: a member with no endpoint is not healthy, and says why. */
  async memberHealth(names?: string[], timeoutMs = 1000, opts: { excludeNoSpace?: boolean } = {}): Promise<(LabMember & { health: Health })[]> {
    return Promise.all(
      (await this.members(names)).map(async (m) => ({
        ...m,
        health: m.endpoint ? await memberHealth(m.endpoint, timeoutMs, opts) : { healthy: false, reason: m.container ? `container ${m.container.state}` : 'no container' },
      })),
    );
  }

  /** The spec's members that are not healthy now: no container, not running, or /health not 200. */
  async unhealthyMembers(timeoutMs = 1000): Promise<string[]> {
    return (await this.memberHealth(undefined, timeoutMs)).filter((m) => !m.health.healthy).map((m) => m.name);
  }

  /**
   * Each running member's client API on this machine, by member name. Asked again after a fault:
   * a member restarted, or cut off, is published on another host port.
   */
  async memberEndpoints(): Promise<Map<string, Endpoint>> {
    const endpoints = new Map<string, Endpoint>();
    for (const c of await this.memberContainers()) {
      const e = this.memberEndpoint(c);
      if (e) endpoints.set(c.member, e);
    }
    return endpoints;
  }

  /** The member's client API on this machine, if its container runs and publishes it. */
  memberEndpoint(container: ContainerInfo): Endpoint | undefined {
    const port = container.hostPorts[ETCD_CLIENT_PORT];
    return container.state === 'running' && port ? this.endpoint(`${this.scheme}://${this.hostAddress}:${port}`) : undefined;
  }
}

/** For each member with a container, the join variables that reproduce its bootstrap flags (see LabRuntime.compose). */
export function keptBootstrapEnv(members: LabMemberContainer[]): Record<string, string> {
  return Object.assign({}, ...members.map((c) => joinValuesOf(c.member, c.command ?? '')));
}

/** What the leader rule reads of each answer (see leader.ts). */
export function memberViews(answers: MemberAnswer[]): MemberView[] {
  return answers.map((a) => ({ member: a.container.member, memberId: a.status?.memberId, leaderId: a.status?.leader, raftTerm: a.status?.raftTerm }));
}

/** One member's answer to a status call: its status, or why there is none. */
export interface MemberAnswer {
  container: LabMemberContainer;
  endpoint?: Endpoint;
  status?: MemberStatus;
  error?: string;
}

export interface LeaderView {
  elected?: ElectedLeader;
  /** The leader's container, when the leader itself answered. */
  container?: LabMemberContainer;
  answers: MemberAnswer[];
}

export interface AskOptions {
  /** Safe to send twice (a read, or a change whose result is checked first): retried within the deadline. */
  idempotent: boolean;
  /** Default: now + the election wait. */
  deadline?: number;
  /** Members not to ask (one being replaced or leaving). */
  exclude?: string[];
  /** Ask the leader first (move-leader), or a follower first (to spare the leader). */
  prefer?: 'leader' | 'follower';
  step?: StepHandle;
  /** Voting members etcd has now, when that is not the spec's count (in the middle of `scale`). */
  clusterSize?: number;
}

/** "etcd1: no answer in time, etcd2: follows etcd3 (term 5), etcd3: leader (term 5)". */
export function describeAnswers(answers: MemberAnswer[]): string {
  const names = new Map(answers.filter((a) => a.status).map((a) => [a.status!.memberId, a.container.member]));
  return answers
    .map((a) => {
      if (!a.status) return `${a.container.member}: ${a.error ?? 'no answer'}`;
      const { leader, memberId, raftTerm } = a.status;
      if (leader === '0') return `${a.container.member}: no leader (term ${raftTerm})`;
      if (leader === memberId) return `${a.container.member}: leader (term ${raftTerm})`;
      return `${a.container.member}: follows ${names.get(leader) ?? BigInt(leader).toString(16)} (term ${raftTerm})`;
    })
    .join(', ');
}

/** etcd's own words when it refused ("…HTTP 503 {"message":"etcdserver: leader changed"}" → "etcdserver: leader changed"). */
export function etcdReason(error: unknown): string {
  const message = (error as Error).message ?? '';
  const said = /"message":\s*"([^"]+)"/.exec(message)?.[1];
  return said ?? describeFetchError(error);
}
