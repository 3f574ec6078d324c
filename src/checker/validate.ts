// A history is read before it is judged: every part must have the shape and the types the checker
// relies on, times and revisions must be numbers within reason, and what the checker assumes (one
// request per written value, ids unique) must hold. Anything else is a problem with its path, not a
// verdict: a malformed file must never pass, and never crash the checker. Older formats are upgraded.
import { HISTORY_FORMAT, type History, type Operation, type Request, type Response, type TxnOp, writtenValues } from './history.js';

/** Format 2 (etcd-lab 0.1): transactions were `{ op: 'txn', puts }`; no leases, lists or hashes. */
const FORMAT_2 = 'etcd-lab-history/2';

export interface HistoryProblem {
  path: string;
  message: string;
}

/** Milliseconds a run may last: a day. Times beyond it are not a run etcd-lab recorded. */
const MAX_MS = 24 * 3600 * 1000;
/** Revisions and counts are integers JSON can carry exactly (lease ids are strings). */
const MAX_INT = Number.MAX_SAFE_INTEGER;
/** Problems listed before the rest are only counted. */
const MAX_PROBLEMS = 20;

type Json = Record<string, unknown>;

class Reader {
  readonly problems: HistoryProblem[] = [];
  private more = 0;

  problem(path: string, message: string): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push({ path, message });
    else this.more += 1;
  }

  get extra(): number {
    return this.more;
  }

  object(value: unknown, path: string): Json | undefined {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Json;
    this.problem(path, `must be an object (got ${kind(value)})`);
    return undefined;
  }

  array(value: unknown, path: string): unknown[] | undefined {
    if (Array.isArray(value)) return value;
    this.problem(path, `must be a list (got ${kind(value)})`);
    return undefined;
  }

  string(value: unknown, path: string): string | undefined {
    if (typeof value === 'string') return value;
    this.problem(path, `must be a string (got ${kind(value)})`);
    return undefined;
  }

  /** A whole number from `min` to MAX_INT. */
  integer(value: unknown, path: string, min = 0): number | undefined {
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= MAX_INT) return value;
    this.problem(path, `must be a whole number from ${min} to ${MAX_INT} (got ${kind(value)})`);
    return undefined;
  }

  /** Milliseconds since the run started: finite, from 0 to a day. */
  time(value: unknown, path: string): number | undefined {
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_MS) return value;
    this.problem(path, `must be milliseconds since the run started, from 0 to ${MAX_MS} (got ${kind(value)})`);
    return undefined;
  }

  /** A lease id: etcd's are 63-bit, so written as a decimal string. */
  leaseId(value: unknown, path: string): string | undefined {
    if (typeof value === 'string' && /^[1-9][0-9]{0,18}$/.test(value)) return value;
    this.problem(path, `must be a lease id, a decimal string such as "7587887654612345678" (got ${kind(value)})`);
    return undefined;
  }

  boolean(value: unknown, path: string): boolean | undefined {
    if (typeof value === 'boolean') return value;
    this.problem(path, `must be true or false (got ${kind(value)})`);
    return undefined;
  }

  oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T | undefined {
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    this.problem(path, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')} (got ${kind(value)})`);
    return undefined;
  }

  optional<T>(value: unknown, read: (v: unknown) => T | undefined): T | undefined {
    return value === undefined ? undefined : read(value);
  }
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'a number out of range';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return typeof value === 'object' ? 'an object' : typeof value;
}

const OPS = ['get', 'list', 'put', 'delete', 'cas', 'txn', 'lease-grant', 'lease-keepalive', 'lease-revoke'] as const;

