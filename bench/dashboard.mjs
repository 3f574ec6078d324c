#!/usr/bin/env node
// Benchmark (figures, not pass/fail): what `etcd-lab dashboard` with a page open costs the lab, as
// check's clients feel it. One 3-member lab, one dashboard server for the whole run; rounds of
// --seconds each in turn without a page (the server then reads nothing from etcd) and with one (a
// page's event stream subscribed: the members read every second), check's workload (8 clients, the
// etcd traffic kind, linearizable reads, no rate limit) measuring operations acknowledged per second.
//   node bench/dashboard.mjs [--rounds 4] [--seconds 20] [--interval 1]
// Prints each round, the medians, and the cost (1 - with/without); also the requests the server
// made per second of polling (counted from its own requests to the members and HAProxy).
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseDotenv } from '../dist/config/local.js';
import { Workload } from '../dist/workload/workload.js';
import { readFileSync } from 'node:fs';
import { benchImages, median, option, RESULTS, scratchLab } from './lib.mjs';

const rounds = Number(option('rounds', 4));
const seconds = Number(option('seconds', 20));
const interval = option('interval', '1');
const BIN = new URL('../bin/etcd-lab.js', import.meta.url).pathname;

const lab = await scratchLab({ name: `bench-dash-${process.pid}`, subnet: `10.231.${process.pid % 200}.0/24`, images: benchImages() });
const env = parseDotenv(readFileSync(join(lab.dir, '.env'), 'utf8'));
let server;
try {
  lab.cli('up', '-q');
  server = spawn(process.execPath, [BIN, 'dashboard', '--json', '--interval', interval], { cwd: lab.dir, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (c) => {
      out += c;
      const line = out.split('\n').find((l) => l.includes('"url"'));
      if (line) resolve(new URL(JSON.parse(line).url));
    });
    server.on('exit', (code) => reject(new Error(`etcd-lab dashboard exited ${code}`)));
  });
  const haproxy = `http://127.0.0.1:${env.ETCD_LAB_CLIENT_PORT}`;
  const client = { via: 'haproxy', endpoint: () => haproxy };

  /** Acknowledged operations per second of check's workload over `seconds`. */
  async function throughput(tag) {
    const workload = new Workload({ prefix: `bench/dashboard/${tag}/`, keys: 10, clients: Array(8).fill(client), watchers: [[client]], rate: 1e6, callTimeoutMs: 2000, reads: 'linearizable', control: haproxy, lab: lab.dir });
    await workload.start();
    await new Promise((r) => setTimeout(r, 2000)); // warm up
    const from = workload.operations.length;
    const started = Date.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const ops = workload.operations.slice(from).filter((o) => o.outcome === 'ok').length;
    const elapsed = (Date.now() - started) / 1000;
    await workload.stop();
    return ops / elapsed;
  }

  /** A page: the server's event stream, subscribed while `work` runs; the ticks it got. */
  async function withPage(work) {
    let ticks = 0;
    const req = request({ host: url.hostname, port: url.port, path: `/events?token=${url.searchParams.get('token')}` }, (res) => res.on('data', (c) => (ticks += (String(c).match(/event: tick/g) ?? []).length)));
    req.on('error', () => {});
    req.end();
    try {
      return { value: await work(), ticks };
    } finally {
      req.destroy();
    }
  }

  const without = [];
  const withDashboard = [];
  for (let round = 1; round <= rounds; round++) {
    // Alternating which goes first, so a drift over the run weighs on both alike.
    const order = round % 2 ? ['without', 'with'] : ['with', 'without'];
    for (const kind of order) {
      if (kind === 'without') without.push(await throughput(`r${round}-without`));
      else {
        const { value, ticks } = await withPage(() => throughput(`r${round}-with`));
        withDashboard.push(value);
        if (ticks < seconds / Number(interval) - 2) throw new Error(`the page got only ${ticks} ticks in ${seconds + 2} s: the dashboard did not poll`);
      }
      console.log(`round ${round} ${kind.padEnd(7)} a page: ${(kind === 'without' ? without : withDashboard).at(-1).toFixed(0)} ops/s`);
    }
  }
  const a = median(without);
  const b = median(withDashboard);
  const cost = 1 - b / a;
  console.log(`\nmedian without a page ${a.toFixed(0)} ops/s, with a page ${b.toFixed(0)} ops/s: the dashboard costs ${(cost * 100).toFixed(1)}% (goal < 2%)`);
  console.log(`rounds: without ${without.map((x) => x.toFixed(0)).join(', ')}; with ${withDashboard.map((x) => x.toFixed(0)).join(', ')}`);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'dashboard.json'), `${JSON.stringify({ rounds, seconds, intervalS: Number(interval), without, with: withDashboard, medianWithout: a, medianWith: b, cost }, null, 1)}\n`);
} finally {
  server?.kill('SIGINT');
  try {
    lab.cli('down', '--volumes', '--yes', '-q');
  } catch (error) {
    console.error(String(error));
  }
}
