#!/usr/bin/env node
// Benchmark (figures, not pass/fail): Kubernetes' API server (`etcd-lab apiserver`) on a 3-member
// lab, a Kubernetes-shaped client on it (creates, updates and deletes with resourceVersion
// preconditions, a watch), through leader kills, with the API server given
//   haproxy: the lab's HAProxy as its one etcd endpoint (what the KIND config and `etcd-lab apiserver` give it)
//   members: every member directly (--etcd-servers=<each member>), as Kubernetes' etcd guide also describes
// For each: per kill, the longest gap in acknowledged API writes, and unknown outcomes; beside it, a
// writer talking to etcd through HAProxy in the same window.
//   node bench/apiserver.mjs [--kills 5]
// The per-procedure figures (every operation of the guide, API gap beside the etcd gap) come from
//   ETCD_LAB_APISERVER_ROUNDS=N npx vitest run --project e2e test/e2e/apiserver-procedures.test.ts
// which writes them to test-artifacts/apiserver-procedures-{plain,TLS}.json; --procedures N runs it
// first and prints its medians here too.
// Traffic goes only to 127.0.0.1 and the lab's networks. Everything it creates is removed at the end.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { apiServerEndpoint } from '../dist/lab/apiserver.js';
import { fetchWithDeadline, putKey } from '../dist/runtime/etcd-http.js';
import { KubeWorkload, WIDGETS, WIDGETS_CRD } from '../dist/runtime/kube-api.js';
import { ackWriter, benchImages, cliAsync, longestGap, median, option, RESULTS, scratchLab } from './lib.mjs';

const KILLS = Number(option('kills', 5));
// Which wirings to measure: haproxy,members (both, the default) or one of them.
const WIRINGS = String(option('wirings', 'haproxy,members')).split(',');
const PROCEDURE_ROUNDS = Number(option('procedures', 0));
const docker = new Docker();
const images = benchImages();
const phase = (text) => process.stderr.write(`bench: ${text}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const NAME = 'bench-api';
const NETWORK = `${NAME}-kind`;

const results = { kills: KILLS, images, endpoints: {}, procedures: {} };
/** Thrown to skip the rest of the measured wirings (--wirings). */
class Done extends Error {}

if (PROCEDURE_ROUNDS > 0) {
  phase(`every procedure, ${PROCEDURE_ROUNDS} rounds, both TLS modes (the e2e test)`);
  execFileSync('npx', ['vitest', 'run', '--project', 'e2e', 'test/e2e/apiserver-procedures.test.ts'], { stdio: 'inherit', env: { ...process.env, ETCD_LAB_APISERVER_ROUNDS: String(PROCEDURE_ROUNDS) } });
}
for (const mode of ['plain', 'TLS']) {
  try {
    const figures = JSON.parse(readFileSync(join('test-artifacts', `apiserver-procedures-${mode}.json`), 'utf8'));
    for (const f of figures) ((results.procedures[mode] ??= {})[f.procedure] ??= []).push(f);
  } catch {
    // Not run here yet: only the endpoint comparison is printed.
  }
}


async function ready(api) {
  for (let i = 0; i < 300; i++) {
    const r = await fetchWithDeadline(api, {}, 2000, `/apis/${WIDGETS.group}/${WIDGETS.version}/namespaces/default/${WIDGETS.plural}`).catch(() => undefined);
    if (r?.status === 200) return;
    await sleep(200);
  }
  throw new Error('the API server did not serve widgets within 60 s');
}

/** Kills the leader KILLS times under both clients; per kill, the API gap and the etcd gap. A kill with an API gap over 3 s keeps the API server's log of its window. */
async function throughKills(lab, api, label, container) {
  const rows = [];
  for (let k = 1; k <= KILLS; k++) {
    const workload = await new KubeWorkload({ api, prefix: `${label}-${k}-`, objects: 8, callTimeoutMs: 5000, pauseMs: 5 }).start();
    const writer = ackWriter(putKey, `http://127.0.0.1:${lab.clientPort}`, `bench/${label}-${k}-`);
    await sleep(1000);
    const from = Date.now();
    await cliAsync(lab.dir, 'kill', 'leader', '-q');
    await sleep(2000);
    await cliAsync(lab.dir, 'start', '-q');
    await sleep(1000);
    const to = Date.now();
    const [outcome, etcd] = await Promise.all([workload.stop(), writer.stop()]);
    if (outcome.violations.length > 0) throw new Error(`${label}, kill ${k}: ${outcome.violations.join('; ')}`);
    rows.push({ apiGapMs: outcome.longestGapMs, apiUnknown: outcome.unknown, etcdGapMs: longestGap(etcd.acked, from, to) });
    if (outcome.longestGapMs > 3000) {
      const log = await docker.getContainer(container).logs({ stdout: true, stderr: true, since: Math.floor(from / 1000) - 2, until: Math.ceil(to / 1000) + 1, timestamps: true });
      mkdirSync(RESULTS, { recursive: true });
      writeFileSync(join(RESULTS, `apiserver-${label}-kill-${k}.log`), log.toString('utf8').replace(/[\x00-\x08]/g, ''));
      phase(`${label}: kill ${k}: the API server's log of that window is in bench/results/apiserver-${label}-kill-${k}.log`);
    }
    phase(`${label}: kill ${k}/${KILLS}: API gap ${outcome.longestGapMs} ms (${outcome.unknown} unknown), etcd through HAProxy ${rows.at(-1).etcdGapMs} ms`);
    await sleep(2000);
  }
  return rows;
}