function readTxnOps(r: Reader, value: unknown, path: string): TxnOp[] | undefined {
  const list = r.array(value, path);
  if (!list) return undefined;
  const ops: TxnOp[] = [];
  const changed = new Set<string>();
  list.forEach((item, i) => {
    const o = r.object(item, `${path}[${i}]`);
    if (!o) return;
    const op = r.oneOf(o.op, `${path}[${i}].op`, ['put', 'delete', 'get'] as const);
    const key = r.string(o.key, `${path}[${i}].key`);
    if ((op === 'put' || op === 'delete') && key !== undefined) {
      if (changed.has(key)) r.problem(`${path}[${i}]`, `changes ${JSON.stringify(key)} again: etcd refuses a transaction that changes one key twice`);
      changed.add(key);
    }
    if (op === 'put') {
      const value = r.string(o.value, `${path}[${i}].value`);
      const lease = r.optional(o.lease, (v) => r.leaseId(v, `${path}[${i}].lease`));
      if (key !== undefined && value !== undefined) ops.push({ op, key, value, ...(lease ? { lease } : {}) });
    } else if (op && key !== undefined) ops.push({ op, key });
  });
  return ops;
}

function readRequest(r: Reader, value: unknown, path: string, format: string): Request | undefined {
  const o = r.object(value, path);
  if (!o) return undefined;
  const op = r.oneOf(o.op, `${path}.op`, OPS);
  const key = () => r.string(o.key, `${path}.key`);
  const serializable = () => r.optional(o.serializable, (v) => r.boolean(v, `${path}.serializable`));
  const atRevision = () => r.optional(o.revision, (v) => r.integer(v, `${path}.revision`, 1));
  switch (op) {
    case 'get': {
      const [k, s, rev] = [key(), serializable(), atRevision()];
      return k === undefined ? undefined : { op, key: k, ...(s ? { serializable: s } : {}), ...(rev ? { revision: rev } : {}) };
    }
    case 'list': {
      const prefix = r.string(o.prefix, `${path}.prefix`);
      const start = r.optional(o.start, (v) => r.string(v, `${path}.start`));
      const limit = r.optional(o.limit, (v) => r.integer(v, `${path}.limit`, 1));
      const [s, rev] = [serializable(), atRevision()];
      return prefix === undefined ? undefined : { op, prefix, ...(start !== undefined ? { start } : {}), ...(limit ? { limit } : {}), ...(rev ? { revision: rev } : {}), ...(s ? { serializable: s } : {}) };
    }
    case 'put': {
      const [k, v] = [key(), r.string(o.value, `${path}.value`)];
      const lease = r.optional(o.lease, (x) => r.leaseId(x, `${path}.lease`));
      return k === undefined || v === undefined ? undefined : { op, key: k, value: v, ...(lease ? { lease } : {}) };
    }
    case 'delete': {
      const k = key();
      return k === undefined ? undefined : { op, key: k };
    }
    case 'cas': {
      const [k, mod, v] = [key(), r.integer(o.modRevision, `${path}.modRevision`), r.string(o.value, `${path}.value`)];
      return k === undefined || mod === undefined || v === undefined ? undefined : { op, key: k, modRevision: mod, value: v };
    }
    case 'txn': {
      if (format === FORMAT_2) {
        // Format 2's transaction: puts, unconditionally.
        const puts = r.array(o.puts, `${path}.puts`);
        if (!puts) return undefined;
        const success = readTxnOps(r, puts.map((p) => (typeof p === 'object' && p !== null ? { op: 'put', ...(p as Json) } : p)), `${path}.puts`);
        return success ? { op, success } : undefined;
      }
      const compare = r.optional(o.compare, (v) => {
        const list = r.array(v, `${path}.compare`);
        return list?.flatMap((c, i) => {
          const co = r.object(c, `${path}.compare[${i}]`);
          if (!co) return [];
          const [k, target, equals] = [r.string(co.key, `${path}.compare[${i}].key`), r.oneOf(co.target, `${path}.compare[${i}].target`, ['mod', 'create', 'version'] as const), r.integer(co.equals, `${path}.compare[${i}].equals`)];
          return k === undefined || target === undefined || equals === undefined ? [] : [{ key: k, target, equals }];
        });
      });
      const success = readTxnOps(r, o.success, `${path}.success`);
      const failure = r.optional(o.failure, (v) => readTxnOps(r, v, `${path}.failure`));
      return success ? { op, ...(compare?.length ? { compare } : {}), success, ...(failure?.length ? { failure } : {}) } : undefined;
    }
    case 'lease-grant': {
      const ttl = r.integer(o.ttlSeconds, `${path}.ttlSeconds`, 1);
      return ttl === undefined ? undefined : { op, ttlSeconds: ttl };
    }
    case 'lease-keepalive':
    case 'lease-revoke': {
      const lease = r.leaseId(o.lease, `${path}.lease`);
      return lease === undefined ? undefined : { op, lease };
    }
    default:
      return undefined;
  }
}

