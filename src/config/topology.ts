// Every name, address and label of a lab, derived from its spec in one place (like kind's namer):
// the renderers print these, and the runtime finds containers by the same labels.
import { addressAt, parseSubnet, type Ipv4Subnet } from './network.js';
import type { LabSpec } from './types.js';

/** Ports inside the containers. Host ports are per person (see LocalSettings). */
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
/** In TLS mode, etcd's plain-HTTP metrics listener: /metrics and /health, for HAProxy's checks (as kubeadm probes etcd). */
export const ETCD_METRICS_PORT = 2381;
/** Where a member finds its certificates (TLS mode), mounted read-only from generated/pki/. */
export const ETCD_PKI_DIR = '/etc/etcd/pki';
export const HAPROXY_CLIENT_PORT = 2379;
export const HAPROXY_STATS_PORT = 8404;
export const ETCD_DATA_DIR = '/var/lib/etcd';
export const HAPROXY_CONFIG_DIR = '/usr/local/etc/haproxy';
export const HAPROXY_CONFIG_PATH = `${HAPROXY_CONFIG_DIR}/haproxy.cfg`;

export const LABEL = {
  lab: 'io.etcd-lab.lab',
  role: 'io.etcd-lab.role',
  member: 'io.etcd-lab.member',
  /** The spec file (absolute path) of the checkout that made it: another checkout must not act on it. */
  owner: 'io.etcd-lab.owner',
  /** On the local images etcd-lab builds: which one it is. */
  image: 'io.etcd-lab.image',
  /** On a built image: the fingerprint of the recipe it was built from (rebuilt when that changes). */
  recipe: 'io.etcd-lab.recipe',
  /** On the kind network etcd-lab made: the lab it was made for (removed with it). */
  createdFor: 'io.etcd-lab.created-for',
} as const;

/** The compose variable, set in the generated .env, that carries the owner label's value. */
export const OWNER_VAR = 'ETCD_LAB_OWNER';

/**
 * What a labelled thing is: the compose services and their network and volumes; a partition's
 * network; a one-off tool container (snapshots) or probe (kind); a member's data kept by a restore;
 * the API server `etcd-lab apiserver` runs.
 */
export type Role = 'etcd' | 'haproxy' | 'network' | 'data' | 'partition' | 'tool' | 'probe' | 'kept-data' | 'apiserver' | 'impairment';

/** Host offsets inside the subnet: .1 is Docker's gateway, HAProxy .2, members .11, .12, … */
const GATEWAY_OFFSET = 1;
const HAPROXY_OFFSET = 2;
const FIRST_MEMBER_OFFSET = 11;

/** Smallest subnet (a power of two) that holds every address of an n-member lab plus broadcast. */
export function requiredSubnetSize(members: number): number {
  const highest = FIRST_MEMBER_OFFSET + members - 1;
  return 2 ** Math.ceil(Math.log2(highest + 2));
}

export interface MemberTopology {
  /** etcd member name and compose service name: etcd1, etcd2, … */
  name: string;
  container: string;
  volume: string;
  address: string;
  peerUrl: string;
  clientUrl: string;
}

export interface LabTopology {
  project: string;
  network: string;
  subnet: Ipv4Subnet;
  gateway: string;
  haproxy: { service: 'haproxy'; container: string; address: string };
  members: MemberTopology[];
  /** The static --initial-cluster every member starts with. */
  initialCluster: string;
}

/** The one namer: member k (from 1) is etcd<k>, in the lab, the exports, etcd's membership and the CLI. */
export function memberName(k: number): string {
  return `etcd${k}`;
}

/** k of a name memberName gave (etcd3 → 3); undefined for any other name. */
export function memberNumber(name: string): number | undefined {
  const m = /^etcd([1-9]\d*)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The names of a lab of `count` members, in order. */
export function memberNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => memberName(i + 1));
}

export function labTopology(spec: LabSpec): LabTopology {
  const subnet = parseSubnet(spec.network.subnet);
  if (typeof subnet === 'string') throw new Error(`labTopology needs a validated spec: network.subnet ${subnet}`);
  const scheme = spec.tls.enabled ? 'https' : 'http';
  const members = Array.from({ length: spec.members }, (_, i): MemberTopology => {
    const name = memberName(i + 1);
    const address = addressAt(subnet, FIRST_MEMBER_OFFSET + i);
    return {
      name,
      container: `${spec.name}-${name}`,
      volume: `${spec.name}-${name}-data`,
      address,
      peerUrl: `${scheme}://${address}:${ETCD_PEER_PORT}`,
      clientUrl: `${scheme}://${address}:${ETCD_CLIENT_PORT}`,
    };
  });
  return {
    project: spec.name,
    network: spec.name,
    subnet,
    gateway: addressAt(subnet, GATEWAY_OFFSET),
    haproxy: { service: 'haproxy', container: `${spec.name}-haproxy`, address: addressAt(subnet, HAPROXY_OFFSET) },
    members,
    initialCluster: members.map((m) => `${m.name}=${m.peerUrl}`).join(','),
  };
}

/** Where this machine dials a port the lab publishes on `bindAddress`: one bound to every interface, on loopback. */
export function dialAddress(bindAddress: string): string {
  return bindAddress === '0.0.0.0' ? '127.0.0.1' : bindAddress;
}

/** The lab's client URL through HAProxy, as people dial it. */
export function clientEndpointOf(spec: LabSpec, local: { bindAddress: string; clientPort: number }): string {
  return `${spec.tls.enabled ? 'https' : 'http'}://${dialAddress(local.bindAddress)}:${local.clientPort}`;
}

export function labLabels(spec: LabSpec, role: Role, member?: string): Record<string, string> {
  return {
    [LABEL.lab]: spec.name,
    [LABEL.role]: role,
    ...(member ? { [LABEL.member]: member } : {}),
  };
}

/** Quorum arithmetic: a majority must be alive to elect a leader and commit writes. */
export function quorumOf(members: number): number {
  return Math.floor(members / 2) + 1;
}

export function toleratedFailures(members: number): number {
  return members - quorumOf(members);
}

export interface QuorumState {
  /** Members counted as up (healthy, or alive to Docker). */
  count: number;
  members: number;
  needed: number;
  held: boolean;
  /** Failures the cluster can still take from here; negative when quorum is lost. */
  tolerates: number;
  /** "2/3 alive — quorum held, tolerates 0 more failures" */
  text: string;
}

export function quorumState(count: number, members: number, word: 'healthy' | 'alive'): QuorumState {
  const needed = quorumOf(members);
  const held = count >= needed;
  const tolerates = count - needed;
  const text = held
    ? `${count}/${members} ${word} — quorum held, tolerates ${tolerates} more failure${tolerates === 1 ? '' : 's'}`
    : `${count}/${members} ${word} — quorum LOST (needs ${needed}): no leader can be elected; writes and linearizable reads fail until a member returns`;
  return { count, members, needed, held, tolerates, text };
}
