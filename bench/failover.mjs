#!/usr/bin/env node
// Benchmark (figures, not pass/fail), on a 3-member lab with images present:
//  1. leader SIGKILL → first acknowledged write through HAProxy, median and max over --kills
//     kills, for the generated haproxy.cfg and, in the same run against the same kills, for a
//     baseline config of the kind blog setups use (mode tcp, roundrobin, option tcp-check,
//     default check timing, timeout connect 4s / check 5s / client+server 30m, retries 2);
//  2. put latency p50/p99 through HAProxy versus directly to the leader.
//   node bench/failover.mjs [--kills 10] [--puts 2000] [--deadline 500]
// Every client call has a deadline (--deadline ms) and is retried at once after it; no circuit breaker.
// Traffic goes only to 127.0.0.1. Everything it creates is removed at the end.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { putKey, memberStatus } from '../dist/runtime/etcd-http.js';

const docker = new Docker();

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const kills = option('kills', 10);
const puts = option('puts', 2000);
const BIN = fileURLToPath(new URL('../bin/etcd-lab.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
const CALL_MS = option('deadline', 500);

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sh = (cmd, cmdArgs, opts = {}) => {
  const r = spawnSync(cmd, cmdArgs, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
};
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const median = (xs) => pct(xs, 50);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const name = `bench-failover-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), `${name}-`));
const subnet = `10.169.${process.pid % 200}.0/24`;
const imageExists = (ref) => spawnSync('docker', ['image', 'inspect', ref], { stdio: 'ignore' }).status === 0;
const etcdImage = imageExists('gcr.io/etcd-development/etcd:v3.5.33') ? 'gcr.io/etcd-development/etcd:v3.5.33' : 'etcd-lab/etcd:trixie';
const haproxyImage = imageExists('haproxy:3.0-alpine') ? 'haproxy:3.0-alpine' : 'etcd-lab/haproxy:trixie';
const [clientPort, statsPort, baselinePort] = [await freePort(), await freePort(), await freePort()];
writeFileSync(join(dir, 'etcd-lab.yaml'), `apiVersion: etcd-lab/v1alpha1\nname: ${name}\nnetwork:\n  subnet: ${subnet}\n`);
writeFileSync(join(dir, '.env'), `ETCD_LAB_CLIENT_PORT=${clientPort}\nETCD_LAB_STATS_PORT=${statsPort}\nETCD_LAB_ETCD_IMAGE=${etcdImage}\nETCD_LAB_HAPROXY_IMAGE=${haproxyImage}\n`);
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_LAB_')));
const cli = (...command) => JSON.parse(sh(process.execPath, [BIN, ...command, '--json'], { cwd: dir, env: { ...env, CI: 'true' } }) || 'null');

/** One sequential writer, unique keys, a deadline per call; records acknowledgement times. */
function writer(endpoint, prefix) {
  const acks = [];
  let stop = false;
  let i = 0;
  const done = (async () => {
    while (!stop) {
      const started = Date.now();
      try {
        await putKey(endpoint, `${prefix}${i++}`, 'x', CALL_MS);
        acks.push({ started, acked: Date.now() });
      } catch {
        await sleep(5);
      }
    }
  })();
  return { acks, stop: async () => ((stop = true), await done) };
}

const report = { date: new Date().toISOString(), kills, clientDeadlineMs: CALL_MS, electionTimeoutMs: 1000, images: { etcd: etcdImage, haproxy: haproxyImage } };
try {
  process.stderr.write('bringing up a 3-member lab…\n');
  cli('up');
  const status = cli('status');
  const members = status.members.map((m) => `    server node${m.name.replace('etcd', '')} ${m.address}:2379 check`);
  const baselineCfg = [
    'global',
    '    maxconn 4096',
    'defaults',
    '    mode tcp',
    '    timeout connect 4s',
    '    timeout client 30m',
    '    timeout server 30m',
    '    timeout check 5s',
    '    retries 2',
    'frontend etcd',
    '    bind :2379',
    '    default_backend etcd',
    'backend etcd',
    '    balance roundrobin',
    '    option tcp-check',
    ...members,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'baseline.cfg'), baselineCfg);
  // The baseline runs beside the generated HAProxy, on the same lab network, labelled as the lab's.
  sh('docker', [
    'run', '-d', '--name', `${name}-baseline`, '--network', name, '--label', `io.etcd-lab.lab=${name}`,
    '-p', `127.0.0.1:${baselinePort}:2379`, '-v', `${join(dir, 'baseline.cfg')}:/usr/local/etc/haproxy/haproxy.cfg:ro`,
    '--entrypoint', 'haproxy', haproxyImage, '-W', '-db', '-f', '/usr/local/etc/haproxy/haproxy.cfg',
  ]);
  const endpoints = { generated: `http://127.0.0.1:${clientPort}`, baseline: `http://127.0.0.1:${baselinePort}` };
  for (let t = 0; t < 100; t++) {
    try {
      await putKey(endpoints.baseline, 'bench/ping', 'x', 500);
      break;
    } catch {
      await sleep(100);
    }
  }

  // 1. Failover.
  const gaps = { generated: [], baseline: [] };
  for (let k = 0; k < kills; k++) {
    const writers = Object.fromEntries(Object.entries(endpoints).map(([label, ep]) => [label, writer(ep, `bench/${label}/${k}/`)]));
    await sleep(1000);
    // Find the leader first, then time from the SIGKILL itself (in-process, no CLI start-up in the
    // figure). The clock starts when the kill has been delivered: a write begun earlier may still
    // have reached the living leader.
    const leaderName = cli('status').leader;
    await docker.getContainer(`${name}-${leaderName}`).kill({ signal: 'SIGKILL' });
    const t0 = Date.now();
    const killed = { members: [leaderName] };
    // Both writers keep going until each has an acknowledgement of a write begun after the kill.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !Object.values(writers).every((w) => w.acks.some((a) => a.started >= t0))) await sleep(20);
    for (const [label, w] of Object.entries(writers)) {
      await w.stop();
      const first = w.acks.find((a) => a.started >= t0);
      gaps[label].push(first ? first.acked - t0 : Infinity);
    }
    process.stderr.write(`  kill ${k + 1}/${kills} (${killed.members[0]}): generated ${gaps.generated.at(-1)} ms, baseline ${gaps.baseline.at(-1)} ms\n`);
    cli('start');
  }
  report.failover = Object.fromEntries(
    Object.entries(gaps).map(([label, xs]) => [label, { medianMs: median(xs), maxMs: Math.max(...xs), allMs: xs }]),
  );

  // 2. Latency: sequential puts, alternating batches through HAProxy and straight to the leader.
  const now = cli('status').members;
  const direct = `http://127.0.0.1:${now.find((m) => m.isLeader).hostPort}`;
  const follower = `http://127.0.0.1:${now.find((m) => !m.isLeader).hostPort}`;
  await memberStatus(direct, 1000);
  // A follower forwards every write to the leader: HAProxy, spreading clients over all members,
  // pays that hop for most of them. Measured too, to tell the proxy's cost from raft's.
  const latency = { haproxy: [], direct: [], follower: [] };
  for (let batch = 0; batch < 20; batch++) {
    for (const [label, ep] of [['haproxy', endpoints.generated], ['direct', direct], ['follower', follower]]) {
      for (let i = 0; i < puts / 20; i++) {
        const s = process.hrtime.bigint();
        await putKey(ep, `bench/latency/${label}/${batch}/${i}`, 'x', 2000);
        latency[label].push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }
  }
  report.latency = Object.fromEntries(Object.entries(latency).map(([label, xs]) => [label, { p50Ms: pct(xs, 50), p99Ms: pct(xs, 99), n: xs.length }]));
} finally {
  try {
    sh(process.execPath, [BIN, 'down', '--volumes', '--yes', '--quiet'], { cwd: dir, env: { ...env, CI: 'true' } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const f = report.failover;
const l = report.latency;
const overhead = (a, b) => `${(((a - b) / b) * 100).toFixed(0)}%`;
console.log(`\nleader SIGKILL → first acknowledged write, ${kills} kills, client deadline ${CALL_MS} ms (election timeout 1000 ms, target ≤ 2000 ms):`);
console.log(`  generated haproxy.cfg: median ${f.generated.medianMs} ms, max ${f.generated.maxMs} ms`);
console.log(`  baseline blog config:  median ${f.baseline.medianMs} ms, max ${f.baseline.maxMs} ms`);
console.log(`put latency, ${l.haproxy.n} sequential puts each (target overhead ≤ 10%):`);
console.log(`  through HAProxy: p50 ${l.haproxy.p50Ms.toFixed(2)} ms, p99 ${l.haproxy.p99Ms.toFixed(2)} ms`);
console.log(`  direct to leader: p50 ${l.direct.p50Ms.toFixed(2)} ms, p99 ${l.direct.p99Ms.toFixed(2)} ms`);
console.log(`  direct to a follower: p50 ${l.follower.p50Ms.toFixed(2)} ms, p99 ${l.follower.p99Ms.toFixed(2)} ms`);
console.log(`  overhead: p50 ${overhead(l.haproxy.p50Ms, l.direct.p50Ms)}, p99 ${overhead(l.haproxy.p99Ms, l.direct.p99Ms)}`);
mkdirSync(RESULTS, { recursive: true });
const file = join(RESULTS, `failover-${report.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
console.log(`\nfull figures: ${file}`);
