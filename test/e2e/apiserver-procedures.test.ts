// Kubernetes' own storage code through every procedure of the etcd operations guide, in both TLS
// modes: `etcd-lab apiserver` on a 3-member lab that starts on etcd 3.4, with a Kubernetes-shaped
// client (creates, updates and deletes with resourceVersion preconditions, a resuming watch) running
// through each procedure, and beside it a writer talking to etcd through HAProxy. After each: every
// acknowledged API write is there with its value, the watch saw every change in order or was told to
// re-list (410 Gone), and the API server serves. Each procedure's two longest gaps are printed and
// saved (test-artifacts/apiserver-procedures-<mode>.json). ETCD_LAB_APISERVER_ROUNDS repeats each
// procedure (CI: 1; `make soak`: more). `make test` runs each procedure in one mode (a leader kill
// in both), `make soak` (ETCD_LAB_APISERVER_BOTH_MODES=1) every procedure in both.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiServerEndpoint, type ApiServerResult } from '../../src/lab/apiserver.js';
import type { SaveResult } from '../../src/lab/snapshot.js';
import type { RestoreResult } from '../../src/lab/restore.js';
import type { UpResult } from '../../src/lab/up.js';
import { fetchWithDeadline, putKey, type Endpoint } from '../../src/protocol/etcd-http.js';
import { streamLines } from '../../src/protocol/http-stream.js';
import { KubeWorkload, WIDGETS, WIDGETS_CRD, type KubeWorkloadResult } from '../../src/workload/kube.js';
import type { LabStatus } from '../../src/runtime/status.js';
import { checkHistory } from '../../src/checker/check.js';
import { longestUnavailable } from '../../src/lab/check.js';
import { Workload } from '../../src/workload/workload.js';
import { cliIn, clientOf, createTestLab, removeNetwork, skipE2E, TEST_IMAGES, type TestLab } from './lab-fixture.js';

const ROUNDS = Number(process.env.ETCD_LAB_APISERVER_ROUNDS ?? 1);
const ROUND_LIST = Array.from({ length: ROUNDS }, (_, i) => i + 1);
const BOTH_MODES = process.env.ETCD_LAB_APISERVER_BOTH_MODES === '1';
const LEADER_KILLS = 5;
type Mode = 'plain' | 'TLS';
/** Where `make test` runs each procedure; `make soak` runs all of them in both modes. */
const CI_MODES: Record<string, Mode[]> = {
  upgrade: ['plain'],
  'leader kill': ['plain', 'TLS'],
  'leader pause': ['TLS'],
  partition: ['plain'],
  'leader move': ['TLS'],
  'member replace': ['plain'],
  scale: ['TLS'],
  defrag: ['plain'],
  NOSPACE: ['TLS'],
  restore: ['plain'],
};
const runsIn = (procedure: keyof typeof CI_MODES, mode: Mode) => BOTH_MODES || CI_MODES[procedure]!.includes(mode);
const BUILD_DEADLINE_MS = 40 * 60_000;
const ETCD_34 = 'etcd-lab/etcd:3.4-bookworm';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


interface Figure {
  procedure: string;
  round: number;
  api: Omit<KubeWorkloadResult, 'violations'> & { violations: number };
  etcd: { acknowledged: number; failed: number; unknown: number; longestGapMs: number };
  /** From the end of the window until /readyz answered ok (0: at once). */
  readyAfterMs: number;
  tookMs: number;
}

