// The checker on hand-made histories: each kind of violation it must find, shown by the fewest
// operations, and legal histories that look suspicious, which it must pass.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkHistory, stateAt, type ViolationKind } from '../../src/checker/check.js';
import { renderCheckReport } from '../../src/render/check-report.js';
import { expectGolden } from './golden.js';
import { HistoryBuilder } from './history-builder.js';

const GOLDEN = fileURLToPath(new URL('../golden', import.meta.url));

const kinds = (h: ReturnType<HistoryBuilder['history']>) => checkHistory(h).violations.map((v) => v.kind);

function only(h: ReturnType<HistoryBuilder['history']>, kind: ViolationKind) {
  const result = checkHistory(h);
  expect(result.ok).toBe(false);
  expect(result.violations.map((v) => v.kind)).toEqual([kind]);
  return result.violations[0]!;
}

describe('legal histories pass', () => {
  it('sequential puts, gets, deletes, compare-and-sets and a transaction, with two watches', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    b.run(2, { op: 'get', key: 'k0' }, 20, 30);
    b.run(1, { op: 'cas', key: 'k0', modRevision: 101, value: 'c1-2' }, 40, 50);
    b.run(2, { op: 'cas', key: 'k0', modRevision: 101, value: 'c2-1' }, 60, 70); // refused: mod is 102 now
    b.run(1, { op: 'txn', success: [{ op: 'put', key: 'k1', value: 'c1-3' }, { op: 'put', key: 'k2', value: 'c1-4' }] }, 80, 90);
    b.run(2, { op: 'delete', key: 'k1' }, 100, 110);
    b.run(2, { op: 'delete', key: 'k1' }, 120, 130); // deletes nothing
    b.run(1, { op: 'get', key: 'k1' }, 140, 150);
    const result = checkHistory(b.history());
    expect(result.violations).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.counts).toMatchObject({ operations: 8, ok: 8, committedRevisions: 4, watchStreams: 2 });
  });

  it('concurrent operations may take effect in any order within their intervals', () => {
    const b = new HistoryBuilder();
    // Both calls overlap; the one called later takes effect first.
    b.run(2, { op: 'put', key: 'k0', value: 'c2-1' }, 5, 50);
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 60);
    b.run(3, { op: 'get', key: 'k0' }, 10, 70); // sees c1-1, overlapping both
    expect(checkHistory(b.history()).violations).toEqual([]);
  });

  it('a write that timed out and committed later is no lost write, nor a stale read before it', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    // Client 2 gives up at 30; a read at 40–50 does not see it yet; it commits after that.
    const r1 = b.run(3, { op: 'get', key: 'k0' }, 40, 50);
    const late = b.run(2, { op: 'put', key: 'k0', value: 'c2-1' }, 20, 30, { outcome: 'unknown' });
    const r2 = b.run(3, { op: 'get', key: 'k0' }, 60, 70);
    expect(r1.response).toMatchObject({ value: 'c1-1' });
    expect(r2.response).toMatchObject({ value: 'c2-1' });
    const result = checkHistory(b.history());
    expect(result.violations).toEqual([]);
    expect(result.committedAt[late.id]).toBe(102);
    expect(result.counts).toMatchObject({ unknownCommitted: 1, unknownNotCommitted: 0 });
  });

  it('a write whose outcome is unknown and that never committed is fine too', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10, { outcome: 'unknown', applied: false });
    b.run(2, { op: 'get', key: 'k0' }, 20, 30);
    expect(checkHistory(b.history()).counts).toMatchObject({ unknownNotCommitted: 1 });
    expect(kinds(b.history())).toEqual([]);
  });

  it('of two deletes with unknown outcomes on one key, the one whose place real time allows is taken', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    const early = b.run(2, { op: 'delete', key: 'k0' }, 20, 70, { outcome: 'unknown' }); // commits at 102
    b.run(3, { op: 'put', key: 'k1', value: 'c3-1' }, 30, 45); // 103, done before `late` is sent
    const late = b.run(4, { op: 'delete', key: 'k0' }, 50, 60, { outcome: 'unknown', applied: false });
    const h = b.history();
    // Listed first, the late one would be tried first; at 102 it would sit before a put that ended before it began.
    h.operations = [late, ...h.operations.filter((op) => op !== late)];
    const result = checkHistory(h);
    expect(result.violations).toEqual([]);
    expect(result.committedAt).toEqual(expect.objectContaining({ [early.id]: 102 }));
  });

  it('a broken watch stream resumed from where it was delivers everything between them', () => {
    const b = new HistoryBuilder();
    for (let i = 0; i < 4; i++) b.run(1, { op: 'put', key: `k${i % 3}`, value: `c1-${i}` }, i * 10, i * 10 + 5);
    const all = b.stream(1);
    const first = { ...all, end: 'broken' as const, events: all.events.slice(0, 2), upToRevision: undefined };
    const resumed = { ...all, id: 2, fromRevision: 103, events: all.events.slice(2) };
    expect(kinds(b.history([first, resumed]))).toEqual([]);
  });
});

