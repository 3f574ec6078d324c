// Small random histories from a simulated etcd, legal by construction: each operation takes effect
// at one instant inside its interval (an unknown write that committed may take effect later, even
// after the final read), and the store answers as etcd does. Seeded, so a failure reproduces.
import { HISTORY_FORMAT, type History, type Operation, type Request, type Response, type WatchEvent, type WatchStream } from '../../../src/checker/history.js';
import { START } from './histories.js';

/** Clients use two of the three keys: contention on them, and one key always absent. */
const USED_KEYS = ['k0', 'k1'];

/** mulberry32: a tiny seeded generator. */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export interface SimOptions {
  /** Operations in all (the oracle's search grows fast beyond 8). */
  ops: number;
  /** Some gets are serializable and answered from a lagging member. */
  serializable: boolean;
  /** An unknown write that committed may take effect after it gave up, even after the final read. */
  lateUnknowns: boolean;
}

interface Planned {
  index: number;
  client: number;
  callMs: number;
  returnMs: number;
  effectMs: number;
  outcome: Operation['outcome'];
  /** Whether it takes effect at all (ok: yes; failed: no; unknown: either). */
  applies: boolean;
  kind: 'get' | 'sget' | 'put' | 'delete' | 'cas' | 'txn';
}

type Stored = Map<string, { value: string; modRevision: number }>;

export function simulate(seed: number, options: SimOptions): History {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const clock = [0, 0, 0];
  const planned: Planned[] = [];
  for (let index = 0; index < options.ops; index++) {
    const client = Math.floor(rnd() * clock.length);
    const callMs = clock[client]! + rnd() * 4;
    const effectMs = callMs + rnd() * 4;
    const returnMs = effectMs + rnd() * 4;
    clock[client] = returnMs;
    const r = rnd();
    const kind = r < 0.3 ? (options.serializable && rnd() < 0.5 ? 'sget' : 'get') : r < 0.55 ? 'put' : r < 0.67 ? 'delete' : r < 0.85 ? 'cas' : 'txn';
    const o = rnd();
    const outcome = o < 0.15 ? 'unknown' : o < 0.22 ? 'failed' : 'ok';
    const applies = outcome === 'ok' || (outcome === 'unknown' && kind !== 'get' && kind !== 'sget' && rnd() < 0.5);
    // Committed late: still in flight when the client gave up.
    const late = outcome === 'unknown' && applies && options.lateUnknowns && rnd() < 0.6;
    planned.push({ index, client, callMs, returnMs, effectMs: late ? returnMs + rnd() * 12 : effectMs, outcome, applies, kind });
  }
  // The final read: once every client stopped.
  const finalMs = Math.max(...planned.map((p) => p.returnMs)) + 1;

  let revision = START;
  const state: Stored = new Map();
  const log: { key: string; value?: string }[][] = [];
  const snapshots: Stored[] = [new Map()];
  const operations: Operation[] = [];
  let final: History['final'] | undefined;
  const commit = (changes: { key: string; value?: string }[]) => {
    revision += 1;
    for (const c of changes) {
      if (c.value === undefined) state.delete(c.key);
      else state.set(c.key, { value: c.value, modRevision: revision });
    }
    log.push(changes);
    snapshots.push(new Map(state));
    return revision;
  };
  const moments = [...planned.map((p) => ({ at: p.effectMs, p })), { at: finalMs, p: undefined }].sort((a, b) => a.at - b.at);
  for (const { p } of moments) {
    if (!p) {
      final = { revision, values: Object.fromEntries(state) };
      continue;
    }
    const key = pick(USED_KEYS);
    const value = `c${p.client}-${p.index}`;
    let request: Request;
    let response: Response | undefined;
    switch (p.kind) {
      case 'get':
      case 'sget': {
        // A serializable read: from a member that applied any revision so far.
        const at = p.kind === 'sget' ? START + Math.floor(rnd() * (revision - START + 1)) : revision;
        const held = snapshots[at - START]!.get(key);
        request = p.kind === 'sget' ? { op: 'get', key, serializable: true } : { op: 'get', key };
        response = { op: 'get', revision: at, ...(held ? { value: held.value, modRevision: held.modRevision } : {}) };
        break;
      }
      case 'put':
        request = { op: 'put', key, value };
        response = p.applies ? { op: 'put', revision: commit([{ key, value }]) } : undefined;
        break;
      case 'delete':
        request = { op: 'delete', key };
        if (p.applies && state.has(key)) response = { op: 'delete', revision: commit([{ key }]), deleted: 1 };
        else if (p.applies) response = { op: 'delete', revision, deleted: 0 };
        break;
      case 'cas': {
        // Half compare against what holds now (they apply), half against an older guess.
        const held = state.get(key)?.modRevision ?? 0;
        const modRevision = rnd() < 0.5 ? held : pick([0, ...Array.from({ length: revision - START }, (_, i) => START + 1 + i)]);
        request = { op: 'cas', key, modRevision, value };
        if (p.applies && held === modRevision) response = { op: 'cas', revision: commit([{ key, value }]), succeeded: true };
        else if (p.applies) response = { op: 'cas', revision, succeeded: false };
        break;
      }
      case 'txn':
        const puts = USED_KEYS.map((k, i) => ({ key: k, value: `${value}${'ab'[i]}` }));
        request = { op: 'txn', success: puts.map((x) => ({ op: 'put' as const, ...x })) };
        response = p.applies ? { op: 'txn', revision: commit(puts), succeeded: true } : undefined;
        break;
    }
    operations.push({
      id: 0,
      client: p.client,
      via: 'haproxy',
      request,
      callMs: p.callMs,
      returnMs: p.returnMs,
      outcome: p.outcome,
      ...(p.outcome === 'ok' ? { response: response! } : { error: p.outcome === 'failed' ? 'connection refused' : 'deadline exceeded' }),
    });
  }
  // Listed in the order they were called, ids from 1.
  operations.sort((a, b) => a.callMs - b.callMs).forEach((op, i) => (op.id = i + 1));

  const all: WatchEvent[] = [];
  let batch = 1;
  log.forEach((changes, i) => {
    if (i > 0 && rnd() < 0.6) batch += 1;
    for (const c of changes) all.push(eventOf(START + 1 + i, c, batch));
  });
  return {
    format: HISTORY_FORMAT,
    lab: 'simulated',
    startedAt: '2026-11-30T00:00:00Z',
    keys: ['k0', 'k1', 'k2'],
    startRevision: START,
    operations,
    watches: [stream(1, all, { end: 'closed', upToRevision: revision }), ...secondWatcher(rnd, all, revision)],
    faults: [],
    final: final!,
  };
}

