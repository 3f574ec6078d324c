// The checker on Kubernetes-shaped and lease traffic, and on what the newer parts of a history say
// (prev_kv, progress notifications, members' hashes, a final read pinned to the end marker): hand-made
// histories, each with the verdict argued from etcd's guarantees.
import { describe, expect, it } from 'vitest';
import { checkHistory, type ViolationKind } from '../../src/checker/check.js';
import type { History, Request, Response, WatchEvent } from '../../src/checker/history.js';
import { closed, history, type OpSpec } from './checker-audit/histories.js';

/** One operation answered with exactly `response`. */
const ok = (client: number, request: Request, [callMs, returnMs]: [number, number], response: Response): OpSpec => ({ client, via: 'haproxy', request, callMs, returnMs, outcome: 'ok', response });
const unknown = (client: number, request: Request, [callMs, returnMs]: [number, number]): OpSpec => ({ client, via: 'haproxy', request, callMs, returnMs, outcome: 'unknown', error: 'deadline exceeded' });

const putEvent = (revision: number, key: string, value: string, extra: Partial<WatchEvent> = {}): WatchEvent => ({ revision, key, type: 'put', value, modRevision: revision, batch: revision, ...extra });
const delEvent = (revision: number, key: string, extra: Partial<WatchEvent> = {}): WatchEvent => ({ revision, key, type: 'delete', modRevision: revision, batch: revision, ...extra });

/** Two streams that saw `events`, closed at `upTo`; the final state given as is. */
function withEvents(ops: OpSpec[], evs: WatchEvent[], upTo: number, final: History['final']['values'], extra: Partial<History> = {}): History {
  const h = history({ ops });
  h.keys = ['k0', 'k1', 'k2', 'o0', 'o1', 'o2', 'o3'];
  h.watches = [closed(1, evs.map((e) => ({ ...e })), upTo), closed(2, evs.map((e) => ({ ...e })), upTo)];
  h.final = { revision: upTo, values: final };
  return { ...h, ...extra };
}

const kindsOf = (h: History) => checkHistory(h).violations.map((v) => v.kind);
function only(h: History, kind: ViolationKind) {
  const result = checkHistory(h);
  expect(result.violations.map((v) => v.kind), JSON.stringify(result.violations, null, 1)).toEqual([kind]);
  return result.violations[0]!;
}

const L = '7587887654612345678';

describe('leases', () => {
  const grant = ok(1, { op: 'lease-grant', ttlSeconds: 5 }, [0, 10], { op: 'lease-grant', revision: 100, lease: L, ttlSeconds: 5 });
  const attach = ok(1, { op: 'put', key: 'k0', value: 'a', lease: L }, [20, 30], { op: 'put', revision: 101 });

  it('a lease left alone expires after its TTL and takes its keys with it, at one revision: legal, counted', () => {
    // Seen gone by a read that returned at 6000 ms: 5,980 ms after the lease was last refreshed... at its grant's call (0 ms).
    const read = ok(2, { op: 'get', key: 'k0' }, [5990, 6000], { op: 'get', revision: 102 });
    const h = withEvents([grant, attach, read], [putEvent(101, 'k0', 'a', { lease: L }), delEvent(102, 'k0')], 102, {});
    const result = checkHistory(h);
    expect(result.violations).toEqual([]);
    expect(result.counts.leaseExpiries).toBe(1);
  });

  it('one that expires before its TTL is caught: a read saw its keys gone 2 s after a keep-alive', () => {
    const keep = ok(1, { op: 'lease-keepalive', lease: L }, [3000, 3010], { op: 'lease-keepalive', revision: 101, ttlSeconds: 5 });
    const read = ok(2, { op: 'get', key: 'k0' }, [4990, 5000], { op: 'get', revision: 102 });
    const v = only(withEvents([grant, attach, keep, read], [putEvent(101, 'k0', 'a', { lease: L }), delEvent(102, 'k0')], 102, {}), 'lease');
    expect(v.message).toMatch(/expired at revision 102, seen by 5000 ms, though it was refreshed at 3000 ms: 3000 ms early/);
  });

  it('an expiry that leaves one of its keys behind is no expiry: a change nobody asked for', () => {
    const both = ok(1, { op: 'put', key: 'k1', value: 'b', lease: L }, [31, 40], { op: 'put', revision: 102 });
    const h = withEvents([grant, attach, both], [putEvent(101, 'k0', 'a', { lease: L }), putEvent(102, 'k1', 'b', { lease: L }), delEvent(103, 'k0')], 103, { k1: { value: 'b', modRevision: 102, lease: L } });
    expect(kindsOf(h)).toEqual(['unexplained-change']);
  });

  it('a revoke deletes every key of the lease at its revision; a put on the lease after it, committed, is caught', () => {
    const revoke = ok(1, { op: 'lease-revoke', lease: L }, [40, 50], { op: 'lease-revoke', revision: 102 });
    const late = unknown(2, { op: 'put', key: 'k1', value: 'late', lease: L }, [60, 70]);
    const h = withEvents([grant, attach, revoke, late], [putEvent(101, 'k0', 'a', { lease: L }), delEvent(102, 'k0'), putEvent(103, 'k1', 'late', { lease: L })], 103, { k1: { value: 'late', modRevision: 103, lease: L } });
    const result = checkHistory(h);
    expect(result.violations.map((v) => v.kind)).toEqual(['lease', 'lease']);
    expect(result.violations[0]!.message).toMatch(/lease 7587887654612345678 is gone by then/);
  });

  it('a revoke acknowledged while its keys stay is a lost write', () => {
    const revoke = ok(1, { op: 'lease-revoke', lease: L }, [40, 50], { op: 'lease-revoke', revision: 101 });
    expect(kindsOf(withEvents([grant, attach, revoke], [putEvent(101, 'k0', 'a', { lease: L })], 101, { k0: { value: 'a', modRevision: 101, lease: L } }))).toEqual(['lost-write']);
  });
});