describe('each kind of violation is found, and shown by the operations that prove it', () => {
  it('a stale read: a read misses a write that completed before it began', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    const w = b.run(1, { op: 'put', key: 'k0', value: 'c1-2' }, 20, 30);
    const r = b.run(2, { op: 'get', key: 'k0' }, 40, 50);
    // Linearizable, yet answered from before w: revision 101, the old value.
    r.response = { op: 'get', revision: 101, value: 'c1-1', modRevision: 101 };
    const v = only(b.history(), 'stale-read');
    expect(v.operations).toEqual([w.id, r.id]);
    expect(v.message).toMatch(/^stale read: c2→haproxy get k0 ok @101/);
  });

  it('the same read, serializable, is legal: a member may answer from its own, older state (counted)', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    b.run(1, { op: 'put', key: 'k0', value: 'c1-2' }, 20, 30);
    const r = b.run(2, { op: 'get', key: 'k0', serializable: true }, 40, 50);
    r.response = { op: 'get', revision: 101, value: 'c1-1', modRevision: 101 };
    const result = checkHistory(b.history());
    expect(result.violations).toEqual([]);
    expect(result.counts.staleSerializableReads).toBe(1);
  });

  it('but a serializable read must still be the store at the revision it names', () => {
    const b = new HistoryBuilder();
    const first = b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    const w = b.run(1, { op: 'put', key: 'k0', value: 'c1-2' }, 20, 30);
    const r = b.run(2, { op: 'get', key: 'k0', serializable: true }, 40, 50);
    r.response = { op: 'get', revision: 101, value: 'c1-2', modRevision: 102 };
    // The read, then the writer of what the store held there, then the writer of what it said.
    expect(only(b.history(), 'wrong-value').operations).toEqual([r.id, first.id, w.id]);
  });

  it('revisions going backwards for one client', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    b.run(1, { op: 'put', key: 'k1', value: 'c1-2' }, 20, 30);
    const r1 = b.run(2, { op: 'get', key: 'k1' }, 40, 50);
    const r2 = b.run(2, { op: 'get', key: 'k0' }, 60, 70);
    r2.response = { op: 'get', revision: 101, value: 'c1-1', modRevision: 101 };
    const v = only(b.history(), 'stale-read');
    expect(v.operations).toEqual([r1.id, r2.id]);
    expect(v.message).toMatch(/its revisions went backwards/);
  });

  it('a lost write: acknowledged, never committed', () => {
    const b = new HistoryBuilder();
    const w = b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    const h = b.history([b.stream(1, [])]);
    h.final.values = {};
    h.final.revision = 100;
    const result = checkHistory(h);
    expect(result.violations.map((v) => v.kind)).toContain('lost-write');
    expect(result.violations.find((v) => v.kind === 'lost-write')!.operations).toEqual([w.id]);
  });

  it('a lost update: one compare-and-set committed twice (a retry of a request that had gone through)', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    const cas = b.run(2, { op: 'cas', key: 'k0', modRevision: 101, value: 'c2-1' }, 20, 30);
    b.run(1, { op: 'put', key: 'k0', value: 'c1-2' }, 40, 50);
    // The retried request lands again at 104, overwriting c1-2.
    const replay = { revision: 104, key: 'k0', type: 'put' as const, value: 'c2-1', modRevision: 104, batch: 99 };
    const h = b.history([b.stream(1, [...b.events, replay]), b.stream(2, [...b.events, replay])]);
    for (const w of h.watches) w.upToRevision = 104;
    h.final = { revision: 104, values: { k0: { value: 'c2-1', modRevision: 104 } } };
    expect(only(h, 'applied-twice')).toMatchObject({ operations: [cas.id], revision: 104 });
  });

  it('a compare-and-set that applied although the key had moved on', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    b.run(1, { op: 'put', key: 'k0', value: 'c1-2' }, 20, 30);
    const cas = b.run(2, { op: 'cas', key: 'k0', modRevision: 102, value: 'c2-1' }, 40, 50);
    cas.request = { op: 'cas', key: 'k0', modRevision: 101, value: 'c2-1' }; // it compared against 101, which no longer held
    const v = only(b.history(), 'compare');
    expect(v.operations[0]).toBe(cas.id);
    expect(v.message).toMatch(/mod_revision was 102/);
  });

  it('a read returning a value the store did not hold at its revision', () => {
    const b = new HistoryBuilder();
    const w = b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    const r = b.run(2, { op: 'get', key: 'k0' }, 20, 30);
    r.response = { op: 'get', revision: 101, value: 'c9-9', modRevision: 101 };
    const v = only(b.history(), 'wrong-value');
    expect(v.operations).toEqual([r.id, w.id]);
  });

  it('a write reported failed for certain that committed after all', () => {
    const b = new HistoryBuilder();
    const w = b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10, { outcome: 'failed', applied: true });
    expect(only(b.history(), 'failed-write-applied').operations).toEqual([w.id]);
  });

  it('a transaction committed in part', () => {
    const b = new HistoryBuilder();
    const t = b.run(1, { op: 'txn', success: [{ op: 'put', key: 'k0', value: 'c1-1' }, { op: 'put', key: 'k1', value: 'c1-2' }] }, 0, 10);
    const partial = b.events.filter((e) => e.key === 'k0');
    const h = b.history([b.stream(1, partial), b.stream(2, partial)]);
    h.final.values = { k0: { value: 'c1-1', modRevision: 101 } };
    expect(only(h, 'atomicity').operations).toEqual([t.id]);
  });

  it('a watch gap: one stream skips a change the other delivered', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    b.run(1, { op: 'put', key: 'k1', value: 'c1-2' }, 20, 30);
    const v = only(b.history([b.stream(1), b.stream(2, b.events.slice(1))]), 'watch-gap');
    expect(v).toMatchObject({ watches: [2, 1], revision: 101 });
  });

  it('a duplicate watch event', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    expect(only(b.history([b.stream(1), b.stream(2, [...b.events, ...b.events])]), 'watch-duplicate').watches).toEqual([2]);
  });

  it('watch events out of order, and two watches that disagree on a revision', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    b.run(1, { op: 'put', key: 'k1', value: 'c1-2' }, 20, 30);
    expect(kinds(b.history([b.stream(1), b.stream(2, [...b.events].reverse())]))).toEqual(['watch-order']);
    const other = b.events.map((e) => (e.revision === 102 ? { ...e, value: 'c1-1' } : e));
    expect(kinds(b.history([b.stream(1), b.stream(2, other)]))).toEqual(['watch-mismatch']);
  });

  it('a change nobody asked for', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    const stray = { revision: 102, key: 'k1', type: 'put' as const, value: 'nobody', modRevision: 102, batch: 7 };
    const h = b.history([b.stream(1, [...b.events, stray])]);
    h.final = { revision: 102, values: { ...h.final.values, k1: { value: 'nobody', modRevision: 102 } } };
    (h.watches[0]!.upToRevision as number) = 102;
    expect(kinds(h)).toEqual(['unexplained-change']);
  });

  it('revisions no watch covered are said to be unknown, not passed', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    b.run(1, { op: 'put', key: 'k0', value: 'c1-2' }, 20, 30);
    const cut = { ...b.stream(1, b.events.slice(0, 1)), end: 'broken' as const, upToRevision: undefined };
    expect(kinds(b.history([cut]))).toEqual(['incomplete', 'lost-write', 'final-state']);
  });
});