function readKv(r: Reader, value: unknown, path: string): { key: string; value: string; modRevision: number; createRevision?: number; version?: number; lease?: string } | undefined {
  const o = r.object(value, path);
  if (!o) return undefined;
  const [key, v, mod] = [r.string(o.key, `${path}.key`), r.string(o.value, `${path}.value`), r.integer(o.modRevision, `${path}.modRevision`, 1)];
  const create = r.optional(o.createRevision, (x) => r.integer(x, `${path}.createRevision`, 1));
  const version = r.optional(o.version, (x) => r.integer(x, `${path}.version`, 1));
  const lease = r.optional(o.lease, (x) => r.leaseId(x, `${path}.lease`));
  if (key === undefined || v === undefined || mod === undefined) return undefined;
  return { key, value: v, modRevision: mod, ...(create ? { createRevision: create } : {}), ...(version ? { version } : {}), ...(lease ? { lease } : {}) };
}

function readResponse(r: Reader, value: unknown, path: string, request: Request, format: string): Response | undefined {
  const o = r.object(value, path);
  if (!o) return undefined;
  if (o.op !== request.op) {
    r.problem(`${path}.op`, `must be the request's own, ${JSON.stringify(request.op)} (got ${kind(o.op)})`);
    return undefined;
  }
  const revision = () => r.integer(o.revision, `${path}.revision`, 1);
  switch (request.op) {
    case 'get': {
      const rev = revision();
      if (o.value === undefined) return rev === undefined ? undefined : { op: 'get', revision: rev };
      const [v, mod] = [r.string(o.value, `${path}.value`), r.integer(o.modRevision, `${path}.modRevision`, 1)];
      const create = r.optional(o.createRevision, (x) => r.integer(x, `${path}.createRevision`, 1));
      const version = r.optional(o.version, (x) => r.integer(x, `${path}.version`, 1));
      const lease = r.optional(o.lease, (x) => r.leaseId(x, `${path}.lease`));
      if (rev === undefined || v === undefined || mod === undefined) return undefined;
      return { op: 'get', revision: rev, value: v, modRevision: mod, ...(create ? { createRevision: create } : {}), ...(version ? { version } : {}), ...(lease ? { lease } : {}) };
    }
    case 'list': {
      const rev = revision();
      const kvs = r.array(o.kvs, `${path}.kvs`)?.map((kv, i) => readKv(r, kv, `${path}.kvs[${i}]`));
      const more = r.boolean(o.more, `${path}.more`);
      const count = r.integer(o.count, `${path}.count`);
      if (rev === undefined || !kvs || kvs.some((kv) => !kv) || more === undefined || count === undefined) return undefined;
      return { op: 'list', revision: rev, kvs: kvs as NonNullable<(typeof kvs)[number]>[], more, count };
    }
    case 'put': {
      const rev = revision();
      return rev === undefined ? undefined : { op: 'put', revision: rev };
    }
    case 'delete': {
      const [rev, deleted] = [revision(), r.integer(o.deleted, `${path}.deleted`)];
      if (deleted !== undefined && deleted > 1) r.problem(`${path}.deleted`, `a delete of one key deletes 0 or 1 (got ${deleted})`);
      return rev === undefined || deleted === undefined || deleted > 1 ? undefined : { op: 'delete', revision: rev, deleted };
    }
    case 'cas': {
      const [rev, succeeded] = [revision(), r.boolean(o.succeeded, `${path}.succeeded`)];
      return rev === undefined || succeeded === undefined ? undefined : { op: 'cas', revision: rev, succeeded };
    }
    case 'txn': {
      const rev = revision();
      // Format 2's transactions had no guard: they always applied.
      const succeeded = format === FORMAT_2 && o.succeeded === undefined ? true : r.boolean(o.succeeded, `${path}.succeeded`);
      const reads = r.optional(o.reads, (v) => r.array(v, `${path}.reads`)?.map((kv, i) => (kv === null ? null : readKv(r, kv, `${path}.reads[${i}]`))));
      if (rev === undefined || succeeded === undefined || reads?.some((kv) => kv === undefined)) return undefined;
      return { op: 'txn', revision: rev, succeeded, ...(reads ? { reads: reads as never } : {}) };
    }
    case 'lease-grant': {
      const [rev, lease, ttl] = [revision(), r.leaseId(o.lease, `${path}.lease`), r.integer(o.ttlSeconds, `${path}.ttlSeconds`, 1)];
      return rev === undefined || lease === undefined || ttl === undefined ? undefined : { op: 'lease-grant', revision: rev, lease, ttlSeconds: ttl };
    }
    case 'lease-keepalive': {
      const [rev, ttl] = [revision(), r.integer(o.ttlSeconds, `${path}.ttlSeconds`)];
      return rev === undefined || ttl === undefined ? undefined : { op: 'lease-keepalive', revision: rev, ttlSeconds: ttl };
    }
    case 'lease-revoke': {
      const rev = revision();
      return rev === undefined ? undefined : { op: 'lease-revoke', revision: rev };
    }
  }
}

