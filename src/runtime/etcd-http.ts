// etcd's own HTTP API (the gRPC gateway and /health), with a deadline on every call and no
// client-side circuit breaker, so recovery is seen as soon as it happens.
import https from 'node:https';

export interface MemberStatus {
  memberId: string;
  leader: string;
  raftTerm: number;
  raftIndex: number;
  dbSize: number;
  version: string;
  errors: string[];
}

export interface Health {
  healthy: boolean;
  reason: string;
}

/** What a client needs to reach an etcd over TLS with a client certificate (PEM text). */
export interface ClientTls {
  ca: string;
  cert: string;
  key: string;
}

/** An etcd client URL, and in TLS mode the client certificate to present there. */
export type Endpoint = string | { url: string; tls?: ClientTls };

export function endpointUrl(endpoint: Endpoint): string {
  return typeof endpoint === 'string' ? endpoint : endpoint.url;
}

/** One keep-alive agent per TLS identity, as fetch keeps one pool: a handshake per request would skew every figure. */
const agents = new Map<string, https.Agent>();
function agentFor(tls: ClientTls): https.Agent {
  const id = `${tls.ca}\n${tls.cert}`;
  let agent = agents.get(id);
  if (!agent) {
    agent = new https.Agent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key });
    agents.set(id, agent);
  }
  return agent;
}

/** HTTPS with a client certificate and a deadline (fetch cannot present one without another package). */
function httpsRequest(url: string, init: { method?: string; body?: string; headers?: Record<string, string> }, tls: ClientTls, timeoutMs: number) {
  return new Promise<{ status: number; ok: boolean; text: string }>((resolve, reject) => {
    const request = https.request(url, { method: init.method ?? 'GET', headers: init.headers, agent: agentFor(tls) }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, ok: (response.statusCode ?? 0) < 300, text }));
      response.on('error', reject);
    });
    const timer = setTimeout(() => request.destroy(Object.assign(new Error('deadline exceeded'), { name: 'TimeoutError' })), timeoutMs);
    request.on('close', () => clearTimeout(timer));
    request.on('error', reject);
    request.end(init.body);
  });
}

/**
 * A request with a deadline. AbortSignal.timeout's timer does not keep Node's event loop alive, so a
 * request that hangs on a half-open connection could end the process mid-wait; this timer does.
 */
export async function fetchWithDeadline(
  endpoint: Endpoint,
  init: { method?: string; body?: string; headers?: Record<string, string> },
  timeoutMs: number,
  path = '',
): Promise<{ status: number; ok: boolean; text: string }> {
  const url = `${endpointUrl(endpoint)}${path}`;
  if (typeof endpoint !== 'string' && endpoint.tls) return httpsRequest(url, init, endpoint.tls, timeoutMs);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException('deadline exceeded', 'TimeoutError')), timeoutMs);
  try {
    const response = await fetch(url, { ...init, signal: controller.signal });
    return { status: response.status, ok: response.ok, text: await response.text() };
  } finally {
    clearTimeout(timer);
  }
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

