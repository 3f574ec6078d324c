import { CONFIG_HASH_HEADER, leadingServerName } from '../render/haproxy.js';
import { fetchWithDeadline } from './etcd-http.js';

// HAProxy's stats CSV: which backends HAProxy itself considers UP.

export interface BackendServer {
  name: string;
  /** UP, DOWN, "UP 1/2" (going down), "DOWN 1/2" (going up), MAINT, no check… */
  status: string;
  checkStatus: string;
  up: boolean;
}

export function parseStatsCsv(csv: string, backend = 'etcd_members'): BackendServer[] {
  const lines = csv.split('\n').filter((l) => l.trim() !== '');
  const header = lines.shift()?.replace(/^#\s*/, '').split(',') ?? [];
  const col = (name: string) => header.indexOf(name);
  const [px, sv, status, check] = [col('pxname'), col('svname'), col('status'), col('check_status')];
  if (px < 0 || sv < 0 || status < 0) throw new Error('not an HAProxy stats CSV (no pxname/svname/status columns)');
  return lines
    .map((l) => l.split(','))
    .filter((f) => f[px] === backend && f[sv] !== 'BACKEND' && f[sv] !== 'FRONTEND')
    .map((f) => ({ name: f[sv]!, status: f[status]!, checkStatus: check >= 0 ? (f[check] ?? '') : '', up: f[status] === 'UP' }));
}

/**
 * The lab's HAProxy lists each member twice: under its own name while it follows a leader, and
 * under its leading name (render/haproxy.ts) while it leads, which is where clients are sent then.
 */
export function splitLeaderRoutes(servers: BackendServer[]): { backends: BackendServer[]; leaderRoutes?: string[] } {
  const byName = new Map(servers.map((s) => [s.name, s]));
  const routeOf = (s: BackendServer) => byName.get(leadingServerName(s.name));
  const routes = new Set(servers.map(routeOf).filter((r) => r !== undefined));
  const backends = servers.filter((s) => !routes.has(s));
  // An export's haproxy.cfg (or an older lab's) has no leader routes at all.
  if (routes.size === 0) return { backends };
  return { backends, leaderRoutes: backends.filter((s) => routeOf(s)?.up).map((s) => s.name) };
}

/** The stats CSV's backends, the members HAProxy routes to as leaders, and which haproxy.cfg it runs (the header the file sets), from one request. */
export async function fetchStats(
  statsUrl: string,
  credentials: { user: string; password: string },
  timeoutMs = 1000,
): Promise<{ backends: BackendServer[]; leaderRoutes?: string[]; configHash?: string }> {
  const auth = Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64');
  const response = await fetchWithDeadline(`${statsUrl};csv`, { headers: { authorization: `Basic ${auth}` } }, timeoutMs);
  if (response.status === 401) throw new Error('the stats page refused the credentials in generated/.env (was HAProxy started from another .env?)');
  if (!response.ok) throw new Error(`stats page: HTTP ${response.status}`);
  const header = response.headers[CONFIG_HASH_HEADER];
  return { ...splitLeaderRoutes(parseStatsCsv(response.text)), ...(typeof header === 'string' ? { configHash: header } : {}) };
}
