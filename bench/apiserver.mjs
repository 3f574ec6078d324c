#!/usr/bin/env node
// Benchmark (figures, not pass/fail): Kubernetes' API server (`etcd-lab apiserver`) through every
// procedure of the etcd operations guide, beside `check`'s workload on etcd through HAProxy. The
// figures come from the e2e test, which writes them to test-artifacts/apiserver-procedures-{plain,TLS}.json:
//   node bench/apiserver.mjs [--procedures N]   (N > 0: run the test first, N rounds, every procedure in both modes)
// The API server through leader failures, wiring against wiring: bench/apiserver-failover.mjs.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { median, option } from './lib.mjs';

const ROUNDS = Number(option('procedures', 0));
if (ROUNDS > 0) {
  execFileSync('npx', ['vitest', 'run', '--project', 'e2e', 'test/e2e/apiserver-procedures.test.ts'], {
    stdio: 'inherit',
    env: { ...process.env, ETCD_LAB_APISERVER_ROUNDS: String(ROUNDS), ETCD_LAB_APISERVER_BOTH_MODES: '1' },
  });
}
const fmt = (xs) => (xs.length ? `median ${median(xs)} ms, max ${Math.max(...xs)} ms` : '—');
for (const mode of ['plain', 'TLS']) {
  let figures;
  try {
    figures = JSON.parse(readFileSync(join('test-artifacts', `apiserver-procedures-${mode}.json`), 'utf8'));
  } catch {
    console.log(`${mode}: no figures yet (test-artifacts/apiserver-procedures-${mode}.json): run with --procedures N`);
    continue;
  }
  const byProcedure = new Map();
  for (const f of figures) byProcedure.set(f.procedure, [...(byProcedure.get(f.procedure) ?? []), f]);
  console.log(`\nEvery procedure (${mode}; ${figures.length} windows): longest gap in acknowledged writes, /readyz after the window`);
  for (const [name, rows] of byProcedure) {
    console.log(`  ${name.padEnd(24)} API ${fmt(rows.map((r) => r.api.longestGapMs))}   etcd through HAProxy ${fmt(rows.map((r) => r.etcd.longestGapMs))}   /readyz ${fmt(rows.map((r) => r.readyAfterMs))}`);
  }
}