const lab = await scratchLab({ name: NAME, subnet: '10.246.0.0/24', images });
const members = ['etcd1', 'etcd2', 'etcd3'].map((m) => `${NAME}-${m}`);
let second;
try {
  await cliAsync(lab.dir, 'images', 'build', '--apiserver', '-q');
  await cliAsync(lab.dir, 'up', '-q');
  process.env.KIND_EXPERIMENTAL_DOCKER_NETWORK = NETWORK;
  const started = JSON.parse(await cliAsync(lab.dir, 'apiserver', '--json'));
  const api = apiServerEndpoint(join(lab.dir, 'generated'), started.server);
  const crd = await fetchWithDeadline(api, { method: 'POST', body: JSON.stringify(WIDGETS_CRD), headers: { 'content-type': 'application/json' } }, 10_000, '/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
  if (crd.status !== 201) throw new Error(`CRD: HTTP ${crd.status} ${crd.text}`);
  await ready(api);
  if (WIRINGS.includes('haproxy')) {
    phase('API server with HAProxy as its one endpoint');
    results.endpoints.haproxy = await throughKills(lab, api, 'haproxy', started.container);
  }
  if (!WIRINGS.includes('members')) throw new Done();

  // The same server, the same flags but one: every member, reached on the kind network by name.
  const inspect = await docker.getContainer(started.container).inspect();
  for (const m of members) await docker.getNetwork(NETWORK).connect({ Container: m });
  const endpoints = members.map((m) => `http://${m}:2379`).join(',');
  const args = inspect.Args.map((a) => (a.startsWith('--etcd-servers=') ? `--etcd-servers=${endpoints}` : a));
  await cliAsync(lab.dir, 'apiserver', '--delete', '-q');
  const port = Number(new URL(started.server).port);
  second = await docker.createContainer({
    name: `${NAME}-apiserver-members`,
    Image: inspect.Config.Image,
    Cmd: args,
    Labels: { 'io.etcd-lab.lab': NAME },
    ExposedPorts: { '6443/tcp': {} },
    HostConfig: { NetworkMode: NETWORK, Binds: inspect.HostConfig.Binds, PortBindings: { '6443/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] } },
  });
  await second.start();
  await ready(api);
  phase(`API server with every member as its endpoints (${endpoints})`);
  results.endpoints.members = await throughKills(lab, api, 'members', `${NAME}-apiserver-members`);
} catch (error) {
  if (!(error instanceof Done)) throw error;
} finally {
  await second?.remove({ force: true }).catch(() => {});
  for (const m of members) await docker.getNetwork(NETWORK).disconnect({ Container: m, Force: true }).catch(() => {});
  await cliAsync(lab.dir, 'down', '--volumes', '--yes', '-q').catch(() => {});
  await docker.getNetwork(NETWORK).remove().catch(() => {});
}

const fmt = (xs) => (xs.length ? `median ${median(xs)} ms, max ${Math.max(...xs)} ms` : '—');
console.log(`\nAPI availability through ${KILLS} leader kills (SIGKILL, 2 s, start), Kubernetes-shaped client, 5 s call deadline:`);
for (const [label, rows] of Object.entries(results.endpoints)) {
  console.log(`  ${label.padEnd(8)} API gap ${fmt(rows.map((r) => r.apiGapMs))}; unknown outcomes ${rows.map((r) => r.apiUnknown).join('/')}; etcd through HAProxy in the same windows ${fmt(rows.map((r) => r.etcdGapMs))}`);
}
for (const [mode, procedures] of Object.entries(results.procedures)) {
  console.log(`\nEvery procedure (${mode}; the e2e test's figures, ${Object.values(procedures)[0]?.length ?? 0} rounds): longest gap in acknowledged writes`);
  for (const [name, rows] of Object.entries(procedures)) {
    console.log(`  ${name.padEnd(24)} API ${fmt(rows.map((r) => r.api.longestGapMs))}   etcd through HAProxy ${fmt(rows.map((r) => r.etcd.longestGapMs))}`);
  }
}
mkdirSync(RESULTS, { recursive: true });
writeFileSync(join(RESULTS, 'apiserver.json'), `${JSON.stringify(results, null, 2)}\n`);
