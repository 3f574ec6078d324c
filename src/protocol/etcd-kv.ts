// The key-value calls `check`'s clients make, each answering with the revision etcd served it at
// (what the checker places it by), and a watch stream read as it arrives. Through the gRPC gateway,
// like the rest of etcd-lab: no client library, so no retry or failover happens behind our back.
import { b64, post, rangeEnd, unb64, type Endpoint } from './etcd-http.js';
import { streamLines } from './http-stream.js';
import type { Compare, Kv, TxnOp, WatchEvent } from '../checker/history.js';

interface RawHeader {
  header?: { revision?: string };
}
interface RawKv {
  key: string;
  value?: string;
  mod_revision?: string;
  create_revision?: string;
  version?: string;
  lease?: string;
}
const revisionOf = (r: RawHeader) => Number(r.header?.revision ?? 0);
/** Writes are sent once: a retry after a reset could apply them twice (see etcd-http.ts). */
const ONCE = { once: true };

export async function kvGet(endpoint: Endpoint, key: string, opts: { serializable?: boolean; revision?: number; timeoutMs: number }): Promise<{ revision: number; value?: string; modRevision?: number; createRevision?: number; version?: number; lease?: string }> {
  const r = await post<RawHeader & { kvs?: RawKv[] }>(endpoint, '/v3/kv/range', { key: b64(key), serializable: opts.serializable ?? false, revision: String(opts.revision ?? 0) }, opts.timeoutMs);
  const kv = r.kvs?.[0];
  if (!kv) return { revision: revisionOf(r) };
  const { key: _key, ...rest } = kvFrom(kv);
  return { revision: revisionOf(r), ...rest };
}

/** Every key under `prefix` with its value and mod_revision, in one linearizable read: now, or as of `revision`. */
export async function kvRange(endpoint: Endpoint, prefix: string, timeoutMs: number, revision = 0): Promise<{ revision: number; values: Record<string, { value: string; modRevision: number }> }> {
  const r = await post<RawHeader & { kvs?: RawKv[] }>(endpoint, '/v3/kv/range', { key: b64(prefix), range_end: rangeEnd(prefix), revision: String(revision) }, timeoutMs);
  return { revision: revisionOf(r), values: Object.fromEntries((r.kvs ?? []).map((kv) => [unb64(kv.key), { value: unb64(kv.value ?? ''), modRevision: Number(kv.mod_revision ?? 0), ...(kv.lease && kv.lease !== '0' ? { lease: kv.lease } : {}) }])) };
}

export async function kvPut(endpoint: Endpoint, key: string, value: string, timeoutMs: number, lease?: string): Promise<{ revision: number }> {
  return { revision: revisionOf(await post<RawHeader>(endpoint, '/v3/kv/put', { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) }, timeoutMs, ONCE)) };
}

export async function kvDelete(endpoint: Endpoint, key: string, timeoutMs: number): Promise<{ revision: number; deleted: number }> {
  const r = await post<RawHeader & { deleted?: string }>(endpoint, '/v3/kv/deleterange', { key: b64(key) }, timeoutMs, ONCE);
  return { revision: revisionOf(r), deleted: Number(r.deleted ?? 0) };
}

/** Puts `value` only if the key's mod_revision is `modRevision` (0: the key is absent, as etcd compares a missing key). */
export async function kvCompareAndSet(endpoint: Endpoint, key: string, modRevision: number, value: string, timeoutMs: number): Promise<{ revision: number; succeeded: boolean }> {
  const r = await post<RawHeader & { succeeded?: boolean }>(
    endpoint,
    '/v3/kv/txn',
    {
      compare: [{ key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: String(modRevision) }],
      success: [{ request_put: { key: b64(key), value: b64(value) } }],
    },
    timeoutMs,
    ONCE,
  );
  return { revision: revisionOf(r), succeeded: r.succeeded === true };
}