describe('checking many operations', () => {
  it('reports each kind at most 20 times, and counts the rest', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-0' }, 0, 1);
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 2, 3);
    for (let i = 0; i < 30; i++) {
      const r = b.run(2, { op: 'get', key: 'k0' }, 10 + i * 2, 11 + i * 2);
      r.response = { op: 'get', revision: 101, value: 'c1-0', modRevision: 101 };
    }
    const result = checkHistory(b.history());
    expect(result.violations).toHaveLength(20);
    expect(result.more).toEqual({ 'stale-read': 10 });
  });
});

describe('random legal histories', () => {
  /** A seeded generator, so a failure is reproducible. */
  function random(seed: number) {
    let s = seed >>> 0;
    return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  }

  /** 8 clients with overlapping calls on 4 keys, each operation taking effect inside its interval; some writes time out. */
  function simulate(seed: number, n = 3000) {
    const rnd = random(seed);
    const b = new HistoryBuilder(['k0', 'k1', 'k2', 'k3']);
    const clock = Array.from({ length: 8 }, () => 0);
    const planned = Array.from({ length: n }, (_, i) => {
      const client = i % 8;
      const callMs = clock[client]! + rnd() * 2;
      const effectMs = callMs + rnd() * 3;
      const returnMs = effectMs + rnd() * 3;
      clock[client] = returnMs;
      return { i, client, callMs, effectMs, returnMs };
    });
    for (const p of planned.sort((x, y) => x.effectMs - y.effectMs)) {
      const key = `k${Math.floor(rnd() * 4)}`;
      const value = `c${p.client}-${p.i}`;
      const kind = rnd();
      const timedOut = kind >= 0.5 && rnd() < 0.05;
      const opts = timedOut ? { outcome: 'unknown' as const, applied: rnd() < 0.5 } : {};
      if (kind < 0.5) b.run(p.client, { op: 'get', key }, p.callMs, p.returnMs);
      else if (kind < 0.8) b.run(p.client, { op: 'put', key, value }, p.callMs, p.returnMs, opts);
      else if (kind < 0.9) b.run(p.client, { op: 'delete', key }, p.callMs, p.returnMs, opts);
      else b.run(p.client, { op: 'cas', key, modRevision: rnd() < 0.5 ? 0 : b.revision, value }, p.callMs, p.returnMs, opts);
    }
    return b;
  }

  it.each([1, 2, 3, 4, 5])('seed %i: passes, and a stale read planted in it is found', (seed) => {
    const b = simulate(seed);
    expect(checkHistory(b.history()).violations).toEqual([]);
    // Plant one: a late read answered from the state of long before.
    const reads = b.operations.filter((op) => op.request.op === 'get' && op.response!.revision > 150);
    const victim = reads.at(-1)!;
    const old = b.operations.find((op) => op.request.op === 'get' && op.response!.revision <= 120)!;
    victim.request = old.request;
    victim.response = old.response;
    expect(checkHistory(b.history()).violations.map((v) => v.kind)).toContain('stale-read');
  });
});

