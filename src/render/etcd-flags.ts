// etcd's command line for a member: one home for the flags, used by the compose file, the Swarm
// stack and the per-host systemd units alike, and for the variables that change one member's start.
import {
  ETCD_CLIENT_PORT,
  ETCD_DATA_DIR,
  ETCD_METRICS_PORT,
  ETCD_PEER_PORT,
  ETCD_PKI_DIR,
  type MemberTopology,
} from '../config/topology.js';
import type { LabSpec } from '../config/types.js';
import { MEMBER_FILES } from './pki.js';

/** "${VAR:-default}": a teammate overrides it in .env without touching the committed file. */
export function interpolate(variable: string, fallback: string | number): string {
  return `\${${variable}:-${fallback}}`;
}

/** Where each certificate file is inside a member (TLS mode): its own generated/pki/<member>/, mounted whole. */
export function filesIn(dir: string): Record<keyof typeof MEMBER_FILES, string> {
  return Object.fromEntries(Object.entries(MEMBER_FILES).map(([k, f]) => [k, `${dir}/${f}`])) as Record<keyof typeof MEMBER_FILES, string>;
}

/** TLS mode: client and peer TLS, both requiring a certificate from the lab CA; health on plain HTTP. */
function tlsFlags(pkiDir: string): string[] {
  const IN_MEMBER = filesIn(pkiDir);
  return [
    `--cert-file=${IN_MEMBER.serverCert}`,
    `--key-file=${IN_MEMBER.serverKey}`,
    '--client-cert-auth',
    `--trusted-ca-file=${IN_MEMBER.ca}`,
    `--peer-cert-file=${IN_MEMBER.peerCert}`,
    `--peer-key-file=${IN_MEMBER.peerKey}`,
    '--peer-client-cert-auth',
    `--peer-trusted-ca-file=${IN_MEMBER.ca}`,
    // /health and /metrics without a client certificate, for HAProxy's checks (as kubeadm probes etcd).
    `--listen-metrics-urls=http://0.0.0.0:${ETCD_METRICS_PORT}`,
  ];
}

/** The variables that start a member as one joining a running cluster, set only by etcd-lab for that start. */
export function joinVars(member: string): { initialCluster: string; state: string } {
  const prefix = `ETCD_LAB_${member.toUpperCase()}`;
  return { initialCluster: `${prefix}_INITIAL_CLUSTER`, state: `${prefix}_INITIAL_CLUSTER_STATE` };
}

/**
 * The join variables read back from a running member's command line (as Docker lists it): the
 * values it was started with, so a later compose run reproduces its flags instead of recreating it
 * with the bootstrap ones. Written (etcdCommand) and read here, in one module.
 */
export function joinValuesOf(member: string, command: string): Record<string, string> {
  const vars = joinVars(member);
  const flag = (name: string) => new RegExp(`(?:^|\\s)--${name}=(\\S+)`).exec(command)?.[1];
  const cluster = flag('initial-cluster');
  const state = flag('initial-cluster-state');
  return { ...(cluster ? { [vars.initialCluster]: cluster } : {}), ...(state ? { [vars.state]: state } : {}) };
}

/** The variable that puts one member on another image, set only by `etcd-lab upgrade` for that member's start. */
export function memberImageVar(member: string): string {
  return `ETCD_LAB_${member.toUpperCase()}_IMAGE`;
}

/**
 * The member's etcd flags. In the compose file the bootstrap values can be replaced for one start
 * (`joinable`); a unit file for a host (export hosts) has them plain.
 */
export function etcdCommand(
  spec: LabSpec,
  member: MemberTopology,
  initialCluster: string,
  opts: { joinable?: boolean; /** Where the certificates are (Swarm: /run/secrets). */ pkiDir?: string; /** Plain flags (not joinable): a member that joins a running cluster. */ existing?: boolean } = {},
): string[] {
  const { etcd } = spec;
  const joinable = opts.joinable ?? true;
  const scheme = spec.tls.enabled ? 'https' : 'http';
  return [
    `--name=${member.name}`,
    `--data-dir=${ETCD_DATA_DIR}`,
    `--listen-client-urls=${scheme}://0.0.0.0:${ETCD_CLIENT_PORT}`,
    `--advertise-client-urls=${member.clientUrl}`,
    `--listen-peer-urls=${scheme}://0.0.0.0:${ETCD_PEER_PORT}`,
    `--initial-advertise-peer-urls=${member.peerUrl}`,
    // Both ignored once the data volume holds a member: restarts rejoin, they do not re-bootstrap.
    // A member joining a running cluster (member replace, scale) is started once with its own
    // values in the environment of that one `docker compose up` (joinVars names them).
    `--initial-cluster=${joinable ? interpolate(joinVars(member.name).initialCluster, initialCluster) : initialCluster}`,
    `--initial-cluster-state=${joinable ? interpolate(joinVars(member.name).state, 'new') : opts.existing ? 'existing' : 'new'}`,
    `--initial-cluster-token=${spec.name}`,
    `--heartbeat-interval=${etcd.heartbeatIntervalMs}`,
    `--election-timeout=${etcd.electionTimeoutMs}`,
    `--auto-compaction-mode=${etcd.autoCompaction.mode}`,
    `--auto-compaction-retention=${etcd.autoCompaction.retention}`,
    `--quota-backend-bytes=${etcd.quotaBackendBytes}`,
    `--snapshot-count=${etcd.snapshotCount}`,
    ...(spec.tls.enabled ? tlsFlags(opts.pkiDir ?? ETCD_PKI_DIR) : []),
    '--logger=zap',
    '--log-outputs=stderr',
  ];
}

