// The state of a lab in one read: per member the container, health, raft status and HAProxy's
// view; then the quorum arithmetic. Read over etcd's own API, not `docker exec`.
import { ETCD_CLIENT_PORT, quorumState } from '../config/topology.js';
import type { ContainerInfo } from '../engine/engine.js';
import { alarmsIn, memberHealth, memberStatus, versions, type Alarm, type AlarmType, type MemberStatus } from '../protocol/etcd-http.js';
import { electedLeader } from './leader.js';
import { fetchStats, type BackendServer } from '../protocol/haproxy-stats.js';
import type { LabMember, LabRuntime } from './lab.js';
import { earliestExpiry } from './pki.js';
import { impairmentOf, impairments, type ImpairmentKind } from './impairments.js';

export interface MemberReport {
  name: string;
  address: string;
  container: string;
  /** running, paused, exited, missing, … */
  state: string;
  /** Cut off from the lab network by `etcd-lab partition`. */
  partitioned: boolean;
  /** Its peer traffic impaired by `etcd-lab loss` or `blackhole`. */
  impaired?: ImpairmentKind;
  /** Host port of the member's client API, when published. */
  hostPort?: number;
  healthy: boolean;
  /** Why not healthy: "RAFT NO LEADER", "ECONNREFUSED", "container exited". */
  reason: string;
  isLeader: boolean;
  memberId?: string;
  /** The leader this member believes in ("0": none). */
  leaderId?: string;
  raftTerm?: number;
  raftIndex?: number;
  raftAppliedIndex?: number;
  /** Not yet promoted to vote (scale and member replace add members as learners). */
  learner?: boolean;
  dbSize?: number;
  dbSizeInUse?: number;
  version?: string;
  /** Alarms this member raised (NOSPACE: its database reached the space quota, so the cluster refuses writes). */
  alarms: AlarmType[];
  /** Every alarm this member knows of (collected, then dropped from the report). */
  clusterAlarms?: Alarm[];
  /** HAProxy's backend state for this member: UP, DOWN, … or "unknown" when the stats page does not answer. */
  backend: string;
}

export interface LabStatus {
  name: string;
  clientEndpoint: string;
  statsUrl: string;
  /**
   * `config`: whether HAProxy runs generated/haproxy/haproxy.cfg as it is now ("stale": `etcd-lab up` reloads it).
   * `routesTo`: the leader(s) HAProxy sends clients to; empty while none leads (then every member that follows a leader gets them).
   */
  haproxy: { state: string; statsError?: string; config?: 'current' | 'stale'; routesTo?: string[] };
  members: MemberReport[];
  leader?: string;
  quorum: {
    members: number;
    healthy: number;
    needed: number;
    /** Failures the cluster can still take from here; negative when quorum is lost. */
    tolerates: number;
    held: boolean;
  };
  /** The cluster version the members agreed on (the lowest server version among them, as major.minor.0). */
  clusterVersion?: string;
  /** Active alarms, each with the members that raised it. */
  alarms: { alarm: AlarmType; members: string[] }[];
  summary: string;
  /** TLS mode: the lab's certificates, and the one that expires first. */
  tls?: { pki: string; earliest?: { name: string; notAfter: string } };
}

/** HAProxy as its stats page tells it: each backend server, where it routes, whether it runs the current file. */
async function haproxyView(runtime: LabRuntime, haproxy: ContainerInfo | undefined, timeoutMs: number) {
  if (haproxy?.state !== 'running') return { statsError: haproxy ? `HAProxy container is ${haproxy.state}` : 'HAProxy container is missing' };
  try {
    const [stats, file] = await Promise.all([fetchStats(runtime.statsUrl, runtime.statsCredentials, timeoutMs), runtime.haproxyFileHash()]);
    const config: 'current' | 'stale' | undefined = stats.configHash && file ? (stats.configHash === file ? 'current' : 'stale') : undefined;
    return { backends: stats.backends, routesTo: stats.leaderRoutes, config };
  } catch (error) {
    return { statsError: (error as Error).message };
  }
}