describe('Kubernetes-shaped traffic', () => {
  const create = (client: number, key: string, value: string) => ({ op: 'txn', compare: [{ key, target: 'create', equals: 0 }], success: [{ op: 'put', key, value }], failure: [{ op: 'get', key }] }) as Request;
  const update = (key: string, mod: number, value: string) => ({ op: 'txn', compare: [{ key, target: 'mod', equals: mod }], success: [{ op: 'put', key, value }], failure: [{ op: 'get', key }] }) as Request;
  const guardedDelete = (key: string, mod: number) => ({ op: 'txn', compare: [{ key, target: 'mod', equals: mod }], success: [{ op: 'delete', key }], failure: [{ op: 'get', key }] }) as Request;
  const kv = (key: string, value: string, modRevision: number, createRevision = modRevision, version = 1) => ({ key, value, modRevision, createRevision, version });

  // o0 created at 101, o1 at 102, o2 at 103; o0 updated at 104.
  const base = [
    ok(1, create(1, 'o0', 'a'), [0, 10], { op: 'txn', revision: 101, succeeded: true }),
    ok(1, create(1, 'o1', 'b'), [11, 20], { op: 'txn', revision: 102, succeeded: true }),
    ok(1, create(1, 'o2', 'c'), [21, 30], { op: 'txn', revision: 103, succeeded: true }),
    ok(1, update('o0', 101, 'a2'), [31, 40], { op: 'txn', revision: 104, succeeded: true }),
  ];
  const baseEvents = [putEvent(101, 'o0', 'a'), putEvent(102, 'o1', 'b'), putEvent(103, 'o2', 'c'), putEvent(104, 'o0', 'a2')];
  const baseFinal = { o0: { value: 'a2', modRevision: 104 }, o1: { value: 'b', modRevision: 102 }, o2: { value: 'c', modRevision: 103 } };

  it('guarded creates and updates, a conflict that reads the object back, a list in pages at one revision, a get of the past: legal', () => {
    const conflict = ok(2, update('o0', 101, 'x'), [41, 50], { op: 'txn', revision: 104, succeeded: false, reads: [kv('o0', 'a2', 104, 101, 2)] });
    const page1 = ok(2, { op: 'list', prefix: 'o', limit: 2 }, [51, 60], { op: 'list', revision: 104, kvs: [kv('o0', 'a2', 104, 101, 2), kv('o1', 'b', 102)], more: true, count: 3 });
    const page2 = ok(2, { op: 'list', prefix: 'o', start: 'o1\0', limit: 2, revision: 104 }, [61, 70], { op: 'list', revision: 104, kvs: [kv('o2', 'c', 103)], more: false, count: 1 });
    const past = ok(3, { op: 'get', key: 'o0', revision: 102 }, [71, 80], { op: 'get', revision: 104, value: 'a', modRevision: 101, createRevision: 101, version: 1 });
    const h = withEvents([...base, conflict, page1, page2, past], baseEvents, 104, baseFinal);
    expect(checkHistory(h).violations).toEqual([]);
  });

  it('a page that skips a key is caught', () => {
    const page2 = ok(2, { op: 'list', prefix: 'o', start: 'o1\0', limit: 2, revision: 104 }, [61, 70], { op: 'list', revision: 104, kvs: [], more: false, count: 0 });
    expect(only(withEvents([...base, page2], baseEvents, 104, baseFinal), 'wrong-value').message).toMatch(/at revision 104 the range held o2=c/);
  });

  it('a conflict answered with a stale object is caught (the read of a failed guard is the present)', () => {
    const conflict = ok(2, update('o0', 101, 'x'), [41, 50], { op: 'txn', revision: 104, succeeded: false, reads: [kv('o0', 'a', 101)] });
    expect(kindsOf(withEvents([...base, conflict], baseEvents, 104, baseFinal))).toEqual(['wrong-value']);
  });

  it('an update whose guard did not hold, committed though its outcome was unknown, is caught: a lost update', () => {
    const lost = unknown(2, update('o1', 101, 'lost'), [41, 50]); // o1 was created at 102: its mod_revision was never 101
    const h = withEvents([...base, lost], [...baseEvents, putEvent(105, 'o1', 'lost')], 105, { ...baseFinal, o1: { value: 'lost', modRevision: 105 } });
    expect(only(h, 'compare').message).toMatch(/mod\(o1\) was 102, not 101/);
  });

  it('a guarded delete whose outcome is unknown: committed where its guard held, legal', () => {
    const del = unknown(2, guardedDelete('o1', 102), [41, 50]);
    const h = withEvents([...base, del], [...baseEvents, delEvent(105, 'o1')], 105, { o0: baseFinal.o0, o2: baseFinal.o2 });
    const result = checkHistory(h);
    expect(result.violations).toEqual([]);
    expect(result.counts.unknownCommitted).toBe(1);
  });
});

