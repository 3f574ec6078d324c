// spec → haproxy.cfg: the view is computed here so the EJS template only prints.
import { ETCD_CLIENT_PORT, ETCD_METRICS_PORT, HAPROXY_CLIENT_PORT, HAPROXY_STATS_PORT, labTopology } from '../config/topology.js';
import type { LabSpec } from '../config/types.js';
import { generatedHeader } from './header.js';
import { renderTemplate } from './templates.js';

/** Where HAProxy finds the members: the lab's fixed addresses, or hosts' (export hosts). */
export interface HaproxyServers {
  servers: { name: string; address: string }[];
  header: string;
  /** Where the ports listen, for the comment on /metrics. */
  bindNote: string;
  /** Swarm: servers are service names, resolved through Docker's DNS as tasks come and go. */
  dns?: boolean;
  /** The stats credentials written out ("user:password"), where they cannot come from the environment. */
  statsAuth?: string;
}

export function haproxyView(spec: LabSpec, where?: HaproxyServers) {
  const { healthCheck } = spec.haproxy;
  return {
    header: where?.header ?? generatedHeader('#'),
    clientPort: HAPROXY_CLIENT_PORT,
    statsPort: HAPROXY_STATS_PORT,
    balance: spec.haproxy.balance,
    bindNote: where?.bindNote ?? (spec.haproxy.bindAddress === '127.0.0.1' ? 'loopback by default' : `${spec.haproxy.bindAddress} by default`),
    check: {
      ...healthCheck,
      // Checks run this much faster while a server is changing state, so it is marked sooner.
      fastIntervalMs: Math.max(100, Math.floor(healthCheck.intervalMs / 2)),
    },
    tls: spec.tls.enabled,
    // TLS mode: clients' TLS passes through to the members untouched (client-certificate auth is
    // end to end), and /health is asked of each member's plain-HTTP metrics listener instead.
    checkPort: spec.tls.enabled ? ETCD_METRICS_PORT : undefined,
    dns: where?.dns ?? false,
    statsAuth: where?.statsAuth ?? '${ETCD_LAB_STATS_USER}:${ETCD_LAB_STATS_PASSWORD}',
    statsAuthNote: where?.statsAuth ? 'This file is a Swarm secret: it holds the stats credentials itself.' : 'Credentials from the environment (the generated, gitignored .env), never from this file.',
    servers: (where?.servers ?? labTopology(spec).members).map((m) => ({ name: m.name, address: m.address, port: ETCD_CLIENT_PORT })),
  };
}

export function renderHaproxyCfg(spec: LabSpec, where?: HaproxyServers): string {
  return renderTemplate('haproxy.cfg.ejs', haproxyView(spec, where));
}
