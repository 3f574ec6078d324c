#!/usr/bin/env node
// Benchmark (figures, not pass/fail), on a 3-member lab with images present and a database of
// about --mb MB (4 KiB values written through HAProxy):
//  1. `etcd-lab snapshot save` and `etcd-lab snapshot restore --yes`, whole commands, median of --runs;
//  2. the longest gap between acknowledged writes through HAProxy (one sequential writer, 2 s
//     deadline per put) while `etcd-lab defrag` runs on one follower, on the leader alone, and on
//     the whole lab (after half the keys were deleted and compacted, so there is work to do).
//   node bench/backup.mjs [--mb 100] [--runs 3]   (--mb: the database file size to reach)
// Traffic goes only to 127.0.0.1. Everything it creates is removed at the end.
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compact, currentRevision, deletePrefix, memberStatus, putKey } from '../dist/protocol/etcd-http.js';
import { ackWriter, benchImages, cliAsync, longestGap, median, option, RESULTS, scratchLab } from './lib.mjs';

const MB = Number(option('mb', 100));
const RUNS = Number(option('runs', 3));

const images = benchImages();
const lab = await scratchLab({ name: 'bench-backup', subnet: '10.243.0.0/24', images });
const client = `http://127.0.0.1:${lab.clientPort}`;

async function duringDefrag(args) {
  const writer = ackWriter(putKey, client, `during/${args.join('-') || 'all'}/`);
  await new Promise((r) => setTimeout(r, 500));
  const from = Date.now();
  const stdout = await cliAsync(lab.dir, 'defrag', ...args, '--json');
  const to = Date.now();
  await new Promise((r) => setTimeout(r, 500));
  const { acked, failed } = await writer.stop();
  const members = JSON.parse(stdout).members;
  return { members: members.map((m) => `${m.member}${m.wasLeader ? ' (leader)' : ''} ${(m.before.dbSize / 1e6).toFixed(0)}→${(m.after.dbSize / 1e6).toFixed(0)} MB in ${m.elapsedMs} ms`), longestGapMs: longestGap(acked, from, to), failed, commandMs: to - from };
}

const results = { mb: MB, runs: RUNS, images };
const phase = (text) => process.stderr.write(`bench: ${text}\n`);
try {
  phase('up');
  lab.cli('up', '-q');
  phase(`writing about ${MB} MB`);
  const value = 'x'.repeat(4096);
  // A busy 2-core machine drops the odd connection under this load: each put is tried again.
  const put = async (key, attempts = 5) => {
    for (let a = 1; ; a++) {
      try {
        return await putKey(client, key, value, 10_000);
      } catch (error) {
        if (a >= attempts) throw error;
      }
    }
  };
  // Until the database file (not the values) reaches the size asked for.
  const fillStart = Date.now();
  let keys = 0;
  while ((await memberStatus(client, 5000)).dbSize < MB * 1e6) {
    for (let batch = 0; batch < 1000; batch += 16, keys += 16) {
      await Promise.all(Array.from({ length: 16 }, (_, j) => put(`fill/${String(keys + j).padStart(7, '0')}`)));
    }
  }
  results.fill = { keys, ms: Date.now() - fillStart };
  const status = JSON.parse(lab.cli('status', '--json').stdout);
  results.dbSizeMB = Math.max(...status.members.map((m) => m.dbSize)) / 1e6;

  phase('snapshot save and restore');
  const saves = [];
  const restores = [];
  let file;
  for (let run = 0; run < RUNS; run++) {
    file = join(lab.dir, `run-${run}.db`);
    saves.push(lab.cli('snapshot', 'save', file, '-q').ms);
  }
  results.snapshotBytes = statSync(file).size;
  for (let run = 0; run < RUNS; run++) restores.push(lab.cli('snapshot', 'restore', file, '--yes', '-q').ms);
  results.save = { medianMs: median(saves), runsMs: saves };
  results.restore = { medianMs: median(restores), runsMs: restores };

  phase('defrag under writes');
  // Work for defrag: half the keys deleted, the history compacted.
  for (let block = 0; block * 1000 < keys; block += 2) await deletePrefix(client, `fill/${String(block).padStart(4, '0')}`, 60_000);
  await compact(client, await currentRevision(client), 120_000);
  const leader = JSON.parse(lab.cli('status', '--json').stdout).leader;
  const follower = ['etcd1', 'etcd2', 'etcd3'].find((m) => m !== leader);
  results.defragFollower = await duringDefrag([follower]);
  results.defragLeader = await duringDefrag([leader]);
  results.defragAll = await duringDefrag([]);
} finally {
  try {
    lab.cli('down', '--volumes', '--yes', '-q');
  } finally {
    rmSync(lab.dir, { recursive: true, force: true });
  }
}

const lines = [
  `database: ${results.dbSizeMB.toFixed(0)} MB (${results.fill.keys} keys of 4 KiB, written in ${(results.fill.ms / 1000).toFixed(1)} s); snapshot file ${(results.snapshotBytes / 1e6).toFixed(0)} MB`,
  `snapshot save:    median ${(results.save.medianMs / 1000).toFixed(2)} s (runs: ${results.save.runsMs.map((m) => (m / 1000).toFixed(2)).join(', ')})`,
  `snapshot restore: median ${(results.restore.medianMs / 1000).toFixed(2)} s (runs: ${results.restore.runsMs.map((m) => (m / 1000).toFixed(2)).join(', ')})`,
  ...[
    ['defrag one follower', results.defragFollower],
    ['defrag the leader', results.defragLeader],
    ['defrag the whole lab', results.defragAll],
  ].map(([what, r]) => `${what}: longest gap between acknowledged writes ${r.longestGapMs} ms, failed writes ${r.failed}; ${r.members.join('; ')}`),
];
console.log(lines.join('\n'));
mkdirSync(RESULTS, { recursive: true });
writeFileSync(join(RESULTS, 'backup.json'), `${JSON.stringify(results, null, 2)}\n`);