/** A transaction: `success` if every compare holds, else `failure`, at one revision; its gets' answers in order. */
export async function kvTxn(endpoint: Endpoint, txn: { compare?: Compare[]; success: TxnOp[]; failure?: TxnOp[] }, timeoutMs: number): Promise<{ revision: number; succeeded: boolean; reads: (Kv | null)[] }> {
  const target = { mod: 'MOD', create: 'CREATE', version: 'VERSION' } as const;
  const field = { mod: 'mod_revision', create: 'create_revision', version: 'version' } as const;
  const op = (o: TxnOp) =>
    o.op === 'put'
      ? { request_put: { key: b64(o.key), value: b64(o.value), ...(o.lease ? { lease: o.lease } : {}) } }
      : o.op === 'delete'
        ? { request_delete_range: { key: b64(o.key) } }
        : { request_range: { key: b64(o.key) } };
  const r = await post<RawHeader & { succeeded?: boolean; responses?: { response_range?: { kvs?: RawKv[] } }[] }>(
    endpoint,
    '/v3/kv/txn',
    {
      compare: (txn.compare ?? []).map((c) => ({ key: b64(c.key), target: target[c.target], result: 'EQUAL', [field[c.target]]: String(c.equals) })),
      success: txn.success.map(op),
      failure: (txn.failure ?? []).map(op),
    },
    timeoutMs,
    ONCE,
  );
  const reads = (r.responses ?? []).filter((x) => x.response_range !== undefined).map((x) => {
    const kv = x.response_range?.kvs?.[0];
    return kv ? kvFrom(kv) : null;
  });
  return { revision: revisionOf(r), succeeded: r.succeeded === true, reads };
}

/** Keys under `prefix` from `start` on, at most `limit`, as of `revision` (0: now): one range request. */
export async function kvList(endpoint: Endpoint, prefix: string, opts: { start?: string; limit?: number; revision?: number; serializable?: boolean; timeoutMs: number }): Promise<{ revision: number; kvs: Kv[]; more: boolean; count: number }> {
  const r = await post<RawHeader & { kvs?: RawKv[]; more?: boolean; count?: string }>(
    endpoint,
    '/v3/kv/range',
    { key: b64(opts.start ?? prefix), range_end: rangeEnd(prefix), limit: String(opts.limit ?? 0), revision: String(opts.revision ?? 0), serializable: opts.serializable ?? false },
    opts.timeoutMs,
  );
  return { revision: revisionOf(r), kvs: (r.kvs ?? []).map(kvFrom), more: r.more === true, count: Number(r.count ?? 0) };
}

/** A lease with a TTL in seconds; etcd names it. */
export async function leaseGrant(endpoint: Endpoint, ttlSeconds: number, timeoutMs: number): Promise<{ revision: number; lease: string; ttlSeconds: number }> {
  const r = await post<RawHeader & { ID?: string; TTL?: string }>(endpoint, '/v3/lease/grant', { TTL: String(ttlSeconds) }, timeoutMs, ONCE);
  return { revision: revisionOf(r), lease: String(r.ID ?? '0'), ttlSeconds: Number(r.TTL ?? 0) };
}

/** One keep-alive: the lease's TTL again, or 0 if etcd no longer knows it. */
export async function leaseKeepAlive(endpoint: Endpoint, lease: string, timeoutMs: number): Promise<{ revision: number; ttlSeconds: number }> {
  // The gateway answers the keep-alive stream with one JSON object per request: one request, one answer.
  const r = await post<{ result?: RawHeader & { TTL?: string } }>(endpoint, '/v3/lease/keepalive', { ID: lease }, timeoutMs, ONCE);
  return { revision: revisionOf(r.result ?? {}), ttlSeconds: Number(r.result?.TTL ?? 0) };
}

/** Revokes a lease: its keys are deleted at one revision. */
export async function leaseRevoke(endpoint: Endpoint, lease: string, timeoutMs: number): Promise<{ revision: number }> {
  return { revision: revisionOf(await post<RawHeader>(endpoint, '/v3/lease/revoke', { ID: lease }, timeoutMs, ONCE)) };
}

/** A member's hash of its key-value store at `revision` (0: now). */
export async function hashKv(endpoint: Endpoint, revision: number, timeoutMs: number): Promise<{ revision: number; compactRevision: number; hash: number }> {
  const r = await post<RawHeader & { hash?: number | string; compact_revision?: string; hash_revision?: string }>(endpoint, '/v3/maintenance/hashkv', { revision: String(revision) }, timeoutMs);
  return { revision: Number(r.hash_revision ?? revisionOf(r)), compactRevision: Number(r.compact_revision ?? 0), hash: Number(r.hash ?? 0) };
}

