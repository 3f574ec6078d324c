// The key-value calls `check`'s clients make, each answering with the revision etcd served it at
// (what the checker places it by), and a watch stream read as it arrives. Through the gRPC gateway,
// like the rest of etcd-lab: no client library, so no retry or failover happens behind our back.
import http from 'node:http';
import https from 'node:https';
import { b64, endpointUrl, post, rangeEnd, unb64, type Endpoint } from './etcd-http.js';

interface RawHeader {
  header?: { revision?: string };
}
interface RawKv {
  key: string;
  value?: string;
  mod_revision?: string;
}
const revisionOf = (r: RawHeader) => Number(r.header?.revision ?? 0);
/** Writes are sent once: a retry after a reset could apply them twice (see etcd-http.ts). */
const ONCE = { once: true };

export async function kvGet(endpoint: Endpoint, key: string, opts: { serializable?: boolean; timeoutMs: number }): Promise<{ revision: number; value?: string; modRevision?: number }> {
  const r = await post<RawHeader & { kvs?: RawKv[] }>(endpoint, '/v3/kv/range', { key: b64(key), serializable: opts.serializable ?? false }, opts.timeoutMs);
  const kv = r.kvs?.[0];
  return { revision: revisionOf(r), ...(kv ? { value: unb64(kv.value ?? ''), modRevision: Number(kv.mod_revision ?? 0) } : {}) };
}

/** Every key under `prefix` with its value and mod_revision, in one linearizable read. */
export async function kvRange(endpoint: Endpoint, prefix: string, timeoutMs: number): Promise<{ revision: number; values: Record<string, { value: string; modRevision: number }> }> {
  const r = await post<RawHeader & { kvs?: RawKv[] }>(endpoint, '/v3/kv/range', { key: b64(prefix), range_end: rangeEnd(prefix) }, timeoutMs);
  return { revision: revisionOf(r), values: Object.fromEntries((r.kvs ?? []).map((kv) => [unb64(kv.key), { value: unb64(kv.value ?? ''), modRevision: Number(kv.mod_revision ?? 0) }])) };
}

export async function kvPut(endpoint: Endpoint, key: string, value: string, timeoutMs: number): Promise<{ revision: number }> {
  return { revision: revisionOf(await post<RawHeader>(endpoint, '/v3/kv/put', { key: b64(key), value: b64(value) }, timeoutMs, ONCE)) };
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

/** Several keys put in one transaction, at one revision. */
export async function kvPutAll(endpoint: Endpoint, puts: { key: string; value: string }[], timeoutMs: number): Promise<{ revision: number }> {
  const r = await post<RawHeader>(endpoint, '/v3/kv/txn', { success: puts.map((p) => ({ request_put: { key: b64(p.key), value: b64(p.value) } })) }, timeoutMs, ONCE);
  return { revision: revisionOf(r) };
}

export interface WatchedEvent {
  revision: number;
  key: string;
  type: 'put' | 'delete';
  value?: string;
  modRevision: number;
}

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
export function watchPrefix(endpoint: Endpoint, prefix: string, fromRevision: number, onEvents: (events: WatchedEvent[]) => void, connectTimeoutMs = 2000): WatchHandle {
  const url = `${endpointUrl(endpoint)}/v3/watch`;
  const tls = typeof endpoint === 'string' ? undefined : endpoint.tls;
  const send = url.startsWith('https:') ? https.request : http.request;
  let closing = false;
  let settle: (end: WatchEnd) => void = () => {};
  const ended = new Promise<WatchEnd>((resolve) => {
    let done = false;
    settle = (end) => {
      if (done) return;
      done = true;
      resolve(closing ? { end: 'closed' } : end);
    };
  });
  // Not the keep-alive pool: this connection stays open for the stream's life.
  const req = send(url, { method: 'POST', headers: { 'content-type': 'application/json' }, agent: tls ? new https.Agent({ ca: tls.ca, cert: tls.cert, key: tls.key }) : false }, (response) => {
    clearTimeout(connectTimer);
    if ((response.statusCode ?? 0) >= 300) {
      settle({ end: 'broken', reason: `HTTP ${response.statusCode}` });
      response.resume();
      return;
    }
    let buffer = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
        const line = buffer.slice(0, i).trim();
        buffer = buffer.slice(i + 1);
        if (line) handle(line);
      }
    });
    response.on('end', () => settle({ end: 'broken', reason: 'the stream ended' }));
    response.on('error', (error) => settle({ end: 'broken', reason: error.message }));
  });
  const handle = (line: string) => {
    let message: { result?: { events?: { type?: string; kv?: RawKv }[]; compact_revision?: string; canceled?: boolean; cancel_reason?: string }; error?: { message?: string } };
    try {
      message = JSON.parse(line);
    } catch {
      return; // a keep-alive or a partial line the next chunk completes
    }
    if (message.error) return settle({ end: 'broken', reason: message.error.message ?? 'error' });
    const result = message.result ?? {};
    const compacted = Number(result.compact_revision ?? 0);
    if (compacted > 0) return settle({ end: 'compacted', compactRevision: compacted });
    if (result.canceled) return settle({ end: 'broken', reason: result.cancel_reason || 'canceled by etcd' });
    const events = (result.events ?? []).map((e): WatchedEvent => {
      const kv = e.kv!;
      const type = e.type === 'DELETE' ? 'delete' : 'put';
      const modRevision = Number(kv.mod_revision ?? 0);
      return { revision: modRevision, key: unb64(kv.key), type, ...(type === 'put' ? { value: unb64(kv.value ?? '') } : {}), modRevision };
    });
    if (events.length > 0) onEvents(events);
  };
  const connectTimer = setTimeout(() => req.destroy(new Error('no answer to the watch request')), connectTimeoutMs);
  req.on('error', (error) => {
    clearTimeout(connectTimer);
    settle({ end: 'broken', reason: error.message });
  });
  req.on('close', () => settle({ end: 'broken', reason: 'connection closed' }));
  req.end(JSON.stringify({ create_request: { key: b64(prefix), range_end: rangeEnd(prefix), start_revision: String(fromRevision) } }));
  return {
    close() {
      closing = true;
      req.destroy();
      settle({ end: 'closed' });
    },
    ended,
  };
}
