// The lab spec: what a team commits as etcd-lab.yaml, fully filled in.
// Durations are milliseconds and sizes bytes here; etcd-lab.yaml may write "100ms" or "2GiB".

export const API_VERSION = 'etcd-lab/v1alpha1';

export const MEMBER_COUNTS = [1, 3, 5, 7] as const;
export const BALANCE_ALGORITHMS = ['leastconn', 'roundrobin', 'first', 'source'] as const;
export const COMPACTION_MODES = ['periodic', 'revision'] as const;
export const KIND_ENDPOINT_MODES = ['auto', 'host', 'network'] as const;

export type BalanceAlgorithm = (typeof BALANCE_ALGORITHMS)[number];
export type CompactionMode = (typeof COMPACTION_MODES)[number];
export type KindEndpointMode = (typeof KIND_ENDPOINT_MODES)[number];

export interface EtcdSpec {
  image: string;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  autoCompaction: {
    mode: CompactionMode;
    /** "1h" style for periodic, a revision count for revision mode: passed to etcd as written. */
    retention: string;
  };
  quotaBackendBytes: number;
  snapshotCount: number;
}

export interface HealthCheckSpec {
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
}

export interface HaproxySpec {
  image: string;
  /** Host address the published ports bind to. */
  bindAddress: string;
  /** Host port of the etcd client front end. */
  clientPort: number;
  /** Host port of the stats page (and /metrics). */
  statsPort: number;
  balance: BalanceAlgorithm;
  healthCheck: HealthCheckSpec;
}

export interface KindSpec {
  /** KIND cluster name. */
  name: string;
  /** kindest/node image; empty means the kind binary's own default. */
  nodeImage: string;
  /** How KIND nodes reach the lab: see the README's KIND section. */
  endpoint: KindEndpointMode;
  workers: number;
}

export interface TlsSpec {
  /** Client and peer TLS with client-certificate auth on every member; HAProxy passes TLS through. */
  enabled: boolean;
  /** Lifetime of the lab CA (kubeadm: 10 years). */
  caValidityMs: number;
  /** Lifetime of member and client certificates (kubeadm: 1 year); re-issued when close to expiry. */
  certValidityMs: number;
}

export interface LabSpec {
  apiVersion: typeof API_VERSION;
  name: string;
  members: number;
  network: { subnet: string };
  etcd: EtcdSpec;
  haproxy: HaproxySpec;
  kind: KindSpec;
  tls: TlsSpec;
}
