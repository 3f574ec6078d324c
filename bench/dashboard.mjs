#!/usr/bin/env node
// Benchmark (figures, not pass/fail): what `etcd-lab dashboard` with a page open costs the lab, as
// check's clients feel it and as the lab's containers spend it. One 3-member lab, one dashboard
// server, one run of check's workload (8 clients through HAProxy, the etcd traffic kind,
// linearizable reads, no rate limit) for the whole bench; windows of --window seconds alternate
// with and without a page subscribed (A B B A …, so a drift over the run weighs on both alike; the
// server reads the members only while a page is open). Per window: operations acknowledged per
// second, and the CPU the lab's containers used (Docker's own accounting). Then, with no workload,
// the CPU the page's polling alone costs the lab, beside the CPU check's workload costs it.
//   node bench/dashboard.mjs [--windows 16] [--window 10] [--interval 1]
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import Docker from 'dockerode';
import { parseDotenv } from '../dist/config/local.js';
import { Workload } from '../dist/workload/workload.js';
import { benchImages, median, option, RESULTS, scratchLab } from './lib.mjs';

const windows = Number(option('windows', 16));
const windowS = Number(option('window', 10));
const interval = option('interval', '1');
const BIN = new URL('../bin/etcd-lab.js', import.meta.url).pathname;
const docker = new Docker();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const name = `bench-dash-${process.pid}`;
const lab = await scratchLab({ name, subnet: `10.231.${process.pid % 200}.0/24`, images: benchImages() });
const env = parseDotenv(readFileSync(join(lab.dir, '.env'), 'utf8'));
let server;
let workload;
try {
  lab.cli('up', '-q');
  const containers = (await docker.listContainers({ filters: { label: [`io.etcd-lab.lab=${name}`] } })).map((c) => docker.getContainer(c.Id));
  /** CPU nanoseconds the lab's containers (members and HAProxy) have used so far. */
  const labCpu = async () => (await Promise.all(containers.map((c) => c.stats({ stream: false })))).reduce((sum, s) => sum + s.cpu_stats.cpu_usage.total_usage, 0);

  server = spawn(process.execPath, [BIN, 'dashboard', '--json', '--interval', interval], { cwd: lab.dir, stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (c) => {
      out += c;
      const line = out.split('\n').find((l) => l.includes('"url"'));
      if (line) resolve(new URL(JSON.parse(line).url));
    });
    server.on('exit', (code) => reject(new Error(`etcd-lab dashboard exited ${code}`)));
  });
  /** A page: the server's event stream, subscribed until `close()`; the ticks it got. */
  const openPage = () => {
    const page = { ticks: 0 };
    const req = request({ host: url.hostname, port: url.port, path: `/events?token=${url.searchParams.get('token')}` }, (res) => res.on('data', (c) => (page.ticks += (String(c).match(/event: tick/g) ?? []).length)));
    req.on('error', () => {});
    req.end();
    page.close = () => req.destroy();
    return page;
  };
  /** One window with or without a page: what happened in it. */
  const measure = async (withPage, count) => {
    const page = withPage ? openPage() : undefined;
    await sleep(500); // the page's first read is under way before the window opens
    const [from, cpu0, t0] = [workload ? workload.operations.length : 0, await labCpu(), Date.now()];
    await sleep(windowS * 1000);
    const [to, cpu1, t1] = [workload ? workload.operations.length : 0, await labCpu(), Date.now()];
    page?.close();
    const seconds = (t1 - t0) / 1000;
    if (page && page.ticks < windowS / Number(interval) - 1) throw new Error(`the page got only ${page.ticks} ticks in a window: the dashboard did not poll`);
    const ok = count ? workload.operations.slice(from, to).filter((o) => o.outcome === 'ok').length : 0;
    return { opsPerS: ok / seconds, cpuMsPerS: (cpu1 - cpu0) / 1e6 / seconds };
  };

  // The polling alone, no workload: what a page costs an idle lab.
  const idle = { without: [], with: [] };
  for (let w = 0; w < 4; w++) for (const page of w % 2 ? [true, false] : [false, true]) idle[page ? 'with' : 'without'].push((await measure(page, false)).cpuMsPerS);

  const haproxy = `http://127.0.0.1:${env.ETCD_LAB_CLIENT_PORT}`;
  const client = { via: 'haproxy', endpoint: () => haproxy };
  workload = new Workload({ prefix: 'bench/dashboard/', keys: 10, clients: Array(8).fill(client), watchers: [[client]], rate: 1e6, callTimeoutMs: 2000, reads: 'linearizable', control: haproxy, lab: name });
  await workload.start();
  await sleep(3000); // warm up
  const rows = [];
  for (let w = 0; w < windows; w++) {
    const page = [false, true, true, false][w % 4];
    const r = await measure(page, true);
    rows.push({ page, ...r });
    console.log(`window ${String(w + 1).padStart(2)} ${page ? 'with   ' : 'without'} a page: ${r.opsPerS.toFixed(0).padStart(5)} ops/s, lab CPU ${r.cpuMsPerS.toFixed(0)} ms/s`);
  }
  await workload.stop();
  workload = undefined;

  const ops = (page) => median(rows.filter((r) => r.page === page).map((r) => r.opsPerS));
  const cpu = (page) => median(rows.filter((r) => r.page === page).map((r) => r.cpuMsPerS));
  const pollingCpu = median(idle.with) - median(idle.without);
  const checkCpu = cpu(false) - median(idle.without);
  const result = {
    windows,
    windowS,
    intervalS: Number(interval),
    opsPerSWithout: ops(false),
    opsPerSWith: ops(true),
    throughputCost: 1 - ops(true) / ops(false),
    idleLabCpuMsPerS: { without: median(idle.without), with: median(idle.with) },
    pollingCpuMsPerS: pollingCpu,
    checkCpuMsPerS: checkCpu,
    cpuCost: pollingCpu / checkCpu,
    rows,
  };
  console.log(`\nthroughput: median ${result.opsPerSWithout.toFixed(0)} ops/s without a page, ${result.opsPerSWith.toFixed(0)} with: ${(result.throughputCost * 100).toFixed(1)}% less (goal < 2%; the windows' own spread is ±${((Math.max(...rows.map((r) => r.opsPerS)) / Math.min(...rows.map((r) => r.opsPerS)) - 1) * 50).toFixed(0)}%)`);
  console.log(`lab CPU: the page's polling ${pollingCpu.toFixed(1)} ms/s (idle lab: ${median(idle.without).toFixed(1)} → ${median(idle.with).toFixed(1)}); check's workload ${checkCpu.toFixed(0)} ms/s: the polling is ${(result.cpuCost * 100).toFixed(2)}% of it`);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'dashboard.json'), `${JSON.stringify(result, null, 1)}\n`);
} finally {
  await workload?.stop().catch(() => {});
  server?.kill('SIGINT');
  try {
    lab.cli('down', '--volumes', '--yes', '-q');
  } catch (error) {
    console.error(String(error));
  }
}