function readOperation(r: Reader, value: unknown, path: string, format: string): Operation | undefined {
  const o = r.object(value, path);
  if (!o) return undefined;
  const id = r.integer(o.id, `${path}.id`, 1);
  const client = r.integer(o.client, `${path}.client`);
  const via = r.string(o.via, `${path}.via`);
  const request = readRequest(r, o.request, `${path}.request`, format);
  const callMs = r.time(o.callMs, `${path}.callMs`);
  const returnMs = r.time(o.returnMs, `${path}.returnMs`);
  const outcome = r.oneOf(o.outcome, `${path}.outcome`, ['ok', 'failed', 'unknown'] as const);
  if (callMs !== undefined && returnMs !== undefined && returnMs < callMs) r.problem(`${path}.returnMs`, `is before its call (${returnMs} < ${callMs})`);
  let response: Response | undefined;
  if (outcome === 'ok' && request) {
    if (o.response === undefined) r.problem(`${path}.response`, 'is missing: an operation answered ok has the answer');
    else response = readResponse(r, o.response, `${path}.response`, request, format);
  } else if (outcome !== undefined && outcome !== 'ok' && o.response !== undefined) {
    r.problem(`${path}.response`, `must be absent: an operation whose outcome is ${outcome} got no answer`);
  }
  const error = r.optional(o.error, (v) => r.string(v, `${path}.error`));
  if (id === undefined || client === undefined || via === undefined || !request || callMs === undefined || returnMs === undefined || !outcome || (outcome === 'ok' && !response)) return undefined;
  return { id, client, via, request, callMs, returnMs, outcome, ...(response ? { response } : {}), ...(error !== undefined ? { error } : {}) };
}

