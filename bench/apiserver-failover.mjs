#!/usr/bin/env node
// Benchmark (figures, not pass/fail): Kubernetes' API server (`etcd-lab apiserver`) through etcd
// failures, as a user tries it — a fault on the leader, a write through the API server (1 s deadline)
// every 50 ms until one is accepted, the fault undone, 3 s, again — with three wirings side by side:
//   fixed    HAProxy as its one endpoint, the generated configuration on HAProxy 3.2 (the lab's default)
//   before   the same on HAProxy 3.0.11 (Debian trixie's) with leastconn, the lab's configuration before
//   members  every member as its endpoints (--etcd-endpoints members)
// Faults: leader SIGKILL (--kills, default 30), leader pause, leader partition and leader move
// (--others each, default 10), in plain and TLS mode (--modes plain,TLS).
// Per fault: the API write gap (the last accepted write before the fault to the first after it) and
// the etcd-level gap of a writer through HAProxy in the same window; /readyz's lag behind the first
// accepted write; the API server's etcd connections that never completed their handshake (gRPC's
// "createTransport failed" in its log). Writes bench/results/apiserver-failover.json and, for one
// kill of each wiring, a timeline picture (bench/results/apiserver-kill-<wiring>-<mode>.svg) of
// HAProxy's server states, the API server's etcd connections and the writes.
//   node bench/apiserver-failover.mjs [--kills 30] [--others 10] [--modes plain,TLS] [--wirings fixed,before,members]
// Traffic goes only to 127.0.0.1 and the labs' networks. Everything it creates is removed at the end.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { apiServerEndpoint } from '../dist/lab/apiserver.js';
import { fetchWithDeadline, putKey } from '../dist/protocol/etcd-http.js';
import { WIDGETS, WIDGETS_CRD } from '../dist/workload/kube.js';
import { LOCAL_BASE_REF, LOCAL_IMAGES } from '../dist/runtime/images.js';
import { readClientTls } from '../dist/runtime/pki.js';
import { CLIENTS, pkiDirOf } from '../dist/render/pki.js';
import { benchImages, cliAsync, median, option, percentile, RESULTS, scratchLab } from './lib.mjs';
import { renderKillTimeline } from './timeline.mjs';

const KILLS = Number(option('kills', 30));
const OTHERS = Number(option('others', 10));
const MODES = String(option('modes', 'plain,TLS')).split(',');
const WIRINGS = String(option('wirings', 'fixed,before,members')).split(',');
const HAPROXY_30 = 'etcd-lab/haproxy:3.0-bench';
const docker = new Docker();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const phase = (text) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} bench: ${text}\n`);

/** HAProxy 3.0 as Debian trixie ships it: the "before" wiring's. Built here once. */
function ensureHaproxy30() {
  if (spawnSync('docker', ['image', 'inspect', HAPROXY_30], { stdio: 'ignore' }).status === 0) return;
  phase(`building ${HAPROXY_30} (Debian trixie's HAProxy 3.0)`);
  const dockerfile = [
    `FROM ${LOCAL_BASE_REF}`,
    'RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy && rm -rf /var/lib/apt/lists/* && mkdir -p /usr/local/etc/haproxy',
    'WORKDIR /var/lib/haproxy',
    'USER haproxy',
    'STOPSIGNAL SIGUSR1',
    'CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]',
  ].join('\n');
  execFileSync('docker', ['build', '-q', '-t', HAPROXY_30, '-'], { input: dockerfile, stdio: ['pipe', 'ignore', 'inherit'] });
}

/** The widget collection, and a create with a deadline: what `kubectl apply --request-timeout=1s` does. */
const collection = `/apis/${WIDGETS.group}/${WIDGETS.version}/namespaces/${WIDGETS.namespace}/${WIDGETS.plural}`;

async function untilServed(api) {
  for (let i = 0; i < 300; i++) {
    const r = await fetchWithDeadline(api, {}, 2000, collection).catch(() => undefined);
    if (r?.status === 200) return;
    await sleep(200);
  }
  throw new Error('the API server did not serve widgets within 60 s');
}