describe('the report', () => {
  it('draws a history far past what it draws one by one (200,000 operations): in bounded size, saying it downsampled', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-0' }, 0, 1);
    const h = b.history();
    for (let i = 1; i < 200_000; i++) h.operations.push({ id: i + 1, client: 1 + (i % 8), via: 'haproxy', request: { op: 'get', key: 'k0' }, callMs: 2 + i, returnMs: 2.5 + i, outcome: 'ok', response: { op: 'get', revision: 101, value: 'c1-0', modRevision: 101 } });
    h.faults = [{ kind: 'kill', target: 'etcd1', startMs: 50_000, endMs: 52_000 }];
    const result = checkHistory(h);
    expect(result.ok).toBe(true);
    const html = renderCheckReport(h, result);
    expect(html).toContain('200000 operations: each lane drawn in 2-pixel columns');
    expect(html.length).toBeLessThan(3_000_000);
  });

  it('one page: lanes per client and watcher, faults shaded, a violation outlined and listed (golden)', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10, { via: 'etcd1' });
    b.run(2, { op: 'put', key: 'k1', value: 'c2-1' }, 5, 40, { outcome: 'unknown', via: 'haproxy' });
    const w = b.run(1, { op: 'put', key: 'k0', value: 'c1-2' }, 50, 60, { via: 'etcd1' });
    const r = b.run(2, { op: 'get', key: 'k0' }, 70, 80, { via: 'haproxy' });
    b.run(1, { op: 'get', key: 'k2' }, 90, 95, { outcome: 'failed', via: 'etcd1' });
    r.response = { op: 'get', revision: 101, value: 'c1-1', modRevision: 101 };
    const h = b.history();
    h.faults = [{ kind: 'kill', target: 'etcd1', startMs: 20, endMs: 45 }];
    const result = { ...checkHistory(h), elapsedMs: 1 };
    expect(result.violations.map((v) => v.operations)).toEqual([[w.id, r.id]]);
    const html = renderCheckReport(h, result);
    expect(html).toContain('<p class="verdict fail">FAIL: 5 operations');
    expect(html.match(/stroke="#d500f9"/g)).toHaveLength(2);
    expect(html).toContain('kill etcd1');
    expectGolden(join(GOLDEN, 'check-report', 'report.html'), html);
  });
});

