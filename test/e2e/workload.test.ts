// The concurrent workload and the checker against a real lab: 8 clients (pinned to members and
// through HAProxy) and two watchers on 10 keys. Linearizable reads pass through a leader kill and a
// partition; serializable reads from a member cut off from the others are stale, which etcd allows,
// and each must still be what the store held at the revision it names.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHistory } from '../../src/checker/check.js';
import { loadLab } from '../../src/config/load.js';
import type { UpResult } from '../../src/lab/up.js';
import { Workload, type ClientSpec } from '../../src/workload/workload.js';
import { DockerEngine } from '../../src/engine/docker.js';
import type { Endpoint } from '../../src/protocol/etcd-http.js';
import { LabRuntime } from '../../src/runtime/lab.js';
import { clientOf, createTestLab, skipE2E, type TestLab } from './lab-fixture.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Lets the workload run until it has recorded `more` operations beyond those it has now: a window
 * measured in work done, not in time, so a busy machine makes it longer instead of emptier.
 */
async function operationsMore(w: Workload, more: number, timeoutMs = 60_000): Promise<void> {
  const target = w.operations.length + more;
  for (const deadline = Date.now() + timeoutMs; w.operations.length < target; await sleep(50)) {
    if (Date.now() > deadline) throw new Error(`the workload recorded only ${w.operations.length} of ${target} operations in ${timeoutMs} ms`);
  }
}

describe.skipIf(skipE2E)('the concurrent workload and the checker on a real lab', () => {
  let lab: TestLab;
  let runtime: LabRuntime;
  let haproxy: Endpoint;
  /** Each member's client endpoint, looked up again after a restart or a cut (it may get another host port). */
  let members = new Map<string, Endpoint>();
  const refresh = async () => {
    members = await runtime.memberEndpoints();
  };

  beforeAll(async () => {
    lab = await createTestLab('workload');
    haproxy = clientOf(lab, (await lab.json<UpResult>(['up'])).clientEndpoint);
    runtime = new LabRuntime(loadLab({ cwd: lab.dir }), new DockerEngine());
    await refresh();
  });
  afterAll(async () => lab?.remove());

  const workload = (name: string, reads: 'linearizable' | 'serializable' = 'linearizable') => {
    const pinned = (m: string): ClientSpec => ({ via: m, endpoint: () => members.get(m)! });
    const viaHaproxy: ClientSpec = { via: 'haproxy', endpoint: () => haproxy };
    return new Workload({
      prefix: `workload/${name}/`,
      keys: 10,
      clients: [pinned('etcd1'), pinned('etcd2'), pinned('etcd3'), pinned('etcd1'), pinned('etcd2'), pinned('etcd3'), viaHaproxy, viaHaproxy],
      watchers: [[viaHaproxy], [pinned('etcd1'), pinned('etcd2'), pinned('etcd3')]],
      rate: 200,
      callTimeoutMs: 1000,
      reads,
      control: haproxy,
      lab: lab.name,
    });
  };

  it('a healthy lab: every operation placed, both watchers agree, no violation', async () => {
    const w = workload('healthy');
    await w.start();
    await operationsMore(w, 400);
    const history = await w.stop();
    const result = checkHistory(history);
    expect(result.violations).toEqual([]);
    expect(result.counts.operations).toBeGreaterThan(300);
    expect(result.counts.committedRevisions).toBeGreaterThan(100);
    expect(history.watches.every((s) => s.end === 'closed')).toBe(true);
    expect(new Set(history.operations.map((op) => op.request.op))).toEqual(new Set(['get', 'put', 'delete', 'cas', 'txn']));
  });

  it('through a leader kill and a partition of the new leader: no violation, and the unknown writes are decided', async () => {
    const w = workload('faults');
    await w.start();
    await operationsMore(w, 150);
    const killed = await runtime.leader();
    expect(await lab.cli(['kill', killed!])).toExitWith(0);
    // Held until the survivors have served the workload a while (kill waits for their election).
    await operationsMore(w, 200);
    expect(await lab.cli(['start', killed!])).toExitWith(0);
    await refresh();
    await operationsMore(w, 150);
    const cut = await runtime.leader();
    expect(await lab.cli(['partition', cut!])).toExitWith(0);
    await refresh();
    await operationsMore(w, 200);
    expect(await lab.cli(['heal', cut!])).toExitWith(0);
    await operationsMore(w, 200);
    const history = await w.stop();
    const result = checkHistory(history);
    expect(result.violations).toEqual([]);
    expect(result.counts.failed + result.counts.unknown).toBeGreaterThan(0);
    expect(history.watches.length).toBeGreaterThan(2); // the pinned watcher resumed on another member
  });

  it('serializable reads from a member cut off from the others: stale, which is legal (counted), and each the store at its revision', async () => {
    const w = workload('stale', 'serializable');
    await w.start();
    await operationsMore(w, 100);
    const leader = await runtime.leader();
    const victim = ['etcd1', 'etcd2', 'etcd3'].find((m) => m !== leader)!;
    expect(await lab.cli(['partition', victim])).toExitWith(0);
    await refresh(); // cut off, it is published on another host port
    // Cut off while the others write on: its own state falls behind theirs.
    await operationsMore(w, 300);
    expect(await lab.cli(['heal', victim])).toExitWith(0);
    await operationsMore(w, 100);
    const history = await w.stop();
    const result = checkHistory(history);
    expect(result.violations).toEqual([]);
    expect(result.counts.staleSerializableReads).toBeGreaterThan(0);
    // A stale answer is allowed; an impossible one is not: one of the victim's answers, changed to a
    // value its key never held at that revision, is caught.
    const read = history.operations.find((op) => op.via === victim && op.request.op === 'get' && op.response?.op === 'get' && op.response.value !== undefined)!;
    expect(read).toBeDefined();
    (read.response as { value?: string }).value = 'never-written';
    expect(checkHistory(history).violations.map((v) => v.kind)).toEqual(['wrong-value']);
  });
});