describe.skipIf(skipE2E).each([
  { mode: 'plain' as Mode, tls: false },
  { mode: 'TLS' as Mode, tls: true },
])('the API server through the procedures ($mode)', ({ mode, tls }) => {
  const upgrades = runsIn('upgrade', mode);
  /** A procedure's test, registered where this mode runs it (CI_MODES), not at all elsewhere. */
  const procedure = (name: keyof typeof CI_MODES, title: string, opts: { timeout: number }, test: () => Promise<void>) => {
    if (runsIn(name, mode)) it(title, opts, test);
  };
  let lab: TestLab;
  let network: string;
  let api: Endpoint;
  let etcd: Endpoint;
  let apiserver: ApiServerResult;
  const figures: Figure[] = [];

  beforeAll(async () => {
    for (const args of [['images', 'build', '--apiserver'], ...(upgrades ? [['images', 'build', '--etcd-version', '3.4']] : [])]) {
      const build = await cliIn(process.cwd())(args);
      expect(build).toExitWith(0);
    }
    // 64 MiB: room for every procedure's writes, and a quota a test can fill in seconds.
    lab = await createTestLab(`apr${tls ? 't' : 'p'}`, { members: 3, tls: { enabled: tls }, etcd: { quotaBackendBytes: '64MiB' } });
    // On etcd 3.4 where the upgrade runs; else on the lab's usual 3.5.
    const env = join(lab.dir, '.env');
    if (upgrades) writeFileSync(env, readFileSync(env, 'utf8').replace(/^ETCD_LAB_ETCD_IMAGE=.*$/m, `ETCD_LAB_ETCD_IMAGE=${ETCD_34}`));
    network = `${lab.name}-kind`;
    etcd = clientOf(lab, (await lab.json<UpResult>(['up'])).clientEndpoint);
    const started = await lab.cli(['apiserver', '--json'], { KIND_EXPERIMENTAL_DOCKER_NETWORK: network });
    expect(started).toExitWith(0);
    apiserver = JSON.parse(started.stdout) as ApiServerResult;
    api = apiServerEndpoint(join(lab.dir, 'generated'), apiserver.server);
    const crd = await fetchWithDeadline(api, { method: 'POST', body: JSON.stringify(WIDGETS_CRD), headers: { 'content-type': 'application/json' } }, 10_000, '/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
    expect(crd.status, crd.text).toBe(201);
    await waitForWidgets(api);
  }, BUILD_DEADLINE_MS);

  afterAll(async () => {
    if (figures.length > 0) {
      mkdirSync('test-artifacts', { recursive: true });
      writeFileSync(join('test-artifacts', `apiserver-procedures-${mode}.json`), `${JSON.stringify(figures, null, 2)}\n`);
    }
    await lab?.remove();
    if (network) await removeNetwork(network);
  });

  /** Runs `procedure` ROUNDS times (or `rounds`), with both clients going; checks the API client's outcome and the etcd writer's each time. */
  async function through(name: string, procedure: () => Promise<void>, rounds: number[] = ROUND_LIST): Promise<void> {
    for (const round of rounds) {
      // Object names: lowercase DNS labels.
      const slug = `${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-${round}-`;
      const workload = await new KubeWorkload({ api, prefix: slug, objects: 8, callTimeoutMs: 5000, pauseMs: 5 }).start();
      // Beside it, `check`'s workload on etcd through HAProxy: judged by the checker afterwards.
      const haproxy = { via: 'haproxy', endpoint: () => etcd };
      const writer = new Workload({ prefix: `etcd/${slug}`, keys: 10, clients: [haproxy, haproxy, haproxy, haproxy], watchers: [[haproxy], [haproxy]], rate: 200, callTimeoutMs: 2000, reads: 'linearizable', control: etcd, lab: lab.name });
      await writer.start();
      await sleep(1000);
      const from = Date.now();
      try {
        await procedure();
      } catch (error) {
        // Neither client may go on writing into the next procedure's window.
        await Promise.allSettled([workload.stop(), writer.stop()]);
        throw error;
      }
      const tookMs = Date.now() - from;
      await sleep(1000);
      // Both windows end together: what is still hanging then counts as a gap for either client.
      const windowEnd = writer.now();
      const [outcome, history] = await Promise.all([workload.stop(), writer.stop()]);
      const verdict = checkHistory(history);
      const lastAck = history.operations.filter((op) => op.outcome === 'ok' && op.callMs < windowEnd).reduce((last, op) => Math.max(last, op.returnMs), 0);
      const etcdGapMs = Math.max(longestUnavailable(history), windowEnd - lastAck);
      // The API server serves again: its own readiness, which also asks etcd.
      const readyAfterMs = await readyAgain(api);
      const figure: Figure = { procedure: name, round, api: { ...outcome, violations: outcome.violations.length }, etcd: { acknowledged: verdict.counts.ok, failed: verdict.counts.failed, unknown: verdict.counts.unknown, longestGapMs: etcdGapMs }, readyAfterMs, tookMs };
      figures.push(figure);
      console.log(
        `apiserver (${mode}) through ${name}, round ${round}: API gap ${outcome.longestGapMs} ms (${outcome.acknowledged} acknowledged, ${outcome.unknown} unknown, ` +
          `${outcome.relists} re-lists), etcd through HAProxy gap ${etcdGapMs} ms; ready ${readyAfterMs} ms after; took ${tookMs} ms`,
      );
      expect(outcome.violations, outcome.violations.join('\n')).toEqual([]);
      expect(verdict.violations, JSON.stringify(verdict.violations.slice(0, 5), null, 1)).toEqual([]);
      expect(outcome.acknowledged).toBeGreaterThan(20);
      expect(outcome.watchEvents).toBeGreaterThan(20);
      // No etcd connection of the API server waited out gRPC's connect deadline: what a connection
      // HAProxy accepted and then never served looks like (docs/kind.md#why-the-api-server-stalled).
      expect(await connectDeadlinesSince(apiserver.container, from - 1000)).toEqual([]);
    }
  }

  const cli = async (...args: string[]) => {
    const r = await lab.cli(args);
    expect(r).toExitWith(0, `etcd-lab ${args.join(' ')}`);
    return r;
  };
  const follower = async () => (await lab.json<LabStatus>(['status'])).members.find((m) => !m.isLeader)!.name;

  // In this order: the lab starts on 3.4 for the upgrade, scale returns it to 3 members.
  // Once, whatever ROUNDS says: the lab starts on 3.4, and an upgrade to what runs is no upgrade.
  procedure('upgrade', 'upgrade 3.4 → 3.5', { timeout: 300_000 }, async () => {
    expect((await lab.json<LabStatus>(['status'])).clusterVersion).toBe('3.4.0');
    await through('upgrade', async () => void (await cli('upgrade', '--etcd-image', TEST_IMAGES.etcd)), [1]);
    expect((await lab.json<LabStatus>(['status'])).clusterVersion).toBe('3.5.0');
  });

  // Five in a row, as a user's loop does it: a connection frozen at one of them is caught.
  procedure('leader kill', 'leader kill, five times', { timeout: ROUNDS * 180_000 }, () =>
    through('leader kill', async () => {
      for (let k = 0; k < LEADER_KILLS; k++) {
        await cli('kill', 'leader');
        await sleep(2000);
        await cli('start');
        await sleep(1000);
      }
    }));

  procedure('leader pause', 'leader pause', { timeout: ROUNDS * 120_000 }, () =>
    through('leader pause', async () => {
      await cli('pause', 'leader');
      await sleep(3000);
      await cli('unpause');
    }));

  procedure('partition', 'a minority partition holding the leader', { timeout: ROUNDS * 120_000 }, () =>
    through('partition of the leader', async () => {
      await cli('partition', 'leader');
      await sleep(3000);
      await cli('heal');
    }));

  procedure('leader move', 'leader move', { timeout: ROUNDS * 120_000 }, () => through('leader move', async () => void (await cli('leader', await follower()))));

  procedure('member replace', 'member replace', { timeout: ROUNDS * 180_000 }, () => through('member replace', async () => void (await cli('member', 'replace', await follower(), '--force'))));

  procedure('scale', 'scale 3 → 5 → 3', { timeout: ROUNDS * 300_000 }, async () => {
    for (const round of ROUND_LIST) {
      await through('scale 3 to 5', async () => void (await cli('scale', '5')), [round]);
      await through('scale 5 to 3', async () => void (await cli('scale', '3')), [round]);
    }
  });

  procedure('defrag', 'defrag', { timeout: ROUNDS * 120_000 }, () => through('defrag', async () => void (await cli('defrag'))));

  procedure('NOSPACE', 'NOSPACE and alarm recover', { timeout: ROUNDS * 240_000 }, () =>
    through('NOSPACE', async () => {
      // Overwriting a few keys: the history fills the quota, as constantly updated objects do.
      const big = 'y'.repeat(100_000);
      let full = false;
      for (let n = 0; n < 5000 && !full; n++) {
        await putKey(etcd, `hot/${n % 20}`, `${n}:${big}`, 5000).catch((error: Error) => {
          if (/database space exceeded/.test(error.message)) full = true;
        });
      }
      expect(full).toBe(true);
      await sleep(2000);
      await cli('alarm', 'recover');
    }));

  procedure('restore', "snapshot restore: the API server is stopped and started again, serves the snapshot's objects, and a watch from before is told to re-list", { timeout: ROUNDS * 240_000 }, async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const collection = `/apis/${WIDGETS.group}/${WIDGETS.version}/namespaces/${WIDGETS.namespace}/${WIDGETS.plural}`;
      const create = (name: string) =>
        fetchWithDeadline(api, { method: 'POST', body: JSON.stringify({ apiVersion: `${WIDGETS.group}/${WIDGETS.version}`, kind: WIDGETS.kind, metadata: { name }, spec: { size: round } }), headers: { 'content-type': 'application/json' } }, 10_000, collection);
      expect((await create(`before-${round}`)).status).toBe(201);
      const saved = await lab.json<SaveResult>(['snapshot', 'save']);
      const after = await create(`after-${round}`);
      expect(after.status).toBe(201);
      const seenRv = (JSON.parse(after.text) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;

      // etcdutl (3.5) bumps the revision, which is what tells a watcher to re-list; etcd 3.4's etcdctl
      // cannot. Run alone (-t), this test finds the lab still on 3.4: it upgrades it first.
      if ((await lab.json<LabStatus>(['status'])).clusterVersion === '3.4.0') await cli('upgrade', '--etcd-image', TEST_IMAGES.etcd);
      const bump = 1_000_000_000;
      const restored = await lab.json<RestoreResult>(['snapshot', 'restore', saved.file, '--yes']);
      expect(restored.apiServerRestarted).toBe(apiserver.container);
      expect(restored.bumpedBy).toBe(bump);
      expect(restored.revision).toBeGreaterThanOrEqual(saved.revision + bump);

      // It serves at once (restore waited for /readyz), from the snapshot.
      expect((await fetchWithDeadline(api, {}, 10_000, `${collection}/before-${round}`)).status).toBe(200);
      expect((await fetchWithDeadline(api, {}, 10_000, `${collection}/after-${round}`)).status).toBe(404);
      // A client resuming its watch from a resourceVersion it saw before the restore is told to re-list
      // (after "storage is (re)initializing", 429 with Retry-After, while the new watch cache fills, as client-go retries).
      const told = await resumeWatch(api, `${collection}?watch=1&resourceVersion=${seenRv}`);
      expect(told).toBe('ERROR 410');
    }
    // And a Kubernetes-shaped client works on the restored lab as before.
    await through('after restore', async () => void (await sleep(3000)));
  });
});

