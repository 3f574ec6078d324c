// Renders a LabStatus for people: the table `etcdctl endpoint status -w table` shows, plus
// container and load-balancer state, then the quorum line.
import chalk, { Chalk } from 'chalk';
import type { LabStatus } from '../runtime/status.js';
import { humanBytes } from './bytes.js';
import { tableLines } from './table.js';

/** Where HAProxy sends clients: the leader, or, while none leads, every member that follows one. */
function routes(to: string[] | undefined): string {
  if (!to) return '';
  return to.length === 0 ? ', no leader to route to: every member that follows one' : `, routes to ${to.join(' and ')}`;
}

export function formatStatus(s: LabStatus, useColour = Boolean(process.stdout.isTTY)): string {
  const c = useColour ? chalk : new Chalk({ level: 0 });
  const header = ['MEMBER', 'ADDRESS', 'CONTAINER', 'HEALTH', 'LEADER', 'TERM', 'INDEX', 'DB SIZE', 'VERSION', 'HAPROXY', 'ALARMS'];
  const rows = s.members.map((m) => [
    m.name,
    m.address,
    [m.state, ...(m.partitioned ? ['cut off'] : []), ...(m.impaired ? [m.impaired] : [])].join(', '),
    m.healthy ? 'healthy' : `unhealthy: ${m.reason}`,
    m.isLeader ? 'leader' : '',
    m.raftTerm === undefined ? '-' : String(m.raftTerm),
    m.raftIndex === undefined ? '-' : String(m.raftIndex),
    humanBytes(m.dbSize),
    m.version ?? '-',
    m.backend,
    m.alarms.join(',') || '-',
  ]);
  const body = tableLines([header, ...rows], (ri, ci, cell) => {
    if (ri === 0) return c.bold(cell);
    if (ci === 3 || ci === 9) return /healthy|UP/.test(cell) && !/unhealthy/.test(cell) ? c.green(cell) : c.red(cell);
    if (ci === 4 && cell.trim()) return c.cyan(cell);
    if (ci === 10 && cell.trim() !== '-') return c.red(cell);
    return cell;
  });
  const lines = [
    `lab ${c.bold(s.name)}: ${s.quorum.held && s.alarms.length === 0 ? c.green(s.summary) : c.red(s.summary)}`,
    ...body,
    `etcd endpoint  ${s.clientEndpoint.replace(/^https?:\/\//, '')} (HAProxy ${s.haproxy.state}${routes(s.haproxy.routesTo)})${s.clusterVersion ? `; cluster version ${s.clusterVersion}` : ''}`,
    `stats page     ${s.statsUrl}${s.haproxy.statsError ? c.yellow(`  (${s.haproxy.statsError})`) : ''}`,
  ];
  if (s.haproxy.config === 'stale') lines.push(c.yellow('HAProxy        runs an older haproxy.cfg than generated/ holds: `etcd-lab up` reloads it (no connection dropped)'));
  if (s.tls) {
    const e = s.tls.earliest;
    const days = e ? Math.floor((Date.parse(e.notAfter) - Date.now()) / 86_400_000) : undefined;
    const when = e ? `first to expire: ${e.name}, ${e.notAfter} (${days} days; \`etcd-lab up\` or \`generate\` re-issues certificates close to expiry)` : 'no certificates found';
    lines.push(`TLS            client certificates required; ${days !== undefined && days < 30 ? c.yellow(when) : when}`);
  }
  return lines.join('\n');
}