/** One member: its container, its health and raft status as it answers them, HAProxy's view of it. */
async function memberReport(runtime: LabRuntime, member: LabMember, backends: BackendServer[] | undefined, impaired: Map<string, ImpairmentKind>, timeoutMs: number): Promise<MemberReport> {
  const { topology: m, container, endpoint } = member;
  const backend = backends?.find((b) => b.name === m.name)?.status ?? 'unknown';
  const kind = impaired.get(m.name);
  const base = { name: m.name, address: m.address, container: m.container, backend, isLeader: false, partitioned: false, ...(kind ? { impaired: kind } : {}), alarms: [] as AlarmType[] };
  if (!container) return { ...base, state: 'missing', healthy: false, reason: 'no container' };
  const hostPort = container.hostPorts[ETCD_CLIENT_PORT];
  base.partitioned = runtime.isPartitioned(container);
  if (!endpoint) return { ...base, state: container.state, hostPort, healthy: false, reason: `container ${container.state}` };
  const [health, status] = await Promise.all([
    // A NOSPACE alarm is reported as such below: the member still serves reads, deletes and compaction.
    memberHealth(endpoint, timeoutMs, { excludeNoSpace: true }),
    memberStatus(endpoint, timeoutMs).catch(() => undefined as MemberStatus | undefined),
  ]);
  return {
    ...base,
    state: container.state,
    hostPort,
    healthy: health.healthy,
    reason: health.reason,
    memberId: status?.memberId,
    leaderId: status?.leader,
    raftTerm: status?.raftTerm,
    raftIndex: status?.raftIndex,
    raftAppliedIndex: status?.raftAppliedIndex,
    ...(status?.isLearner ? { learner: true } : {}),
    dbSize: status?.dbSize,
    dbSizeInUse: status?.dbSizeInUse,
    version: status?.version,
    alarms: status ? alarmsIn(status).filter((a) => a.memberId === status.memberId).map((a) => a.alarm) : [],
    clusterAlarms: status ? alarmsIn(status) : [],
  };
}

export async function collectStatus(runtime: LabRuntime, timeoutMs = 1000): Promise<LabStatus> {
  const [labMembers, haproxy, helpers] = await Promise.all([runtime.members(), runtime.haproxyContainer(), impairments(runtime)]);
  const impaired = new Map(helpers.map((h) => [impairmentOf(h).member, impairmentOf(h).kind]));
  const { backends, statsError, config, routesTo } = await haproxyView(runtime, haproxy, timeoutMs);
  const members = await Promise.all(labMembers.map((m) => memberReport(runtime, m, backends, impaired, timeoutMs)));

  // The one rule (leader.ts): a member cut off from quorum may name a stale leader.
  const elected = electedLeader(
    members.map((m) => ({ member: m.name, memberId: m.memberId, leaderId: m.leaderId, raftTerm: m.raftTerm })),
    members.length,
  );
  for (const m of members) m.isLeader = elected !== undefined && m.memberId === elected.id;
  const quorum = quorumState(members.filter((m) => m.healthy).length, members.length, 'healthy');
  const leader = members.find((m) => m.isLeader)?.name;
  // Every member lists every alarm of the cluster; the members that raised them are named by ID.
  const nameOf = new Map(members.filter((m) => m.memberId).map((m) => [m.memberId!, m.name]));
  const raised = members.flatMap((m) => m.clusterAlarms ?? []);
  const alarms = (['NOSPACE', 'CORRUPT'] as const)
    .map((alarm) => ({ alarm, members: [...new Set(raised.filter((a) => a.alarm === alarm).map((a) => nameOf.get(a.memberId) ?? a.memberId))].sort() }))
    .filter((a) => a.members.length > 0);
  for (const m of members) delete m.clusterAlarms;
  const answering = members.find((m) => m.healthy && m.hostPort);
  const clusterVersion = answering
    ? await versions(labMembers.find((m) => m.name === answering.name)!.endpoint!, timeoutMs)
        .then((v) => v.cluster)
        .catch(() => undefined)
    : undefined;
  return {
    name: runtime.name,
    clientEndpoint: runtime.clientEndpoint,
    statsUrl: runtime.statsUrl,
    haproxy: { state: haproxy?.state ?? 'missing', ...(statsError ? { statsError } : {}), ...(config ? { config } : {}), ...(routesTo ? { routesTo } : {}) },
    members,
    ...(leader ? { leader } : {}),
    quorum: { members: quorum.members, healthy: quorum.count, needed: quorum.needed, tolerates: quorum.tolerates, held: quorum.held },
    ...(clusterVersion ? { clusterVersion } : {}),
    alarms,
    summary: quorum.text + alarms.map((a) => `; ALARM ${a.alarm} on ${a.members.join(', ')}${ALARM_MEANING[a.alarm]}`).join(''),
    ...(runtime.lab.spec.tls.enabled ? { tls: { pki: runtime.pkiDir, earliest: earliestExpiry(runtime.pkiDir) } } : {}),
  };
}

const ALARM_MEANING: Record<AlarmType, string> = {
  NOSPACE: ' — the space quota is reached: writes are refused until space is freed and the alarm disarmed (`etcd-lab alarm recover`)',
  CORRUPT: ' — members disagree on their data: see `etcd-lab logs`; restore from a snapshot (`etcd-lab snapshot restore`)',
};
