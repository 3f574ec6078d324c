// spec → haproxy.cfg: the view is computed here so the EJS template only prints.
import { ETCD_CLIENT_PORT, ETCD_METRICS_PORT, HAPROXY_CLIENT_PORT, HAPROXY_STATS_PORT, labTopology } from '../config/topology.js';
import type { LabSpec } from '../config/types.js';
import { generatedHeader } from './header.js';
import { renderTemplate } from './templates.js';

export function haproxyView(spec: LabSpec) {
  const { healthCheck } = spec.haproxy;
  return {
    header: generatedHeader('#'),
    clientPort: HAPROXY_CLIENT_PORT,
    statsPort: HAPROXY_STATS_PORT,
    balance: spec.haproxy.balance,
    bindNote: spec.haproxy.bindAddress === '127.0.0.1' ? 'loopback by default' : `${spec.haproxy.bindAddress} by default`,
    check: {
      ...healthCheck,
      // Checks run this much faster while a server is changing state, so it is marked sooner.
      fastIntervalMs: Math.max(100, Math.floor(healthCheck.intervalMs / 2)),
    },
    tls: spec.tls.enabled,
    // TLS mode: clients' TLS passes through to the members untouched (client-certificate auth is
    // end to end), and /health is asked of each member's plain-HTTP metrics listener instead.
    checkPort: spec.tls.enabled ? ETCD_METRICS_PORT : undefined,
    servers: labTopology(spec).members.map((m) => ({ name: m.name, address: m.address, port: ETCD_CLIENT_PORT })),
  };
}

export function renderHaproxyCfg(spec: LabSpec): string {
  return renderTemplate('haproxy.cfg.ejs', haproxyView(spec));
}