describe('what a history says beyond the changes', () => {
  const w1 = ok(1, { op: 'put', key: 'k0', value: 'a' }, [0, 10], { op: 'put', revision: 101 });
  const w2 = ok(1, { op: 'put', key: 'k0', value: 'b' }, [11, 20], { op: 'put', revision: 102 });

  it('prev_kv must be what the key held just before', () => {
    const h = withEvents([w1, w2], [putEvent(101, 'k0', 'a'), putEvent(102, 'k0', 'b')], 102, { k0: { value: 'b', modRevision: 102 } });
    h.watches[0]!.prevKv = true;
    h.watches[0]!.events[0]!.prev = null;
    h.watches[0]!.events[1]!.prev = { value: 'a', modRevision: 101 };
    expect(checkHistory(h).violations).toEqual([]);
    h.watches[0]!.events[1]!.prev = { value: 'zz', modRevision: 101 };
    expect(only(h, 'watch-event').message).toMatch(/says the key held zz \(mod 101\) before; it held a \(mod 101\)/);
  });

  it('a progress notification promises every change up to its revision was sent before it', () => {
    const h = withEvents([w1, w2], [putEvent(101, 'k0', 'a'), putEvent(102, 'k0', 'b')], 102, { k0: { value: 'b', modRevision: 102 } });
    h.watches[0]!.progress = [{ revision: 101, batch: 101, atMs: 15 }];
    expect(checkHistory(h).violations).toEqual([]);
    h.watches[0]!.progress = [{ revision: 102, batch: 101, atMs: 15 }];
    expect(kindsOf(h)).toContain('watch-order');
  });

  it("members' hashes at one revision must agree", () => {
    const h = withEvents([w1], [putEvent(101, 'k0', 'a')], 101, { k0: { value: 'a', modRevision: 101 } });
    h.hashes = [
      { member: 'etcd1', revision: 101, compactRevision: 0, hash: 1234 },
      { member: 'etcd2', revision: 101, compactRevision: 0, hash: 1234 },
    ];
    expect(checkHistory(h).violations).toEqual([]);
    h.hashes.push({ member: 'etcd3', revision: 101, compactRevision: 0, hash: 99 });
    expect(only(h, 'hash-mismatch').message).toMatch(/etcd3 63/);
  });

  it('another writer moving the store on (revisions with none of our keys) spoils nothing: the final read is as of the end marker', () => {
    // Revisions 102–150 are another client's (a Kubernetes API server renewing its leases): no event of ours.
    const w3 = ok(1, { op: 'put', key: 'k0', value: 'c' }, [30, 40], { op: 'put', revision: 151 });
    const h = withEvents([w1, w3], [putEvent(101, 'k0', 'a'), putEvent(151, 'k0', 'c')], 151, { k0: { value: 'c', modRevision: 151 } });
    h.final = { revision: 151, readAtRevision: 190, callMs: 50, values: { k0: { value: 'c', modRevision: 151 } } };
    expect(checkHistory(h).violations).toEqual([]);
  });

  it('a final read at an older revision than an answer given before it began is caught', () => {
    const h = withEvents([w1, w2], [putEvent(101, 'k0', 'a'), putEvent(102, 'k0', 'b')], 102, { k0: { value: 'b', modRevision: 102 } });
    h.final = { revision: 101, readAtRevision: 101, callMs: 30, values: { k0: { value: 'a', modRevision: 101 } } };
    expect(only(h, 'stale-read').message).toMatch(/final read/);
  });
});
