// etcd's own HTTP API (the gRPC gateway and /health), with a deadline on every call and no
// client-side circuit breaker, so recovery is seen as soon as it happens.
import http from 'node:http';
import https from 'node:https';

export interface MemberStatus {
  memberId: string;
  leader: string;
  raftTerm: number;
  raftIndex: number;
  /** How far it has applied what raft committed (etcd 3.4+; raftIndex where it does not say). */
  raftAppliedIndex: number;
  /** A learner: a new member not yet promoted to vote. */
  isLearner: boolean;
  dbSize: number;
  /** Bytes the keys really use: the rest of dbSize is free pages a defragmentation gives back. */
  dbSizeInUse: number;
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

/**
 * One keep-alive agent per scheme and TLS identity, as fetch keeps one pool: a connection (and a TLS
 * handshake) per request would skew every figure. node:http(s) rather than fetch, because fetch
 * cannot present a client certificate, and one client for both modes keeps their figures comparable.
 */
const agents = new Map<string, http.Agent>();
function agentFor(tls: ClientTls | undefined): http.Agent {
  const id = tls ? `${tls.ca}\n${tls.cert}` : 'plain';
  let agent = agents.get(id);
  if (!agent) {
    agent = tls ? new https.Agent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key }) : new http.Agent({ keepAlive: true });
    agents.set(id, agent);
  }
  return agent;
}

export interface RequestInit {
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  /**
   * Not safe to send twice (a put, a delete, a transaction): never retried. A reset on a kept-alive
   * connection does not prove the request went nowhere — HAProxy closes its clients' sessions when
   * the leader changes, after forwarding what they sent — and a put sent again is applied twice.
   */
  once?: boolean;
}

/**
 * A request with a deadline that keeps Node's event loop alive (AbortSignal.timeout's timer does not,
 * so a request hanging on a half-open connection could end the process mid-wait). A kept-alive
 * connection the server closed meanwhile (HAProxy restarted) fails with a reset: a request safe to
 * send again is retried once on a fresh connection, as Node's documentation advises, after the other
 * idle connections (to the same server, dead alike) are dropped. One that is not (`once`) is not.
 */
export interface Response {
  status: number;
  ok: boolean;
  text: string;
  headers: http.IncomingHttpHeaders;
}

function request(url: string, init: RequestInit, tls: ClientTls | undefined, timeoutMs: number, retried = false): Promise<Response> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const send = url.startsWith('https:') ? https.request : http.request;
    const agent = agentFor(tls);
    // A length, always: Node sends a DELETE's body neither chunked nor counted, and the server reads it as the next request.
    const headers = init.body === undefined ? init.headers : { ...init.headers, 'content-length': String(Buffer.byteLength(init.body)) };
    const req = send(url, { method: init.method ?? 'GET', headers, agent }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, ok: (response.statusCode ?? 0) >= 200 && (response.statusCode ?? 0) < 300, text, headers: response.headers }));
      response.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(Object.assign(new Error('deadline exceeded'), { name: 'TimeoutError' })), timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('error', (error: NodeJS.ErrnoException) => {
      const left = timeoutMs - (Date.now() - started);
      if (!retried && !init.once && req.reusedSocket && error.code === 'ECONNRESET' && left > 0) {
        clearTimeout(timer);
        // The other idle connections went to the same server and died with it: retry on a new one.
        for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
        // Within the same deadline: the caller's timing stays what it asked for.
        resolve(request(url, init, tls, left, true));
      } else reject(Object.assign(error, { url })); // which member (or HAProxy) did not answer
    });
    req.end(init.body);
  });
}

/** `endpoint` + `path`, with a deadline; in TLS mode presenting the endpoint's client certificate. */
export function fetchWithDeadline(endpoint: Endpoint, init: RequestInit, timeoutMs: number, path = ''): Promise<Response> {
  return request(`${endpointUrl(endpoint)}${path}`, init, typeof endpoint === 'string' ? undefined : endpoint.tls, timeoutMs);
}

export const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
export const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