function eventOf(revision: number, c: { key: string; value?: string }, batch: number): WatchEvent {
  return c.value === undefined ? { revision, key: c.key, type: 'delete', modRevision: revision, batch } : { revision, key: c.key, type: 'put', value: c.value, modRevision: revision, batch };
}

function stream(id: number, events: WatchEvent[], end: Pick<WatchStream, 'end' | 'upToRevision' | 'compactRevision'>, fromRevision = START + 1): WatchStream {
  return { id, watcher: id === 1 ? 1 : 2, via: 'haproxy', fromRevision, startMs: 0, endMs: 1000, events: events.map((e) => ({ ...e })), ...end };
}

/** The second watcher: whole, broken and resumed, or cut by a compaction. */
function secondWatcher(rnd: () => number, all: WatchEvent[], last: number): WatchStream[] {
  const cut = START + Math.floor(rnd() * (last - START + 1));
  const r = rnd();
  if (r < 0.4) return [stream(2, all, { end: 'closed', upToRevision: last })];
  if (r < 0.7) {
    return [stream(2, all.filter((e) => e.revision <= cut), { end: 'broken' }), stream(3, all.filter((e) => e.revision > cut), { end: 'closed', upToRevision: last }, cut + 1)];
  }
  return [stream(2, all.filter((e) => e.revision <= cut), { end: 'compacted', compactRevision: cut + 1 })];
}