/** A client that keeps doing `write` (each awaited), recording when each was accepted or failed. */
function writer(write) {
  const acks = [];
  const fails = [];
  let stop = false;
  let n = 0;
  const done = (async () => {
    while (!stop) {
      const at = Date.now();
      const ok = await write(++n).then(
        () => true,
        () => false,
      );
      (ok ? acks : fails).push(Date.now());
      if (!ok) await sleep(Math.max(0, 50 - (Date.now() - at)));
      else await sleep(20);
    }
  })();
  return { acks, fails, stop: async () => ((stop = true), await done) };
}

/** /readyz (without informer-sync, which needs core resources this server does not have) every 100 ms. */
function readyzPoller(api) {
  const samples = [];
  let stop = false;
  const done = (async () => {
    while (!stop) {
      const r = await fetchWithDeadline(api, {}, 1000, '/readyz?exclude=informer-sync').catch(() => undefined);
      samples.push({ at: Date.now(), ok: r?.status === 200 });
      await sleep(100);
    }
  })();
  return { samples, stop: async () => ((stop = true), await done) };
}

/** The longest time without an accepted write from `from` (the fault's command) to `to` (its undo): the gap a client felt. */
const longestGapIn = (acks, from, to) => {
  let gap = 0;
  let last = acks.filter((t) => t <= from).at(-1) ?? from;
  for (const t of acks.filter((t) => t > from && t <= to)) {
    gap = Math.max(gap, t - last);
    last = t;
  }
  return acks.some((t) => t > from && t <= to) ? gap : undefined;
};

/** The lab's log lines of `container` since `since` (ms), with their timestamps. */
async function logLines(container, since) {
  try {
    const raw = await docker.getContainer(container).logs({ stdout: true, stderr: true, timestamps: true, since: Math.floor(since / 1000) - 1 });
    return raw
      .toString('utf8')
      .split('\n')
      .map((line) => line.replace(/^[^0-9]*(?=\d{4}-\d\d-\d\dT)/, ''))
      .map((line) => ({ at: Date.parse(line.slice(0, 30)), text: line.slice(31) }))
      .filter((l) => Number.isFinite(l.at));
  } catch {
    return [];
  }
}

