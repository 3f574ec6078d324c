// One planted defect per class, each made illegal for certain whatever the rest of the history
// says. They work on simulate()'s histories: watch 1 there is closed and delivered every change,
// so the committed changes (and hence every revision's content) are fixed by it.
import type { History, Operation, WatchEvent } from '../../../src/checker/history.js';

export interface Mutation {
  name: string;
  /** The illegal history, or undefined when this history offers no place to plant it. */
  plant(history: History, rnd: () => number): History | undefined;
}

const clone = (h: History): History => structuredClone(h);
/** Watch 1 as simulate() makes it: closed, from the start, every change. (A shrunk history may lack it: no place to plant.) */
const fullOrNone = (h: History) => h.watches.find((s) => s.id === 1 && s.end === 'closed' && s.fromRevision === h.startRevision + 1);
const full = (h: History) => fullOrNone(h)!;
const pick = <T>(xs: readonly T[], rnd: () => number): T | undefined => (xs.length ? xs[Math.floor(rnd() * xs.length)] : undefined);
const revisionsOf = (h: History) => [...new Set(full(h).events.map((e) => e.revision))];
const lastRevision = (h: History) => full(h).upToRevision!;

/** The key space at `revision`, replayed from watch 1. */
function stateAt(h: History, revision: number): Map<string, { value: string; modRevision: number }> {
  const state = new Map<string, { value: string; modRevision: number }>();
  for (const e of full(h).events) {
    if (e.revision > revision) break;
    if (e.type === 'put') state.set(e.key, { value: e.value!, modRevision: e.modRevision });
    else state.delete(e.key);
  }
  return state;
}

/** The final read made to agree with a changed watch 1, so only the planted defect is wrong. */
function refinal(h: History): History {
  h.final.values = Object.fromEntries(stateAt(h, h.final.revision));
  return h;
}

/** Changed something: its answer says so. */
const changedSomething = (op: Operation) =>
  op.outcome === 'ok' && (op.response?.op === 'put' || op.response?.op === 'txn' || (op.response?.op === 'cas' && op.response.succeeded) || (op.response?.op === 'delete' && op.response.deleted > 0));

/** A change at the end (revision last+1), delivered by every closed stream, made by a new unknown request. */
function appendChange(h: History, event: Omit<WatchEvent, 'revision' | 'modRevision' | 'batch'>, operation?: Omit<Operation, 'id'>): History {
  const revision = lastRevision(h) + 1;
  for (const s of h.watches) {
    if (s.end !== 'closed') continue;
    s.events.push({ ...event, revision, modRevision: revision, batch: (s.events.at(-1)?.batch ?? 0) + 1 });
    s.upToRevision = revision;
  }
  if (operation) h.operations.push({ id: h.operations.length + 1, ...operation });
  return h;
}