function readWatch(r: Reader, value: unknown, path: string): History['watches'][number] | undefined {
  const o = r.object(value, path);
  if (!o) return undefined;
  const id = r.integer(o.id, `${path}.id`, 1);
  const watcher = r.integer(o.watcher, `${path}.watcher`);
  const via = r.string(o.via, `${path}.via`);
  const prefix = r.optional(o.prefix, (v) => r.string(v, `${path}.prefix`));
  const fromRevision = r.integer(o.fromRevision, `${path}.fromRevision`, 1);
  const prevKv = r.optional(o.prevKv, (v) => r.boolean(v, `${path}.prevKv`));
  const filter = r.optional(o.filter, (v) => r.oneOf(v, `${path}.filter`, ['noput', 'nodelete'] as const));
  const startMs = r.time(o.startMs, `${path}.startMs`);
  const endMs = r.time(o.endMs, `${path}.endMs`);
  if (startMs !== undefined && endMs !== undefined && endMs < startMs) r.problem(`${path}.endMs`, `is before the stream started (${endMs} < ${startMs})`);
  const end = r.oneOf(o.end, `${path}.end`, ['closed', 'broken', 'compacted'] as const);
  const upToRevision = end === 'closed' ? r.integer(o.upToRevision, `${path}.upToRevision`) : r.optional(o.upToRevision, (v) => r.integer(v, `${path}.upToRevision`));
  const compactRevision = end === 'compacted' ? r.integer(o.compactRevision, `${path}.compactRevision`, 1) : r.optional(o.compactRevision, (v) => r.integer(v, `${path}.compactRevision`, 1));
  const events = r.array(o.events, `${path}.events`)?.map((e, i) => {
    const p = `${path}.events[${i}]`;
    const eo = r.object(e, p);
    if (!eo) return undefined;
    const revision = r.integer(eo.revision, `${p}.revision`, 1);
    const key = r.string(eo.key, `${p}.key`);
    const type = r.oneOf(eo.type, `${p}.type`, ['put', 'delete'] as const);
    const v = type === 'put' ? r.string(eo.value, `${p}.value`) : undefined;
    const modRevision = r.integer(eo.modRevision, `${p}.modRevision`, 1);
    const batch = r.integer(eo.batch, `${p}.batch`, 1);
    const createRevision = r.optional(eo.createRevision, (x) => r.integer(x, `${p}.createRevision`, 1));
    const version = r.optional(eo.version, (x) => r.integer(x, `${p}.version`, 1));
    const lease = r.optional(eo.lease, (x) => r.leaseId(x, `${p}.lease`));
    let prev: { value: string; modRevision: number } | null | undefined;
    if (eo.prev === null) prev = null;
    else if (eo.prev !== undefined) {
      const po = r.object(eo.prev, `${p}.prev`);
      const [pv, pm] = po ? [r.string(po.value, `${p}.prev.value`), r.integer(po.modRevision, `${p}.prev.modRevision`, 1)] : [undefined, undefined];
      prev = pv === undefined || pm === undefined ? undefined : { value: pv, modRevision: pm };
    }
    if (revision === undefined || key === undefined || !type || (type === 'put' && v === undefined) || modRevision === undefined || batch === undefined) return undefined;
    return { revision, key, type, ...(v !== undefined ? { value: v } : {}), modRevision, ...(createRevision ? { createRevision } : {}), ...(version ? { version } : {}), ...(lease ? { lease } : {}), ...(prev !== undefined ? { prev } : {}), batch };
  });
  const progress = r.optional(o.progress, (v) =>
    r.array(v, `${path}.progress`)?.map((p, i) => {
      const po = r.object(p, `${path}.progress[${i}]`);
      if (!po) return undefined;
      const [rev, batch, atMs] = [r.integer(po.revision, `${path}.progress[${i}].revision`), r.integer(po.batch, `${path}.progress[${i}].batch`), r.time(po.atMs, `${path}.progress[${i}].atMs`)];
      return rev === undefined || batch === undefined || atMs === undefined ? undefined : { revision: rev, batch, atMs };
    }),
  );
  if (id === undefined || watcher === undefined || via === undefined || fromRevision === undefined || startMs === undefined || endMs === undefined || !end || !events || events.some((e) => !e) || progress?.some((p) => !p)) return undefined;
  if ((end === 'closed' && upToRevision === undefined) || (end === 'compacted' && compactRevision === undefined)) return undefined;
  return {
    id,
    watcher,
    via,
    ...(prefix !== undefined ? { prefix } : {}),
    fromRevision,
    ...(prevKv ? { prevKv } : {}),
    ...(filter ? { filter } : {}),
    startMs,
    endMs,
    events: events as History['watches'][number]['events'],
    ...(progress ? { progress: progress as NonNullable<History['watches'][number]['progress']> } : {}),
    end,
    ...(upToRevision !== undefined ? { upToRevision } : {}),
    ...(compactRevision !== undefined ? { compactRevision } : {}),
  };
}

