#!/usr/bin/env node
// Benchmark (figures, not pass/fail): how fast the CLI answers before any Docker work: `--help`,
// a command's `--help`, and `generate` in a scratch project. Median and max of N runs each.
//   node bench/cli-start.mjs [--runs 20]
// The target is `--help` under 0.15 s: commands import their heavy code only when they run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, option } from './lib.mjs';

const BIN = fileURLToPath(new URL('../bin/etcd-lab.js', import.meta.url));
const runs = Number(option('runs', '20'));
const dir = mkdtempSync(join(tmpdir(), 'etcd-lab-bench-cli-'));
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_LAB_')));

function time(args) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, env: { ...env, CI: 'true' }, stdio: 'ignore' });
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (r.status !== 0) throw new Error(`etcd-lab ${args.join(' ')} exited ${r.status}`);
  }
  return { median: median(samples), max: Math.max(...samples) };
}

try {
  console.log(`etcd-lab start-up, ${runs} runs each (ms)`);
  for (const args of [['--help'], ['up', '--help'], ['generate', '--quiet']]) {
    const { median: m, max } = time(args);
    console.log(`  ${`etcd-lab ${args.join(' ')}`.padEnd(28)} median ${m.toFixed(0).padStart(4)}  max ${max.toFixed(0).padStart(4)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
