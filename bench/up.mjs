#!/usr/bin/env node
// Benchmark (figures, not pass/fail): wall time of `etcd-lab up` from nothing to ready, for 3 and
// 5 members with images present, and of `etcd-lab status` on a running lab. Median of N runs.
//   node bench/up.mjs [--runs 5] [--members 3,5]
// Each run starts from a clean slate (`down --volumes --yes`, not timed) in a scratch project
// with its own lab name, subnet and ports on 127.0.0.1, and everything is removed at the end.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const runs = Number(option('runs', '5'));
const memberCounts = option('members', '3,5').split(',').map(Number);
const BIN = fileURLToPath(new URL('../bin/etcd-lab.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function imageExists(ref) {
  return spawnSync('docker', ['image', 'inspect', ref], { stdio: 'ignore' }).status === 0;
}

function cli(dir, ...command) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_LAB_')));
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [BIN, ...command], { cwd: dir, env: { ...env, CI: 'true' }, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`etcd-lab ${command.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { ms, stdout: r.stdout };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;

// The spec's official images where this machine has them, else the local stand-ins.
const etcdImage = imageExists('gcr.io/etcd-development/etcd:v3.5.33') ? 'gcr.io/etcd-development/etcd:v3.5.33' : 'etcd-lab/etcd:trixie';
const haproxyImage = imageExists('haproxy:3.0-alpine') ? 'haproxy:3.0-alpine' : 'etcd-lab/haproxy:trixie';
for (const image of [etcdImage, haproxyImage]) {
  if (!imageExists(image)) throw new Error(`image ${image} is missing: run \`make images\` first (the benchmark measures up with images present)`);
}

const report = {
  date: new Date().toISOString(),
  machine: { cpus: (await import('node:os')).cpus().length, node: process.version, docker: execFileSync('docker', ['version', '--format', '{{.Server.Version}}']).toString().trim() },
  images: { etcd: etcdImage, haproxy: haproxyImage },
  runs,
  up: {},
  resume: {},
  status: {},
};

for (const members of memberCounts) {
  const name = `bench-${members}-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const salt = process.pid % 200;
  writeFileSync(join(dir, 'etcd-lab.yaml'), `apiVersion: etcd-lab/v1alpha1\nname: ${name}\nmembers: ${members}\nnetwork:\n  subnet: 10.${170 + members}.${salt}.0/24\n`);
  writeFileSync(
    join(dir, '.env'),
    `ETCD_LAB_CLIENT_PORT=${await freePort()}\nETCD_LAB_STATS_PORT=${await freePort()}\nETCD_LAB_ETCD_IMAGE=${etcdImage}\nETCD_LAB_HAPROXY_IMAGE=${haproxyImage}\n`,
  );
  const upTimes = [];
  const resumeTimes = [];
  const statusTimes = [];
  try {
    for (let i = 0; i < runs; i++) {
      cli(dir, 'down', '--volumes', '--yes', '--quiet');
      const up = cli(dir, 'up', '--json');
      const result = JSON.parse(up.stdout);
      if (!result.status.quorum.held || result.status.members.filter((m) => m.isLeader).length !== 1) {
        throw new Error(`run ${i + 1}: lab not ready after up: ${result.status.summary}`);
      }
      upTimes.push(up.ms);
      statusTimes.push(cli(dir, 'status', '--json').ms);
      // Resume: `down` keeps the data volumes; members restart from their WAL.
      cli(dir, 'down', '--quiet');
      resumeTimes.push(cli(dir, 'up', '--quiet').ms);
      process.stderr.write(
        `  ${members} members, run ${i + 1}/${runs}: up ${fmt(up.ms)}, status ${fmt(statusTimes.at(-1))}, up after down (data kept) ${fmt(resumeTimes.at(-1))}\n`,
      );
    }
  } finally {
    try {
      cli(dir, 'down', '--volumes', '--yes', '--quiet');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  report.up[members] = { medianMs: median(upTimes), minMs: Math.min(...upTimes), maxMs: Math.max(...upTimes), allMs: upTimes };
  report.status[members] = { medianMs: median(statusTimes), allMs: statusTimes };
  report.resume[members] = { medianMs: median(resumeTimes), allMs: resumeTimes };
}

const targets = { 3: 3000, 5: 4000 };
console.log(`\netcd-lab up → ready, median of ${runs} (images: ${etcdImage}, ${haproxyImage}):`);
for (const [members, r] of Object.entries(report.up)) {
  const target = targets[members];
  console.log(`  ${members} members: median ${fmt(r.medianMs)} (min ${fmt(r.minMs)}, max ${fmt(r.maxMs)})${target ? `  target ≤ ${fmt(target)}: ${r.medianMs <= target ? 'met' : 'NOT met'}` : ''}`);
}
for (const [members, r] of Object.entries(report.resume)) console.log(`  ${members} members, up after down (data kept): median ${fmt(r.medianMs)}`);
for (const [members, r] of Object.entries(report.status)) console.log(`  status (${members} members): median ${fmt(r.medianMs)}`);
mkdirSync(RESULTS, { recursive: true });
const file = join(RESULTS, `up-${report.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
console.log(`\nfull figures: ${file}`);