async function runWiring(mode, wiring) {
  const name = `bench-af-${wiring.slice(0, 3)}-${mode === 'TLS' ? 't' : 'p'}`;
  const network = `${name}-kind`;
  const images = { ...benchImages(), haproxy: wiring === 'before' ? HAPROXY_30 : LOCAL_IMAGES.haproxy };
  const extra = [mode === 'TLS' ? 'tls:\n  enabled: true' : '', wiring === 'before' ? 'haproxy:\n  balance: leastconn' : ''].filter(Boolean).join('\n');
  const subnet = `10.248.${MODES.indexOf(mode) * 3 + WIRINGS.indexOf(wiring)}.0/24`;
  const lab = await scratchLab({ name, subnet, images, extraYaml: extra ? `${extra}\n` : '' });
  const rows = [];
  const timelines = [];
  try {
    await cliAsync(lab.dir, 'up', '-q');
    process.env.KIND_EXPERIMENTAL_DOCKER_NETWORK = network;
    const started = JSON.parse(await cliAsync(lab.dir, 'apiserver', '--json', '--etcd-endpoints', wiring === 'members' ? 'members' : 'haproxy'));
    const api = apiServerEndpoint(join(lab.dir, 'generated'), started.server);
    const crd = await fetchWithDeadline(api, { method: 'POST', body: JSON.stringify(WIDGETS_CRD), headers: { 'content-type': 'application/json' } }, 10_000, '/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
    if (crd.status !== 201) throw new Error(`CRD: HTTP ${crd.status} ${crd.text}`);
    await untilServed(api);
    const etcdClient = mode === 'TLS' ? undefined : `http://127.0.0.1:${lab.clientPort}`;
    const faults = [...Array(KILLS).fill('kill'), ...['pause', 'partition', 'move'].flatMap((f) => Array(OTHERS).fill(f))];
    for (const [i, fault] of faults.entries()) {
      const apiWriter = writer((n) =>
        fetchWithDeadline(api, { method: 'POST', body: JSON.stringify({ apiVersion: `${WIDGETS.group}/${WIDGETS.version}`, kind: WIDGETS.kind, metadata: { name: `f${i}-${n}` }, spec: { size: n } }), headers: { 'content-type': 'application/json' } }, 1000, collection).then((r) => {
          if (r.status !== 201) throw new Error(`HTTP ${r.status}`);
        }),
      );
      // TLS labs: the etcd-level writer is the admin client through HAProxy.
      const etcdWriter = writer((n) => putKey(etcdClient ?? tlsClient(lab), `bench/af/${i}/${n}`, 'v', 1000));
      const readyz = readyzPoller(api);
      await sleep(1500);
      const t0 = Date.now();
      if (fault === 'move') {
        const status = JSON.parse(await cliAsync(lab.dir, 'status', '--json'));
        await cliAsync(lab.dir, 'leader', status.members.find((m) => !m.isLeader).name, '-q');
      } else await cliAsync(lab.dir, fault, 'leader', '--no-wait', '-q');
      // Held until the API server accepts a write sent after the fault was done (at most 60 s), then undone.
      const applied = Date.now();
      for (const until = applied + 60_000; Date.now() < until && !apiWriter.acks.some((t) => t > applied + 1000); ) await sleep(50);
      const undoAt = Date.now();
      const undo = { kill: 'start', pause: 'unpause', partition: 'heal' }[fault];
      if (undo) await cliAsync(lab.dir, undo, '-q');
      await sleep(3000);
      await Promise.all([apiWriter.stop(), etcdWriter.stop()]);
      const firstWrite = apiWriter.acks.find((t) => t > applied + 1000);
      // /readyz is followed until it answers ok after that write (at most 30 s more).
      for (const until = Date.now() + 30_000; Date.now() < until && !readyz.samples.some((x) => x.ok && x.at >= (firstWrite ?? Infinity)); ) await sleep(100);
      await readyz.stop();
      // A move needs no undo: its window runs to the end.
      const windowEnd = fault === 'move' ? Date.now() : undoAt;
      const apiGap = longestGapIn(apiWriter.acks, t0, windowEnd);
      const etcdGap = longestGapIn(etcdWriter.acks, t0, windowEnd);
      const readyAfter = readyz.samples.find((s) => s.at >= (firstWrite ?? Infinity) && s.ok)?.at;
      const wasDown = readyz.samples.some((s) => s.at > t0 && s.at < (readyAfter ?? Infinity) && !s.ok);
      const apiLog = await logLines(started.container, t0 - 2000);
      const failedHandshakes = apiLog.filter((l) => l.at >= t0 && /createTransport failed/.test(l.text)).length;
      const row = { mode, wiring, fault, i, apiGapMs: apiGap, etcdGapMs: etcdGap, readyzLagMs: firstWrite && readyAfter ? (wasDown ? readyAfter - firstWrite : 0) : undefined, readyzNotOkIn30s: Boolean(firstWrite && !readyAfter), failedHandshakes };
      rows.push(row);
      phase(`${mode} ${wiring} ${fault} #${i + 1}: API gap ${apiGap ?? '—'} ms, etcd gap ${etcdGap ?? '—'} ms, /readyz lag ${row.readyzNotOkIn30s ? 'not ok within 30 s' : `${row.readyzLagMs ?? '—'} ms`}, ${failedHandshakes} handshakes never completed`);
      // One kill's picture per wiring: the first whose API gap is the largest so far among the kills (the worst one shows the mechanism).
      if (fault === 'kill') timelines.push({ gap: apiGap ?? Infinity, t0, apiAcks: apiWriter.acks, apiFails: apiWriter.fails, apiLog, end: Date.now() });
    }
    // HAProxy logs a connection when it ends: a reload ends those still open (after hard-stop-after),
    // so the picture has every connection. Measurements are over by now.
    if (wiring !== 'members') {
      execFileSync('docker', ['kill', '-s', 'USR2', `${name}-haproxy`], { stdio: 'ignore' });
      await sleep(4000);
      const haproxyLog = await logLines(`${name}-haproxy`, 0);
      for (const t of timelines) t.haproxyLog = haproxyLog;
    }
  } finally {
    await cliAsync(lab.dir, 'apiserver', '--delete', '-q').catch(() => {});
    await cliAsync(lab.dir, 'down', '--volumes', '--yes', '-q').catch(() => {});
    await docker.getNetwork(network).remove().catch(() => {});
  }
  const worst = timelines.sort((a, b) => b.gap - a.gap)[0];
  if (worst && wiring !== 'members') writeFileSync(join(RESULTS, `apiserver-kill-${wiring}-${mode}.svg`), renderKillTimeline(worst, `${wiring} wiring, ${mode}: the kill with the longest API write gap of ${KILLS}`));
  return rows;
}

let tlsEndpoint;
function tlsClient(lab) {
  tlsEndpoint ??= { url: `https://127.0.0.1:${lab.clientPort}`, tls: readClientTls(pkiDirOf(join(lab.dir, 'generated')), CLIENTS.admin) };
  return tlsEndpoint;
}

mkdirSync(RESULTS, { recursive: true });
if (WIRINGS.includes('before')) ensureHaproxy30();
const all = [];
for (const mode of MODES) {
  for (const wiring of WIRINGS) {
    tlsEndpoint = undefined;
    phase(`${mode}, ${wiring} wiring: ${KILLS} kills, ${OTHERS} each of pause, partition, move`);
    all.push(...(await runWiring(mode, wiring)));
    writeFileSync(join(RESULTS, 'apiserver-failover.json'), `${JSON.stringify(all, null, 1)}\n`);
  }
}

const ms = (x) => (x === undefined ? '—' : String(Math.round(x)));
console.log('\nAPI write gap (ms) after a fault on the leader, a write every 50 ms with a 1 s deadline; etcd gap: a writer through HAProxy in the same window');
console.log('mode   wiring   fault       n   API median   p95    max   etcd median   median(API−etcd)   /readyz lag max   handshakes never completed');
for (const mode of MODES) {
  for (const wiring of WIRINGS) {
    for (const fault of ['kill', 'pause', 'partition', 'move']) {
      const rows = all.filter((r) => r.mode === mode && r.wiring === wiring && r.fault === fault);
      if (rows.length === 0) continue;
      const api = rows.map((r) => r.apiGapMs ?? 60_000);
      const etcd = rows.map((r) => r.etcdGapMs).filter((x) => x !== undefined);
      const diff = rows.filter((r) => r.apiGapMs !== undefined && r.etcdGapMs !== undefined).map((r) => r.apiGapMs - r.etcdGapMs);
      // A /readyz that did not answer ok within 30 s of the first accepted write is no lag figure: shown apart.
      const stuck = rows.filter((r) => r.readyzNotOkIn30s).length;
      const lag = `${ms(Math.max(0, ...rows.map((r) => r.readyzLagMs ?? 0)))}${stuck ? ` (${stuck}× not ok in 30 s)` : ''}`;
      const hs = rows.reduce((n, r) => n + r.failedHandshakes, 0);
      console.log(
        `${mode.padEnd(6)} ${wiring.padEnd(8)} ${fault.padEnd(9)} ${String(rows.length).padStart(3)}   ${ms(median(api)).padStart(10)}   ${ms(percentile(api, 95)).padStart(5)}  ${ms(Math.max(...api)).padStart(5)}   ${ms(median(etcd)).padStart(11)}   ${ms(median(diff)).padStart(16)}   ${lag.padStart(15)}   ${String(hs).padStart(5)}`,
      );
    }
  }
}