export class InvalidHistory extends Error {
  constructor(
    readonly problems: HistoryProblem[],
    readonly more: number,
  ) {
    super(`not a history the checker can judge: ${problems.length + more} problem${problems.length + more === 1 ? '' : 's'}`);
    this.name = 'InvalidHistory';
  }

  /** The problems, a line each (the first MAX_PROBLEMS), and how many more. */
  describe(): string {
    return [...this.problems.map((p) => `  - ${p.path}: ${p.message}`), ...(this.more > 0 ? [`  … and ${this.more} more`] : [])].join('\n');
  }
}

/** Reads parsed JSON as a History, upgrading format 2; throws InvalidHistory naming every problem. */
export function validateHistory(json: unknown): History {
  const r = new Reader();
  const o = r.object(json, 'history');
  if (!o) throw new InvalidHistory(r.problems, r.extra);
  const format = r.oneOf(o.format, 'format', [HISTORY_FORMAT, FORMAT_2] as const) ?? HISTORY_FORMAT;
  const lab = r.string(o.lab, 'lab');
  const startedAt = r.string(o.startedAt, 'startedAt');
  const traffic = r.optional(o.traffic, (v) => r.string(v, 'traffic'));
  const prefix = r.optional(o.prefix, (v) => r.string(v, 'prefix'));
  const keys = r.array(o.keys, 'keys')?.map((k, i) => r.string(k, `keys[${i}]`));
  const startRevision = r.integer(o.startRevision, 'startRevision');
  const operations = r.array(o.operations, 'operations')?.map((op, i) => readOperation(r, op, `operations[${i}]`, format));
  const watches = r.array(o.watches, 'watches')?.map((w, i) => readWatch(r, w, `watches[${i}]`));
  const faults = r.array(o.faults, 'faults')?.map((f, i) => {
    const fo = r.object(f, `faults[${i}]`);
    if (!fo) return undefined;
    const [k, t, s, e] = [r.string(fo.kind, `faults[${i}].kind`), r.string(fo.target, `faults[${i}].target`), r.time(fo.startMs, `faults[${i}].startMs`), r.time(fo.endMs, `faults[${i}].endMs`)];
    if (s !== undefined && e !== undefined && e < s) r.problem(`faults[${i}].endMs`, `is before the fault started (${e} < ${s})`);
    return k === undefined || t === undefined || s === undefined || e === undefined ? undefined : { kind: k, target: t, startMs: s, endMs: e };
  });
  const finalObject = r.object(o.final, 'final');
  let final: History['final'] | undefined;
  if (finalObject) {
    const revision = r.integer(finalObject.revision, 'final.revision');
    const readAt = r.optional(finalObject.readAtRevision, (v) => r.integer(v, 'final.readAtRevision'));
    const callMs = r.optional(finalObject.callMs, (v) => r.time(v, 'final.callMs'));
    const valuesObject = r.object(finalObject.values, 'final.values');
    const values: History['final']['values'] = {};
    for (const [key, v] of Object.entries(valuesObject ?? {})) {
      const at = `final.values.${key}`;
      const vo = r.object(v, at);
      if (!vo) continue;
      const [value, mod] = [r.string(vo.value, `${at}.value`), r.integer(vo.modRevision, `${at}.modRevision`, 1)];
      const lease = r.optional(vo.lease, (x) => r.leaseId(x, `${at}.lease`));
      if (value !== undefined && mod !== undefined) values[key] = { value, modRevision: mod, ...(lease ? { lease } : {}) };
    }
    if (revision !== undefined && readAt !== undefined && readAt < revision) r.problem('final.readAtRevision', `is the store's revision when the final state was read, so it cannot be below final.revision (${readAt} < ${revision})`);
    if (revision !== undefined && valuesObject) final = { revision, ...(readAt !== undefined ? { readAtRevision: readAt } : {}), ...(callMs !== undefined ? { callMs } : {}), values };
  }
  const hashes = r.optional(o.hashes, (v) =>
    r.array(v, 'hashes')?.map((h, i) => {
      const ho = r.object(h, `hashes[${i}]`);
      if (!ho) return undefined;
      const [member, revision, compactRevision, hash] = [r.string(ho.member, `hashes[${i}].member`), r.integer(ho.revision, `hashes[${i}].revision`, 1), r.integer(ho.compactRevision, `hashes[${i}].compactRevision`), r.integer(ho.hash, `hashes[${i}].hash`)];
      return member === undefined || revision === undefined || compactRevision === undefined || hash === undefined ? undefined : { member, revision, compactRevision, hash };
    }),
  );

  // What the checker assumes beyond the shape.
  const keySpace = new Set(keys?.filter((k): k is string => k !== undefined));
  const inKeySpace = (key: string) => (prefix !== undefined ? key.startsWith(prefix) : keySpace.has(key));
  operations?.forEach((op, i) => {
    const r0 = op?.request;
    if (!r0) return;
    const touched = r0.op === 'get' || r0.op === 'put' || r0.op === 'delete' || r0.op === 'cas' ? [r0.key] : r0.op === 'txn' ? [...r0.success, ...(r0.failure ?? [])].map((o) => o.key) : [];
    for (const key of touched) if (!inKeySpace(key)) r.problem(`operations[${i}].request.key`, `${JSON.stringify(key)} is outside the history's key space (${prefix !== undefined ? `prefix ${JSON.stringify(prefix)}` : 'keys'}): nothing watched it`);
  });
  if (operations && startRevision !== undefined) {
    const ids = new Set<number>();
    const writers = new Map<string, number>();
    operations.forEach((op, i) => {
      if (!op) return;
      if (ids.has(op.id)) r.problem(`operations[${i}].id`, `${op.id} is the id of an earlier operation: every operation has its own`);
      ids.add(op.id);
      for (const value of writtenValues(op.request)) {
        const other = writers.get(value);
        if (other !== undefined) r.problem(`operations[${i}].request${op.request.op === 'put' || op.request.op === 'cas' ? '.value' : ''}`, `writes ${JSON.stringify(value)}, as operations[${other}] does: every value is written by one request, which is how a committed change names its request`);
        else writers.set(value, i);
      }
      const rev = op.response?.revision;
      if (rev !== undefined && rev < startRevision) r.problem(`operations[${i}].response.revision`, `${rev} is before the history's start (startRevision ${startRevision})`);
    });
  }
  if (watches) {
    const ids = new Set<number>();
    watches.forEach((w, i) => {
      if (!w) return;
      if (ids.has(w.id)) r.problem(`watches[${i}].id`, `${w.id} is the id of an earlier stream: every stream has its own`);
      ids.add(w.id);
      if (startRevision !== undefined && w.fromRevision > 0 && w.fromRevision <= startRevision) r.problem(`watches[${i}].fromRevision`, `${w.fromRevision} is not after the history's start (startRevision ${startRevision})`);
    });
  }
  if (final && startRevision !== undefined && final.revision < startRevision) r.problem('final.revision', `${final.revision} is before the history's start (startRevision ${startRevision})`);

  const complete = lab !== undefined && startedAt !== undefined && keys && keys.every((k) => k !== undefined) && startRevision !== undefined && operations && operations.every(Boolean) && watches && watches.every(Boolean) && faults && faults.every(Boolean) && final && (hashes === undefined || hashes.every(Boolean));
  if (r.problems.length > 0 || !complete) throw new InvalidHistory(r.problems.length > 0 ? r.problems : [{ path: 'history', message: 'is incomplete' }], r.extra);
  return {
    format: HISTORY_FORMAT,
    lab: lab!,
    startedAt: startedAt!,
    ...(traffic !== undefined ? { traffic } : {}),
    ...(prefix !== undefined ? { prefix } : {}),
    keys: keys as string[],
    startRevision: startRevision!,
    operations: operations as Operation[],
    watches: watches as History['watches'],
    faults: faults as History['faults'],
    final: final!,
    ...(hashes ? { hashes: hashes as NonNullable<History['hashes']> } : {}),
  };
}
