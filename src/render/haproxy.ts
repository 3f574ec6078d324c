// spec → haproxy.cfg: the view is computed here so the EJS template only prints.
import { createHash } from 'node:crypto';
import { ETCD_CLIENT_PORT, ETCD_METRICS_PORT, HAPROXY_CLIENT_PORT, HAPROXY_STATS_PORT, labTopology } from '../config/topology.js';
import type { LabSpec } from '../config/types.js';
import { basename } from 'node:path';
import { generatedHeader } from './header.js';
import { CLIENTS, HAPROXY_PKI_MOUNT } from './pki.js';
import { renderTemplate } from './templates.js';

/** In a folder of its own, mounted whole: a file replaced by rename reaches HAProxy, which reloads it in place. */
export const HAPROXY_DIR = 'haproxy';

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
  const view = haproxyViewParts(spec, where);
  return { ...view, checkOptions: checkOptions(view) };
}

function haproxyViewParts(spec: LabSpec, where?: HaproxyServers) {
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
      // How soon after an election HAProxy routes to the new leader (its leader route is DOWN until then).
      leaderDownIntervalMs: LEADER_DOWN_INTERVAL_MS,
    },
    tls: spec.tls.enabled,
    // The leader each member follows, from its status on the client port; over TLS with HAProxy's
    // own check certificate. The exports have no such certificate: /health on the metrics port.
    statusCheck: !where,
    checkTls: spec.tls.enabled && !where ? { ca: `${HAPROXY_PKI_MOUNT}/ca.crt`, crt: `${HAPROXY_PKI_MOUNT}/${basename(CLIENTS.haproxyCheck)}.crt` } : undefined,
    // Clients' TLS passes through to the members untouched (client-certificate auth is end to end).
    // An export's TLS HAProxy asks /health of each member's plain-HTTP metrics listener instead.
    checkPort: spec.tls.enabled && where ? ETCD_METRICS_PORT : undefined,
    dns: where?.dns ?? false,
    statsAuth: where?.statsAuth ?? '${ETCD_LAB_STATS_USER}:${ETCD_LAB_STATS_PASSWORD}',
    statsAuthNote: where?.statsAuth ? 'This file is a Swarm secret: it holds the stats credentials itself.' : 'Credentials from the environment (the generated, gitignored .env), never from this file.',
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    hardStopAfterMs: HARD_STOP_AFTER_MS,
    servers: (where?.servers ?? labTopology(spec).members).map((m) => ({ name: m.name, leadingName: leadingServerName(m.name), address: m.address, port: ETCD_CLIENT_PORT })),
  };
}

/** `check` and where it goes: another port, TLS with HAProxy's own certificate, addresses from Docker's DNS. */
function checkOptions(view: { checkPort?: number; checkTls?: { ca: string; crt: string }; dns: boolean }): string {
  const options = ['check'];
  if (view.checkPort) options.push(`port ${view.checkPort}`);
  if (view.checkTls) options.push(`check-ssl verify required ca-file ${view.checkTls.ca} crt ${view.checkTls.crt}`);
  if (view.dns) options.push('resolvers docker init-addr libc,none');
  return options.join(' ');
}

/** The lab's HAProxy routes to a member under this name while it leads (under its own name while it follows a leader). */
export function leadingServerName(member: string): string {
  return `${member}-leading`;
}

/** 100 ms: with 3–7 members, 10–70 status requests a second, each answered from memory. */
const LEADER_DOWN_INTERVAL_MS = 100;

/** How long the process a reload replaces may keep its connections (and a stop its watches). */
export const HARD_STOP_AFTER_MS = 2000;

/** A connect on the lab bridge takes well under a millisecond; this leaves room for a busy host. */
const CONNECT_TIMEOUT_MS = 200;

/** The header on HAProxy's stats page that says which haproxy.cfg it runs (see configHashOf). */
export const CONFIG_HASH_HEADER = 'x-etcd-lab-config';

/** A haproxy.cfg's own hash: of its text with the hash itself left blank. */
export function configHashOf(cfg: string): string {
  const blank = cfg.replace(/(set-header X-Etcd-Lab-Config )"[0-9a-f]*"/, '$1""');
  return createHash('sha256').update(blank).digest('hex').slice(0, 16);
}

export function renderHaproxyCfg(spec: LabSpec, where?: HaproxyServers): string {
  const blank = renderTemplate('haproxy.cfg.ejs', { ...haproxyView(spec, where), configHash: '' });
  return blank.replace('set-header X-Etcd-Lab-Config ""', `set-header X-Etcd-Lab-Config "${configHashOf(blank)}"`);
}
