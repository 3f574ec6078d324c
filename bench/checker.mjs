#!/usr/bin/env node
// Benchmark (figures, not pass/fail): how long the checker takes on large histories, and how it
// grows. Legal histories are simulated: 8 clients with overlapping calls on 10 keys (gets, puts,
// deletes, compare-and-sets, two-key transactions; 2% of writes time out, half of those commit),
// two watch streams.
//   node bench/checker.mjs [--ops 100000] [--runs 3]
// Goal: 100,000 operations in seconds; a million judged and drawn. The checker replays an etcd
// model in O(n log n); validating reads every field once; the report is bounded in size.
import { checkHistory } from '../dist/checker/check.js';
import { HISTORY_FORMAT } from '../dist/checker/history.js';
import { validateHistory } from '../dist/checker/validate.js';
import { renderCheckReport } from '../dist/render/check-report.js';
import { median, option } from './lib.mjs';

const sizes = option('ops', '') ? [Number(option('ops', ''))] : [10_000, 100_000, 300_000, 1_000_000];
const runs = Number(option('runs', '3'));

/** A seeded generator, so each run checks the same history. */
function random(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function simulate(n, seed = 1) {
  const rnd = random(seed);
  const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
  const store = new Map();
  let revision = 100;
  let batch = 0;
  const events = [];
  const operations = [];
  const clock = Array.from({ length: 8 }, () => 0);
  const commit = (changes) => {
    revision += 1;
    batch += 1;
    for (const c of changes) {
      if (c.value === undefined) store.delete(c.key);
      else store.set(c.key, { value: c.value, modRevision: revision });
      events.push({ revision, key: c.key, type: c.value === undefined ? 'delete' : 'put', ...(c.value === undefined ? {} : { value: c.value }), modRevision: revision, batch });
    }
    return revision;
  };
  // Each client's next call starts after its last return; effects happen in the order of their effect times.
  const pending = [];
  for (let i = 0; i < n; i++) {
    const client = i % 8;
    const callMs = clock[client] + rnd() * 2;
    const effectMs = callMs + rnd() * 3;
    const returnMs = effectMs + rnd() * 3;
    clock[client] = returnMs;
    pending.push({ id: i + 1, client, callMs, effectMs, returnMs });
  }
  pending.sort((a, b) => a.effectMs - b.effectMs);
  for (const p of pending) {
    const key = keys[Math.floor(rnd() * keys.length)];
    const value = `c${p.client}-${p.id}`;
    const kind = rnd();
    let request;
    let response;
    const timedOut = rnd() < 0.02;
    const applies = !timedOut || rnd() < 0.5;
    if (kind < 0.5) {
      request = { op: 'get', key };
      const held = store.get(key);
      response = { op: 'get', revision, ...(held ? { value: held.value, modRevision: held.modRevision } : {}) };
    } else if (kind < 0.75) {
      request = { op: 'put', key, value };
      response = applies ? { op: 'put', revision: commit([{ key, value }]) } : undefined;
    } else if (kind < 0.85) {
      request = { op: 'delete', key };
      response = !applies ? undefined : store.has(key) ? { op: 'delete', revision: commit([{ key }]), deleted: 1 } : { op: 'delete', revision, deleted: 0 };
    } else if (kind < 0.95) {
      const mod = store.get(key)?.modRevision ?? 0;
      const expect = rnd() < 0.7 ? mod : mod + 1;
      request = { op: 'cas', key, modRevision: expect, value };
      response = !applies ? undefined : expect === mod ? { op: 'cas', revision: commit([{ key, value }]), succeeded: true } : { op: 'cas', revision, succeeded: false };
    } else {
      const other = keys[(keys.indexOf(key) + 1) % keys.length];
      request = { op: 'txn', success: [{ op: 'put', key, value }, { op: 'put', key: other, value: `${value}b` }] };
      response = applies ? { op: 'txn', revision: commit(request.success), succeeded: true } : undefined;
    }
    const outcome = request.op !== 'get' && timedOut ? 'unknown' : 'ok';
    operations.push({ id: p.id, client: p.client, via: p.client < 6 ? `etcd${(p.client % 3) + 1}` : 'haproxy', request, callMs: p.callMs, returnMs: p.returnMs, outcome, ...(outcome === 'ok' ? { response } : { error: 'deadline exceeded' }) });
  }
  const endMs = clock.reduce((a, b) => Math.max(a, b), 0);
  const stream = (id) => ({ id, watcher: id, via: 'haproxy', fromRevision: 101, startMs: 0, endMs, events, end: 'closed', upToRevision: revision });
  return {
    format: HISTORY_FORMAT,
    lab: 'bench',
    startedAt: new Date().toISOString(),
    keys,
    startRevision: 100,
    operations: operations.sort((a, b) => a.id - b.id),
    watches: [stream(1), stream(2)],
    faults: [],
    final: { revision, values: Object.fromEntries(store) },
  };
}

console.log(`checker on simulated histories, ${runs} runs each (ms, median)`);
console.log('operations   committed revisions   validate     check    report   check ops/s   verdict');
for (const n of sizes) {
  const raw = simulate(n);
  const samples = { validate: [], check: [], report: [] };
  let result;
  for (let i = 0; i < runs; i++) {
    let t = performance.now();
    const history = validateHistory(raw);
    samples.validate.push(performance.now() - t);
    result = checkHistory(history);
    samples.check.push(result.elapsedMs);
    t = performance.now();
    renderCheckReport(history, result);
    samples.report.push(performance.now() - t);
  }
  const [v, c, r] = [median(samples.validate), median(samples.check), median(samples.report)];
  console.log(
    `${String(n).padStart(10)}   ${String(result.counts.committedRevisions).padStart(19)}   ${v.toFixed(0).padStart(8)}   ${c.toFixed(0).padStart(7)}   ${r.toFixed(0).padStart(7)}   ${Math.round(n / (c / 1000)).toLocaleString('en').padStart(11)}   ${result.ok ? 'ok' : result.violations.map((x) => x.kind).join(',')}`,
  );
}
