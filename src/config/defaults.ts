import { API_VERSION, type LabSpec } from './types.js';

/**
 * Every default in one place. Production-like where it matters:
 * etcd's own heartbeat/election defaults, compaction on (kube-apiserver also compacts, but a
 * lab used without Kubernetes would otherwise grow until its quota alarm), the 2 GiB default quota.
 */
export const DEFAULTS: LabSpec = {
  apiVersion: API_VERSION,
  name: 'etcd-lab',
  members: 3,
  // Private (RFC 1918) and outside Docker's default address pools (172.17-31.x, 192.168.x).
  network: { subnet: '10.79.0.0/24' },
  etcd: {
    // At least kubeadm's minimum external etcd, 3.5.24 (its preflight refuses older ones).
    image: 'gcr.io/etcd-development/etcd:v3.5.33',
    heartbeatIntervalMs: 100,
    electionTimeoutMs: 1000,
    autoCompaction: { mode: 'periodic', retention: '1h' },
    quotaBackendBytes: 2 * 1024 ** 3,
    snapshotCount: 10000,
  },
  haproxy: {
    image: 'haproxy:3.2-alpine',
    bindAddress: '127.0.0.1',
    clientPort: 2379,
    statsPort: 8404,
    // The leader route has one server at a time; during an election the followers take new
    // connections in turn. (leastconn on HAProxy 3.2 queues them then: see validate.ts.)
    balance: 'roundrobin',
    healthCheck: { intervalMs: 500, timeoutMs: 400, rise: 2, fall: 2 },
  },
  kind: { name: 'etcd-lab', nodeImage: '', endpoint: 'auto', workers: 0 },
  tls: { enabled: false, caValidityMs: 3650 * 86_400_000, certValidityMs: 365 * 86_400_000 },
};

/**
 * How far `snapshot restore` moves the revision past the snapshot's: past any revision a client of
 * the lab can have seen (the figure etcd's recovery guide gives for Kubernetes).
 */
export const DEFAULT_BUMP_REVISION = 1_000_000_000;

/** `etcd-lab loss` without --percent: enough to slow raft down without silencing it. */
export const DEFAULT_LOSS_PERCENT = 30;

/** `etcd-lab delay` without --ms: a tenth of the default election timeout, each way. */
export const DEFAULT_DELAY_MS = 100;