async function post<T>(endpoint: Endpoint, path: string, body: unknown, timeoutMs: number): Promise<T> {
  const response = await fetchWithDeadline(endpoint, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }, timeoutMs, path);
  const text = response.text;
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${text.trim().slice(0, 200)}`);
  return JSON.parse(text) as T;
}

/** GET /health: 200 only with a leader and a successful linearizable read. */
export async function memberHealth(endpoint: Endpoint, timeoutMs = 1000): Promise<Health> {
  try {
    const response = await fetchWithDeadline(endpoint, {}, timeoutMs, '/health');
    const text = response.text;
    let reason = '';
    try {
      reason = (JSON.parse(text) as { reason?: string }).reason ?? '';
    } catch {
      reason = text.trim();
    }
    return { healthy: response.status === 200, reason: response.status === 200 ? '' : reason || `HTTP ${response.status}` };
  } catch (error) {
    return { healthy: false, reason: describeFetchError(error) };
  }
}

export function describeFetchError(error: unknown): string {
  const e = error as Error & { code?: string; cause?: { code?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'no answer in time';
  return e.cause?.code ?? e.code ?? e.message;
}

/** POST /v3/maintenance/status. int64 fields arrive as decimal strings. */
export async function memberStatus(endpoint: Endpoint, timeoutMs = 1000): Promise<MemberStatus> {
  const s = await post<{
    header?: { member_id?: string };
    leader?: string;
    raftTerm?: string;
    raftIndex?: string;
    dbSize?: string;
    version?: string;
    errors?: string[];
  }>(endpoint, '/v3/maintenance/status', {}, timeoutMs);
  return {
    memberId: s.header?.member_id ?? '0',
    leader: s.leader ?? '0',
    raftTerm: Number(s.raftTerm ?? 0),
    raftIndex: Number(s.raftIndex ?? 0),
    dbSize: Number(s.dbSize ?? 0),
    version: s.version ?? '',
    errors: s.errors ?? [],
  };
}

export async function putKey(endpoint: Endpoint, key: string, value: string, timeoutMs = 2000): Promise<{ revision: number }> {
  const r = await post<{ header?: { revision?: string } }>(endpoint, '/v3/kv/put', { key: b64(key), value: b64(value) }, timeoutMs);
  return { revision: Number(r.header?.revision ?? 0) };
}

/** Linearizable by default; `serializable` reads the member's local copy (works without quorum). */
export async function getKey(
  endpoint: Endpoint,
  key: string,
  opts: { timeoutMs?: number; serializable?: boolean } = {},
): Promise<string | undefined> {
  const r = await post<{ kvs?: { value?: string }[] }>(
    endpoint,
    '/v3/kv/range',
    { key: b64(key), serializable: opts.serializable ?? false },
    opts.timeoutMs ?? 2000,
  );
  const kv = r.kvs?.[0];
  return kv ? unb64(kv.value ?? '') : undefined;
}

export async function deleteKey(endpoint: Endpoint, key: string, timeoutMs = 2000): Promise<void> {
  await post(endpoint, '/v3/kv/deleterange', { key: b64(key) }, timeoutMs);
}

function rangeEnd(prefix: string): string {
  // The prefix with its last byte incremented: every key that starts with prefix sorts below it.
  const end = Buffer.from(prefix, 'utf8');
  end[end.length - 1] = end[end.length - 1]! + 1;
  return end.toString('base64');
}

/** How many keys start with `prefix`. */
export async function countPrefix(endpoint: Endpoint, prefix: string, timeoutMs = 2000): Promise<number> {
  const r = await post<{ count?: string }>(endpoint, '/v3/kv/range', { key: b64(prefix), range_end: rangeEnd(prefix), count_only: true }, timeoutMs);
  return Number(r.count ?? 0);
}

/** Deletes every key that starts with `prefix`; returns how many went. */
export async function deletePrefix(endpoint: Endpoint, prefix: string, timeoutMs = 5000): Promise<number> {
  const r = await post<{ deleted?: string }>(endpoint, '/v3/kv/deleterange', { key: b64(prefix), range_end: rangeEnd(prefix) }, timeoutMs);
  return Number(r.deleted ?? 0);
}

/** Every key under a prefix with its value, in one linearizable (or serializable) range read. */
export async function getPrefix(
  endpoint: Endpoint,
  prefix: string,
  opts: { timeoutMs?: number; serializable?: boolean } = {},
): Promise<{ values: Map<string, string>; revision: number }> {
  const r = await post<{ header?: { revision?: string }; kvs?: { key: string; value?: string }[] }>(
    endpoint,
    '/v3/kv/range',
    { key: b64(prefix), range_end: rangeEnd(prefix), serializable: opts.serializable ?? false },
    opts.timeoutMs ?? 5000,
  );
  return {
    values: new Map((r.kvs ?? []).map((kv) => [unb64(kv.key), unb64(kv.value ?? '')])),
    revision: Number(r.header?.revision ?? 0),
  };
}
