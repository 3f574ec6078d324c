#!/usr/bin/env node
// Benchmark (figures, not pass/fail): the longest gap between acknowledged writes through HAProxy
// (one sequential writer, 2 s deadline per put, a new put at once after each) while each membership
// operation runs on a 3-member lab, over --runs runs, median and max:
//   leader kill (the baseline: SIGKILL, then an election), `leader` (move-leader), `member replace`
//   (container and volume deleted first), `scale 5` and `scale 3`, and `upgrade` 3.4.23 → 3.5.16.
//   node bench/membership.mjs [--runs 3]
// Each figure is printed beside its goal (issue "Traffic through failures and changes"); the
// members that stay through a scale are checked not to have restarted.
// Traffic goes only to 127.0.0.1. Everything it creates is removed at the end.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { putKey } from '../dist/protocol/etcd-http.js';
import { ackWriter, benchImages, cliAsync, longestGap, median, option, RESULTS, scratchLab } from './lib.mjs';

const RUNS = Number(option('runs', 3));
const ETCD_34 = 'etcd-lab/etcd:3.4-bookworm';
const docker = new Docker();
const images = benchImages();
const phase = (text) => process.stderr.write(`bench: ${text}\n`);

const cli = cliAsync;

/** Runs `work` under one writer; the longest gap between acknowledged writes while it ran. */
async function gapDuring(client, work) {
  const writer = ackWriter(putKey, client, `bench/${Date.now()}-`);
  await new Promise((r) => setTimeout(r, 500));
  const from = Date.now();
  await work();
  const to = Date.now();
  await new Promise((r) => setTimeout(r, 500));
  const { acked, failed, refused } = await writer.stop();
  const gap = longestGap(acked, from, to);
  return { gapMs: gap, failed, refused, ms: to - from };
}

const results = { runs: RUNS, images, operations: {} };
const record = (name, r) => (results.operations[name] ??= []).push(r);

await cli(process.cwd(), 'images', 'build', '--etcd-version', '3.4', '-q');
const lab = await scratchLab({ name: 'bench-members', subnet: '10.244.0.0/24', images });
const client = `http://127.0.0.1:${lab.clientPort}`;
const old = await scratchLab({ name: 'bench-upgrade', subnet: '10.245.0.0/24', images: { ...images, etcd: ETCD_34 } });
const oldClient = `http://127.0.0.1:${old.clientPort}`;
try {
  await cli(lab.dir, 'up', '-q');
  for (let run = 1; run <= RUNS; run++) {
    phase(`run ${run}/${RUNS}`);
    record('leader kill (baseline)', await gapDuring(client, () => cli(lab.dir, 'kill', 'leader', '-q')));
    await cli(lab.dir, 'start', '-q');
    const status = JSON.parse(await cli(lab.dir, 'status', '--json'));
    const follower = status.members.find((m) => !m.isLeader).name;
    record('leader move', await gapDuring(client, () => cli(lab.dir, 'leader', follower, '-q')));
    record('member replace', await gapDuring(client, async () => {
      await docker.getContainer('bench-members-etcd3').remove({ force: true });
      await docker.getVolume('bench-members-etcd3-data').remove();
      await cli(lab.dir, 'member', 'replace', 'etcd3', '-q');
    }));
    const started = async () => Object.fromEntries(await Promise.all(['etcd1', 'etcd2', 'etcd3'].map(async (m) => [m, (await docker.getContainer(`bench-members-${m}`).inspect()).State.StartedAt])));
    const before = await started();
    record('scale 3 → 5', await gapDuring(client, () => cli(lab.dir, 'scale', '5', '-q')));
    record('scale 5 → 3', await gapDuring(client, () => cli(lab.dir, 'scale', '3', '-q')));
    const after = await started();
    const restarted = Object.keys(before).filter((m) => before[m] !== after[m]);
    (results.restartedByScale ??= []).push(restarted);

    await cli(old.dir, 'up', '-q');
    record('upgrade 3.4 → 3.5 (3 members)', await gapDuring(oldClient, () => cli(old.dir, 'upgrade', '--etcd-image', images.etcd, '-q')));
    await cli(old.dir, 'down', '--volumes', '--yes', '-q');
    // The next run starts on 3.4 again.
    writeFileSync(join(old.dir, '.env'), readFileSync(join(old.dir, '.env'), 'utf8').replace(/^ETCD_LAB_ETCD_IMAGE=.*$/m, `ETCD_LAB_ETCD_IMAGE=${ETCD_34}`));
  }
} finally {
  for (const l of [lab, old]) {
    await cli(l.dir, 'down', '--volumes', '--yes', '-q').catch(() => {});
    rmSync(l.dir, { recursive: true, force: true });
  }
}

// The goals: the leader kill is the baseline every other operation is held against.
const GOALS = {
  'leader kill (baseline)': { text: 'the baseline' },
  'leader move': { text: 'keep (70–148 ms)' },
  'member replace': { text: 'keep (118–226 ms)' },
  'scale 3 → 5': { text: 'gap ≤ 300 ms, 0 refused, ≤ 20 s', ok: (rs) => Math.max(...rs.map((r) => r.gapMs)) <= 300 && rs.every((r) => r.refused === 0 && r.ms <= 20_000) },
  'scale 5 → 3': { text: 'gap ≤ 300 ms, 0 refused', ok: (rs) => Math.max(...rs.map((r) => r.gapMs)) <= 300 && rs.every((r) => r.refused === 0) },
  'upgrade 3.4 → 3.5 (3 members)': { text: 'keep (272–310 ms)' },
};
const killGap = median(results.operations['leader kill (baseline)'].map((r) => r.gapMs));
const lines = Object.entries(results.operations).map(([name, rs]) => {
  const gaps = rs.map((r) => r.gapMs);
  const goal = GOALS[name];
  const verdict = goal?.ok ? (goal.ok(rs) ? ' — met' : ' — NOT MET') : '';
  return (
    `${name.padEnd(32)} longest gap: median ${median(gaps)} ms, max ${Math.max(...gaps)} ms (${((median(gaps) / killGap) * 100).toFixed(0)}% of a leader kill's); ` +
    `failed writes ${rs.map((r) => r.failed).join('/')}, refused connections ${rs.map((r) => r.refused).join('/')}; took median ${(median(rs.map((r) => r.ms)) / 1000).toFixed(1)} s, max ${(Math.max(...rs.map((r) => r.ms)) / 1000).toFixed(1)} s` +
    `\n${''.padEnd(32)} goal: ${goal?.text ?? '-'}${verdict}`
  );
});
console.log(lines.join('\n'));
console.log(`members restarted by scale (goal: none): ${results.restartedByScale.map((r) => (r.length ? r.join(', ') : 'none')).join(' / ')}`);
mkdirSync(RESULTS, { recursive: true });
writeFileSync(join(RESULTS, 'membership.json'), `${JSON.stringify(results, null, 2)}\n`);