function kvFrom(kv: RawKv): Kv {
  return {
    key: unb64(kv.key),
    value: unb64(kv.value ?? ''),
    modRevision: Number(kv.mod_revision ?? 0),
    ...(kv.create_revision ? { createRevision: Number(kv.create_revision) } : {}),
    ...(kv.version ? { version: Number(kv.version) } : {}),
    ...(kv.lease && kv.lease !== '0' ? { lease: kv.lease } : {}),
  };
}

/** One change as etcd's watch sends it: a history's WatchEvent before the recorder numbers its response. */
export type WatchedEvent = Omit<WatchEvent, 'batch'>;

/** How a watch stream ended: closed by us, cut (the member died, the connection broke), or compacted under it. */
export type WatchEnd = { end: 'closed' } | { end: 'broken'; reason: string } | { end: 'compacted'; compactRevision: number };

export interface WatchHandle {
  /** Ends the stream; `ended` then resolves with { end: 'closed' }. */
  close(): void;
  ended: Promise<WatchEnd>;
}

/**
 * Watches every key under `prefix` from `fromRevision`, calling `onEvents` with each response's
 * events as they arrive (one call per response: a revision is never split across calls by etcd).
 * The gateway answers a watch with a stream of JSON objects, one per response.
 */
export function watchPrefix(endpoint: Endpoint, prefix: string, fromRevision: number, onEvents: (events: WatchedEvent[]) => void, connectTimeoutMs = 2000, opts: { prevKv?: boolean } = {}): WatchHandle {
  let compactedAt = 0;
  const stream = streamLines(
    endpoint,
    { method: 'POST', path: '/v3/watch', body: JSON.stringify({ create_request: { key: b64(prefix), range_end: rangeEnd(prefix), start_revision: String(fromRevision), ...(opts.prevKv ? { prev_kv: true } : {}) } }) },
    (line) => {
      let message: { result?: { events?: { type?: string; kv?: RawKv; prev_kv?: RawKv }[]; compact_revision?: string; canceled?: boolean; cancel_reason?: string }; error?: { message?: string } };
      try {
        message = JSON.parse(line);
      } catch {
        return; // a keep-alive or a partial line the next chunk completes
      }
      if (message.error) return stream.fail(message.error.message ?? 'error');
      const result = message.result ?? {};
      const compacted = Number(result.compact_revision ?? 0);
      if (compacted > 0) {
        compactedAt = compacted;
        return stream.fail('compacted');
      }
      if (result.canceled) return stream.fail(result.cancel_reason || 'canceled by etcd');
      const events = (result.events ?? []).map((e): WatchedEvent => {
        const kv = e.kv!;
        const type = e.type === 'DELETE' ? 'delete' : 'put';
        const modRevision = Number(kv.mod_revision ?? 0);
        const prev = opts.prevKv ? (e.prev_kv ? { value: unb64(e.prev_kv.value ?? ''), modRevision: Number(e.prev_kv.mod_revision ?? 0) } : null) : undefined;
        const details = type === 'put' ? { value: unb64(kv.value ?? ''), createRevision: Number(kv.create_revision ?? 0), version: Number(kv.version ?? 0), ...(kv.lease && kv.lease !== '0' ? { lease: kv.lease } : {}) } : {};
        return { revision: modRevision, key: unb64(kv.key), type, ...details, modRevision, ...(prev !== undefined ? { prev } : {}) };
      });
      if (events.length > 0) onEvents(events);
    },
    connectTimeoutMs,
  );
  const ended: Promise<WatchEnd> = stream.ended.then((end) => {
    if (end.end === 'closed') return end;
    if (compactedAt > 0) return { end: 'compacted', compactRevision: compactedAt };
    return { end: 'broken', reason: end.status ? `HTTP ${end.status}` : end.reason };
  });
  return { close: () => stream.close(), ended };
}