/** What a watch resumed at `path` is told first: "ERROR <code>", an event type, or how the stream ended. Retries 429 for up to 30 s. */
async function resumeWatch(api: Endpoint, path: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const events: string[] = [];
    const watch = streamLines(api, { method: 'GET', path }, (line) => {
      const event = JSON.parse(line) as { type: string; object: { code?: number } };
      events.push(event.type === 'ERROR' ? `ERROR ${event.object.code}` : event.type);
      watch.close();
    });
    const end = await Promise.race([watch.ended, sleep(10_000).then(() => undefined)]);
    watch.close();
    if (events[0]) return events[0];
    if (end === undefined) return 'no answer in 10 s';
    if (end.end === 'broken' && end.status === 410) return 'ERROR 410';
    if (end.end === 'broken' && end.status === 429 && Date.now() < deadline) {
      await sleep(1000);
      continue;
    }
    return JSON.stringify(end);
  }
}

/** The API server's gRPC lines of connections to etcd that waited out their connect deadline since `sinceMs`. */
async function connectDeadlinesSince(container: string, sinceMs: number): Promise<string[]> {
  const log = await new Docker().getContainer(container).logs({ stdout: true, stderr: true, since: Math.floor(sinceMs / 1000) });
  return log
    .toString('utf8')
    .split('\n')
    .filter((line) => /createTransport failed/.test(line) && /use of closed network connection|context deadline exceeded/.test(line));
}

/** Milliseconds until the API server's /readyz answers ok; fails after 30 s with its last answer. */
async function readyAgain(api: Endpoint): Promise<number> {
  const from = Date.now();
  let last = '';
  while (Date.now() - from < 30_000) {
    const r = await fetchWithDeadline(api, {}, 5000, '/readyz?exclude=informer-sync').catch((error: Error) => ({ status: 0, text: error.message }));
    if (r.status === 200) return Date.now() - from;
    last = r.text;
    await sleep(100);
  }
  throw new Error(`the API server was not ready 30 s after the procedure: ${last}`);
}

async function waitForWidgets(api: Endpoint): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await fetchWithDeadline(api, {}, 5000, `/apis/${WIDGETS.group}/${WIDGETS.version}/namespaces/${WIDGETS.namespace}/${WIDGETS.plural}`).catch(() => undefined);
    if (r?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`the widgets resource was not served within 30 s (last: ${r ? `HTTP ${r.status} ${r.text.slice(0, 200)}` : 'no answer'})`);
    await sleep(200);
  }
}
