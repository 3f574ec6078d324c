#!/usr/bin/env node
// Benchmark (figures, not pass/fail): wall time of `etcd-lab up` from nothing to ready, for 3 and
// 5 members with images present, and of `etcd-lab status` on a running lab. Median of N runs.
//   node bench/up.mjs [--runs 5] [--members 3,5]
// Each run starts from a clean slate (`down --volumes --yes`, not timed) in a scratch project
// with its own lab name, subnet and ports on 127.0.0.1, and everything is removed at the end.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { benchImages, median, option, RESULTS, scratchLab } from './lib.mjs';

const runs = Number(option('runs', '5'));
const memberCounts = option('members', '3,5').split(',').map(Number);
const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
const { etcd: etcdImage, haproxy: haproxyImage } = benchImages();

const report = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, node: process.version, docker: execFileSync('docker', ['version', '--format', '{{.Server.Version}}']).toString().trim() },
  images: { etcd: etcdImage, haproxy: haproxyImage },
  runs,
  up: {},
  resume: {},
  status: {},
};

for (const members of memberCounts) {
  const name = `bench-${members}-${process.pid}`;
  const { dir, cli: run } = await scratchLab({
    name,
    members,
    subnet: `10.${170 + members}.${process.pid % 200}.0/24`,
    images: { etcd: etcdImage, haproxy: haproxyImage },
  });
  const cli = (_dir, ...command) => run(...command);
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