const plantable: Mutation[] = [
  {
    name: 'stale read: a read answered before a write that completed before it began',
    plant(history, rnd) {
      const h = clone(history);
      const pairs = h.operations.flatMap((read) =>
        read.outcome === 'ok' && read.request.op === 'get' && !read.request.serializable
          ? h.operations.filter((w) => changedSomething(w) && w.returnMs < read.callMs).map((w) => ({ read, before: w.response!.revision - 1 }))
          : [],
      );
      const chosen = pick(pairs, rnd);
      if (!chosen || chosen.read.request.op !== 'get') return undefined;
      const held = stateAt(h, chosen.before).get(chosen.read.request.key);
      chosen.read.response = { op: 'get', revision: chosen.before, ...(held ? { value: held.value, modRevision: held.modRevision } : {}) };
      return h;
    },
  },
  {
    name: "value on another key: a put's change moved to a key it did not write",
    plant(history, rnd) {
      const h = clone(history);
      const e = pick(full(h).events.filter((x) => x.type === 'put'), rnd);
      const other = h.keys.find((k) => k !== e?.key && !full(h).events.some((x) => x.revision === e?.revision && x.key === k));
      if (!e || !other) return undefined;
      for (const s of h.watches) for (const x of s.events) if (x.revision === e.revision && x.key === e.key) x.key = other;
      return refinal(h);
    },
  },
  {
    name: "value on two keys: a put's value also committed on another key at its revision",
    plant(history, rnd) {
      const h = clone(history);
      const e = pick(full(h).events.filter((x) => x.type === 'put'), rnd);
      const other = h.keys.find((k) => !full(h).events.some((x) => x.revision === e?.revision && x.key === k));
      if (!e || !other) return undefined;
      for (const s of h.watches) {
        const i = s.events.findIndex((x) => x.revision === e.revision && x.key === e.key);
        if (i >= 0) s.events.splice(i + 1, 0, { ...s.events[i]!, key: other });
      }
      return refinal(h);
    },
  },
  {
    name: 'shared revision: two requests merged into one revision',
    plant(history, rnd) {
      const revisions = revisionsOf(history);
      const keysAt = (r: number) => full(history).events.filter((e) => e.revision === r).map((e) => e.key);
      // Both revisions, or neither, in every stream; no key changed twice in the merged revision.
      const candidates = revisions.filter(
        (r) =>
          revisions.includes(r + 1) &&
          !keysAt(r).some((k) => keysAt(r + 1).includes(k)) &&
          history.watches.every((s) => s.events.some((e) => e.revision === r) === s.events.some((e) => e.revision === r + 1) && s.fromRevision !== r + 1),
      );
      const r = pick(candidates, rnd);
      if (r === undefined) return undefined;
      const h = clone(history);
      const f = (x: number) => (x <= r ? x : x - 1);
      for (const op of h.operations) {
        if (op.request.op === 'cas') op.request.modRevision = f(op.request.modRevision);
        if (!op.response) continue;
        op.response.revision = f(op.response.revision);
        if (op.response.op === 'get' && op.response.modRevision !== undefined) op.response.modRevision = f(op.response.modRevision);
      }
      for (const s of h.watches) {
        const batch = s.events.find((e) => e.revision === r)?.batch;
        for (const e of s.events) {
          if (e.revision === r + 1) e.batch = batch!;
          e.revision = f(e.revision);
          e.modRevision = f(e.modRevision);
        }
        s.fromRevision = f(s.fromRevision);
        if (s.upToRevision !== undefined) s.upToRevision = f(s.upToRevision);
        if (s.compactRevision !== undefined) s.compactRevision = f(s.compactRevision);
      }
      h.final.revision = f(h.final.revision);
      for (const v of Object.values(h.final.values)) v.modRevision = f(v.modRevision);
      return h;
    },
  },
  {
    name: 'closed-stream gap: watch 1 skips one revision',
    plant(history, rnd) {
      const r = pick(revisionsOf(history), rnd);
      if (r === undefined) return undefined;
      const h = clone(history);
      full(h).events = full(h).events.filter((e) => e.revision !== r);
      // Watch 1 no longer fixes revision r; a second full copy keeps the changes known.
      h.watches.push({ ...structuredClone(full(history)), id: 9, watcher: 9 });
      return h;
    },
  },
  {
    name: 'compacted-stream gap: a stream ended compacted skipped a revision before its last event',
    plant(history, rnd) {
      const revisions = revisionsOf(history);
      const r = pick(revisions.slice(0, -1), rnd);
      if (r === undefined) return undefined;
      const h = clone(history);
      const events = full(h).events.filter((e) => e.revision !== r).map((e) => ({ ...e }));
      h.watches.push({ id: 9, watcher: 9, via: 'haproxy', fromRevision: h.startRevision + 1, startMs: 0, endMs: 1000, events, end: 'compacted', compactRevision: revisions.at(-1)! + 1 });
      return h;
    },
  },
  {
    name: 'final behind: the final read older than an answer given before it',
    plant(history) {
      const answered = Math.max(...history.operations.filter((op) => op.outcome === 'ok').map((op) => op.response!.revision));
      if (!(answered > history.startRevision)) return undefined;
      const h = clone(history);
      h.final.revision = answered - 1;
      return refinal(h);
    },
  },
  {
    name: 'unknown delete of an absent key, committed',
    plant(history, rnd) {
      const h = clone(history);
      const present = stateAt(h, lastRevision(h));
      const key = pick(h.keys.filter((k) => !present.has(k)), rnd);
      if (!key) return undefined;
      return appendChange(h, { key, type: 'delete' }, { client: 9, via: 'haproxy', request: { op: 'delete', key }, callMs: 0, returnMs: 1, outcome: 'unknown', error: 'deadline exceeded' });
    },
  },
  {
    name: 'unknown CAS whose compare fails where it committed',
    plant(history, rnd) {
      const h = clone(history);
      const key = pick(h.keys, rnd)!;
      const held = stateAt(h, lastRevision(h)).get(key)?.modRevision ?? 0;
      const value = 'planted-cas';
      const request = { op: 'cas' as const, key, modRevision: held === 0 ? h.startRevision + 1 : 0, value };
      return appendChange(h, { key, type: 'put', value }, { client: 9, via: 'haproxy', request, callMs: 0, returnMs: 1, outcome: 'unknown', error: 'deadline exceeded' });
    },
  },
  {
    name: 'wrong value: a read answered with a value its key did not hold at its revision',
    plant(history, rnd) {
      const h = clone(history);
      const read = pick(h.operations.filter((op) => op.outcome === 'ok' && op.request.op === 'get'), rnd);
      if (!read || read.request.op !== 'get' || read.response?.op !== 'get') return undefined;
      const key = read.request.key;
      const held = stateAt(h, read.response.revision).get(key);
      const other = pick(full(h).events.filter((e) => e.key === key && e.type === 'put' && e.value !== held?.value), rnd);
      if (!held && !other) return undefined;
      // Another value the key held at some time, or absent when it was not.
      read.response = other ? { op: 'get', revision: read.response.revision, value: other.value!, modRevision: other.modRevision } : { op: 'get', revision: read.response.revision };
      return h;
    },
  },
  {
    name: 'duplicate watch event',
    plant(history, rnd) {
      const h = clone(history);
      const events = full(h).events;
      const i = Math.floor(rnd() * events.length);
      if (!events.length) return undefined;
      events.splice(i, 0, { ...events[i]! });
      return h;
    },
  },
  {
    name: "mod_revision off: a put's events, reads and final all carry revision−1",
    plant(history, rnd) {
      const h = clone(history);
      const e = pick(full(h).events.filter((x) => x.type === 'put'), rnd);
      if (!e) return undefined;
      const { revision, key } = e;
      for (const s of h.watches) for (const x of s.events) if (x.revision === revision && x.key === key) x.modRevision = revision - 1;
      for (const op of h.operations) if (op.response?.op === 'get' && op.response.value === e.value) op.response.modRevision = revision - 1;
      const final = h.final.values[key];
      if (final && final.value === e.value) final.modRevision = revision - 1;
      return h;
    },
  },
  {
    name: 'applied twice: a put committed again at the end',
    plant(history, rnd) {
      const h = clone(history);
      const e = pick(full(h).events.filter((x) => x.type === 'put'), rnd);
      if (!e) return undefined;
      return appendChange(h, { key: e.key, type: 'put', value: e.value! });
    },
  },
  {
    name: 'failed write applied: an acknowledged put reported failed instead',
    plant(history, rnd) {
      const h = clone(history);
      const w = pick(h.operations.filter((op) => op.outcome === 'ok' && op.request.op === 'put'), rnd);
      if (!w) return undefined;
      w.outcome = 'failed';
      delete w.response;
      w.error = 'connection refused';
      return h;
    },
  },
  {
    name: 'revision mismatch: a put or txn answered one revision later than its commit',
    plant(history, rnd) {
      const h = clone(history);
      const w = pick(h.operations.filter((op) => op.outcome === 'ok' && (op.request.op === 'put' || op.request.op === 'txn')), rnd);
      if (!w) return undefined;
      w.response!.revision += 1;
      return h;
    },
  },
];

export const mutations: Mutation[] = plantable.map((m) => ({ name: m.name, plant: (history, rnd) => (fullOrNone(history) ? m.plant(history, rnd) : undefined) }));
