// Rules that span fields, run on a filled LabSpec. Field-level checks are in read.ts.
import type { Problem } from '../errors.js';
import { formatDuration } from './fields.js';
import { isPrivateSubnet, parseSubnet } from './network.js';
import { requiredSubnetSize } from './topology.js';
import type { LabSpec } from './types.js';

/**
 * kubeadm's MinExternalEtcdVersion ("3.5.24-0", cmd/kubeadm/app/constants/constants.go). Only
 * kubeadm's preflight checks it (ExternalEtcdVersionCheck, cmd/kubeadm/app/preflight/checks.go),
 * and kind skips preflight, so under `etcd-lab kind` an older etcd is not refused.
 */
export const KUBEADM_MIN_ETCD = [3, 5, 24] as const;

export interface ValidateOptions {
  /** How to name a path in messages (adds "(from --flag)" where a flag set it). */
  label?: (path: string) => string;
  /** Paths already reported as invalid; rules that read them are skipped. */
  refused?: ReadonlySet<string>;
}

/** The version in an image tag such as "v3.5.33" or "3.5.16-0", if it has one. */
export function imageTagVersion(image: string): [number, number, number] | undefined {
  const tag = /:([^:/@]+)(@|$)/.exec(image)?.[1];
  const m = tag ? /^v?(\d+)\.(\d+)\.(\d+)/.exec(tag) : null;
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

export function olderThan(version: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    if ((version[i] ?? 0) !== min[i]) return (version[i] ?? 0) < min[i]!;
  }
  return false;
}

export function validateSpec(spec: LabSpec, opts: ValidateOptions = {}): { problems: Problem[]; warnings: Problem[] } {
  const label = opts.label ?? ((p: string) => p);
  const ok = (...paths: string[]) => paths.every((p) => !opts.refused?.has(p));
  const problems: Problem[] = [];
  const warnings: Problem[] = [];

  if (ok('network.subnet')) {
    const subnet = parseSubnet(spec.network.subnet);
    if (typeof subnet === 'string') {
      problems.push({ path: label('network.subnet'), message: `${subnet} (got ${spec.network.subnet})` });
    } else if (!isPrivateSubnet(subnet)) {
      problems.push({
        path: label('network.subnet'),
        message: `${spec.network.subnet} is not private address space: those addresses belong to someone on the internet, and traffic to them from this machine would go to the lab instead`,
        fix: 'use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, such as 10.79.0.0/24',
      });
    } else if (ok('members') && subnet.size < requiredSubnetSize(spec.members)) {
      const needed = requiredSubnetSize(spec.members);
      problems.push({
        path: label('network.subnet'),
        message: `a /${subnet.prefix} has ${subnet.size} addresses; ${spec.members} members need ${needed} (gateway, HAProxy and members at .11 and up)`,
        fix: `use a /${32 - Math.log2(needed)} or larger, such as /24`,
      });
    }
  }

  const { heartbeatIntervalMs: heartbeat, electionTimeoutMs: election } = spec.etcd;
  if (ok('etcd.heartbeatInterval', 'etcd.electionTimeout') && election < 5 * heartbeat) {
    problems.push({
      path: label('etcd.electionTimeout'),
      message: `must be at least 5 × etcd.heartbeatInterval (${formatDuration(5 * heartbeat)}); got ${formatDuration(election)}, so followers would call elections while the leader is healthy`,
      fix: `raise it to ${formatDuration(10 * heartbeat)} or lower the heartbeat`,
    });
  }

  const { mode, retention } = spec.etcd.autoCompaction;
  if (ok('etcd.autoCompaction.mode', 'etcd.autoCompaction.retention')) {
    if (mode === 'periodic' && !/^(\d+(\.\d+)?(ms|s|m|h))+$|^\d+$/.test(retention)) {
      problems.push({
        path: label('etcd.autoCompaction.retention'),
        message: `must be a duration such as 1h or 30m in periodic mode (got ${retention})`,
      });
    }
    if (mode === 'revision' && !/^\d+$/.test(retention)) {
      problems.push({
        path: label('etcd.autoCompaction.retention'),
        message: `must be a number of revisions such as 10000 in revision mode (got ${retention})`,
      });
    }
  }

  if (ok('haproxy.clientPort', 'haproxy.statsPort') && spec.haproxy.clientPort === spec.haproxy.statsPort) {
    problems.push({
      path: label('haproxy.statsPort'),
      message: `is the same as haproxy.clientPort (${spec.haproxy.clientPort})`,
      fix: 'give the stats page its own port, such as 8404',
    });
  }

  if (ok('tls.caValidity', 'tls.certValidity') && spec.tls.certValidityMs > spec.tls.caValidityMs) {
    problems.push({
      path: label('tls.certValidity'),
      message: `is longer than tls.caValidity (${formatDuration(spec.tls.caValidityMs)}): a certificate cannot outlive the CA that signed it`,
      fix: 'keep it at most the CA\'s, such as 365d',
    });
  }

  const version = imageTagVersion(spec.etcd.image);
  if (version && olderThan(version, KUBEADM_MIN_ETCD)) {
    warnings.push({
      path: label('etcd.image'),
      message: `etcd ${version.join('.')} is older than ${KUBEADM_MIN_ETCD.join('.')}, kubeadm's minimum for an external etcd`,
      fix: 'kind skips the kubeadm check, so `etcd-lab kind` still runs, but kubeadm does not support it; use gcr.io/etcd-development/etcd:v3.5.33 or newer for KIND',
    });
  }

  // HAProxy 3.0 and 3.1 leave a connection frozen when the server it is being made to is marked
  // down (clients wait out their own connect deadline: gRPC's is 20 s); docs/kind.md has the evidence.
  const haproxyVersion = /:v?(\d+)\.(\d+)/.exec(spec.haproxy.image)?.slice(1, 3).map(Number);
  if (haproxyVersion && olderThan(haproxyVersion, HAPROXY_MIN)) {
    warnings.push({
      path: label('haproxy.image'),
      message: `HAProxy ${haproxyVersion.join('.')} can freeze a client's new connection when the leader dies (gRPC clients such as Kubernetes' API server then wait 20 s)`,
      fix: `use haproxy:${HAPROXY_MIN.join('.')}-alpine or newer`,
    });
  }
  // leastconn on HAProxy 3.2 queues a new connection while only backup servers (followers, during an
  // election) may take it, and drops it when `timeout queue` ends: its client backs off.
  if (spec.haproxy.balance === 'leastconn') {
    warnings.push({
      path: label('haproxy.balance'),
      message: 'leastconn makes HAProxy 3.2 queue new connections during an election (only backup servers are left) and drop them after 200 ms, so clients reconnect only after their backoff',
      fix: 'use roundrobin (the default): the leader route has one server at a time anyway',
    });
  }

  return { problems, warnings };
}

/** The oldest HAProxy the lab's generated configuration is safe on (docs/kind.md#why-the-api-server-stalled). */
const HAPROXY_MIN = [3, 2] as const;