/** A POST to the gRPC gateway with a JSON body and answer; a non-2xx answer throws with etcd's words. */
export async function post<T>(endpoint: Endpoint, path: string, body: unknown, timeoutMs: number, opts: { once?: boolean } = {}): Promise<T> {
  const response = await fetchWithDeadline(endpoint, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, once: opts.once }, timeoutMs, path);
  const text = response.text;
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${text.trim().slice(0, 200)}`);
  return JSON.parse(text) as T;
}

/** GET /health: 200 only with a leader and a successful linearizable read. */
export async function memberHealth(endpoint: Endpoint, timeoutMs = 1000, opts: { excludeNoSpace?: boolean } = {}): Promise<Health> {
  try {
    // exclude=NOSPACE: serving (reads, deletes, compaction) although the space quota is reached (etcd 3.5+).
    const response = await fetchWithDeadline(endpoint, {}, timeoutMs, opts.excludeNoSpace ? '/health?exclude=NOSPACE' : '/health');
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
  const e = error as Error & { code?: string };
  if (e.name === 'TimeoutError') return 'no answer in time';
  if (e.code === 'ECONNREFUSED') return 'connection refused';
  if (e.code === 'ECONNRESET') return 'connection reset';
  return e.code ?? e.message;
}

/** The request never reached a server: asking again, or another member, cannot apply it twice. */
export function neverSent(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EADDRNOTAVAIL';
}

/**
 * A failure that says nothing about the request itself, only about the moment: the member went away,
 * did not answer in time, or etcd was between leaders ("leader changed", "no leader", "request timed
 * out", "unhealthy cluster" just after a membership change). Asking again, or another member, may work.
 */
export function isTransient(error: unknown): boolean {
  const e = error as Error & { code?: string };
  if (e.name === 'TimeoutError' || neverSent(error)) return true;
  if (['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED'].includes(e.code ?? '')) return true;
  return /socket hang up|leader changed|no leader|request timed out|timed out waiting for read index|unhealthy cluster|not enough started members|server stopped|too many requests|HTTP 503/i.test(e.message ?? '');
}

/** POST /v3/maintenance/status. int64 fields arrive as decimal strings. */
export async function memberStatus(endpoint: Endpoint, timeoutMs = 1000): Promise<MemberStatus> {
  const s = await post<{
    header?: { member_id?: string };
    leader?: string;
    raftTerm?: string;
    raftIndex?: string;
    raftAppliedIndex?: string;
    isLearner?: boolean;
    dbSize?: string;
    dbSizeInUse?: string;
    version?: string;
    errors?: string[];
  }>(endpoint, '/v3/maintenance/status', {}, timeoutMs);
  return {
    memberId: s.header?.member_id ?? '0',
    leader: s.leader ?? '0',
    raftTerm: Number(s.raftTerm ?? 0),
    raftIndex: Number(s.raftIndex ?? 0),
    raftAppliedIndex: Number(s.raftAppliedIndex ?? s.raftIndex ?? 0),
    isLearner: s.isLearner === true,
    dbSize: Number(s.dbSize ?? 0),
    dbSizeInUse: Number(s.dbSizeInUse ?? s.dbSize ?? 0),
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

export function rangeEnd(prefix: string): string {
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

/** The cluster's current revision (the header of a linearizable read). */
export async function currentRevision(endpoint: Endpoint, timeoutMs = 2000): Promise<number> {
  const r = await post<{ header?: { revision?: string } }>(endpoint, '/v3/kv/range', { key: b64('etcd-lab/revision'), count_only: true }, timeoutMs);
  return Number(r.header?.revision ?? 0);
}

/** Compacts the key space up to `revision` (physical: returns once the member has removed it). */
export async function compact(endpoint: Endpoint, revision: number, timeoutMs = 30_000): Promise<void> {
  await post(endpoint, '/v3/kv/compaction', { revision: String(revision), physical: true }, timeoutMs);
}

/** Defragments the one member behind `endpoint` (it serves nothing meanwhile). */
export async function defragment(endpoint: Endpoint, timeoutMs = 120_000): Promise<void> {
  await post(endpoint, '/v3/maintenance/defragment', {}, timeoutMs);
}

export type AlarmType = 'NOSPACE' | 'CORRUPT';
export interface Alarm {
  /** Decimal, as MemberStatus.memberId. */
  memberId: string;
  alarm: AlarmType;
}

/** The cluster's active alarms (goes through raft: needs quorum). */
export async function listAlarms(endpoint: Endpoint, timeoutMs = 2000): Promise<Alarm[]> {
  const r = await post<{ alarms?: { memberID?: string; alarm?: string }[] }>(endpoint, '/v3/maintenance/alarm', { action: 'GET' }, timeoutMs);
  return (r.alarms ?? []).map((a) => ({ memberId: a.memberID ?? '0', alarm: (a.alarm ?? 'NONE') as AlarmType }));
}

/** Clears one alarm (etcd raises it again at once if its cause remains). */
export async function disarmAlarm(endpoint: Endpoint, alarm: Alarm, timeoutMs = 2000): Promise<void> {
  await post(endpoint, '/v3/maintenance/alarm', { action: 'DEACTIVATE', memberID: alarm.memberId, alarm: alarm.alarm }, timeoutMs);
}

/** The cluster's alarms as a member lists them in its status ("memberID:… alarm:NOSPACE"): readable without quorum. */
export function alarmsIn(status: MemberStatus): Alarm[] {
  return status.errors.flatMap((e) => {
    const m = /memberID:\s*(\d+)\s+alarm:\s*(NOSPACE|CORRUPT)/.exec(e);
    return m ? [{ memberId: m[1]!, alarm: m[2] as AlarmType }] : [];
  });
}

/** A member as etcd's membership API reports it. IDs are decimal strings, as in MemberStatus. */
export interface ClusterMember {
  id: string;
  /** Empty until the member has started and published itself. */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

type RawMember = { ID?: string; name?: string; peerURLs?: string[]; clientURLs?: string[]; isLearner?: boolean };
const toMember = (m: RawMember): ClusterMember => ({
  id: m.ID ?? '0',
  name: m.name ?? '',
  peerUrls: m.peerURLs ?? [],
  clientUrls: m.clientURLs ?? [],
  isLearner: m.isLearner ?? false,
});

/** The membership as the cluster has committed it (linearizable: needs quorum). */
export async function listMembers(endpoint: Endpoint, timeoutMs = 3000): Promise<ClusterMember[]> {
  const r = await post<{ members?: RawMember[] }>(endpoint, '/v3/cluster/member/list', { linearizable: true }, timeoutMs);
  return (r.members ?? []).map(toMember);
}

export async function addMember(endpoint: Endpoint, peerUrl: string, opts: { learner?: boolean; timeoutMs?: number } = {}): Promise<{ added: ClusterMember; members: ClusterMember[] }> {
  const r = await post<{ member?: RawMember; members?: RawMember[] }>(endpoint, '/v3/cluster/member/add', { peerURLs: [peerUrl], isLearner: opts.learner ?? false }, opts.timeoutMs ?? 5000);
  return { added: toMember(r.member ?? {}), members: (r.members ?? []).map(toMember) };
}

export async function removeMember(endpoint: Endpoint, id: string, timeoutMs = 5000): Promise<void> {
  await post(endpoint, '/v3/cluster/member/remove', { ID: id }, timeoutMs);
}

/** Makes a learner a voting member; etcd refuses until the learner has caught up with the leader. */
export async function promoteMember(endpoint: Endpoint, id: string, timeoutMs = 5000): Promise<void> {
  await post(endpoint, '/v3/cluster/member/promote', { ID: id }, timeoutMs);
}

/** Hands leadership to `targetId`; must be sent to the current leader. */
export async function moveLeader(leaderEndpoint: Endpoint, targetId: string, timeoutMs = 10_000): Promise<void> {
  await post(leaderEndpoint, '/v3/maintenance/transfer-leadership', { targetID: targetId }, timeoutMs);
}

/** GET /version: the member's server version and the cluster version the members agreed on. */
export async function versions(endpoint: Endpoint, timeoutMs = 1000): Promise<{ server: string; cluster: string }> {
  const response = await fetchWithDeadline(endpoint, {}, timeoutMs, '/version');
  if (!response.ok) throw new Error(`/version: HTTP ${response.status}`);
  const v = JSON.parse(response.text) as { etcdserver?: string; etcdcluster?: string };
  return { server: v.etcdserver ?? '', cluster: v.etcdcluster ?? '' };
}