describe('concurrent deletes of one key', () => {
  it('the one that deleted it and the one that found it gone, answered at the same revision: no violation', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    // Called together: c8's (listed first) finds k0 already gone and answers at 102 with deleted 0;
    // c3's is the one that deleted it, at 102.
    const c8 = b.run(8, { op: 'delete', key: 'k0' }, 20, 31);
    const c3 = b.run(3, { op: 'delete', key: 'k0' }, 21, 30);
    [c8.response, c3.response] = [{ op: 'delete', revision: 102, deleted: 0 }, { op: 'delete', revision: 102, deleted: 1 }];
    expect(checkHistory(b.history()).violations).toEqual([]);
  });
});

describe('the store a snapshot must bring back (stateAt)', () => {
  it('is the replayed key space as of the revision: later changes absent, earlier ones with their revisions', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'a' }, 0, 10); // 101
    b.run(1, { op: 'put', key: 'k1', value: 'b' }, 20, 30); // 102
    b.run(2, { op: 'put', key: 'k0', value: 'c' }, 40, 50); // 103
    b.run(2, { op: 'delete', key: 'k1' }, 60, 70); // 104
    b.run(1, { op: 'put', key: 'k2', value: 'd' }, 80, 90); // 105
    const h = b.history();
    expect(stateAt(h, 103)).toEqual([
      { key: 'k0', value: 'c', modRevision: 103, createRevision: 101, version: 2 },
      { key: 'k1', value: 'b', modRevision: 102, createRevision: 102, version: 1 },
    ]);
    expect(stateAt(h, 105).map((kv) => kv.key)).toEqual(['k0', 'k2']);
    expect(stateAt(h, 100)).toEqual([]);
  });

  it('refuses a revision the watches did not cover, and a history that does not check', () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'a' }, 0, 10);
    expect(() => stateAt(b.history(), 102)).toThrow(/revision 102 is outside what the history's watches covered \(100–101\)/);
    const h = b.history();
    h.watches[0]!.events[0]!.value = 'tampered';
    expect(() => stateAt(h, 101)).toThrow(/the history does not check/);
  });
});
