// `up` / `status` / `down` for real: the commands themselves against the Docker engine.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DownResult } from '../../src/lab/down.js';
import type { UpResult } from '../../src/lab/up.js';
import { getKey, putKey } from '../../src/protocol/etcd-http.js';
import type { LabStatus } from '../../src/runtime/status.js';
import { createTestLab, labResources, skipE2E, type TestLab } from './lab-fixture.js';

/** Reads a key from one member's local copy until it shows `value` (followers apply a moment later). */
async function readFromMember(port: number, key: string, value: string): Promise<string | undefined> {
  const deadline = Date.now() + 5000;
  let seen: string | undefined;
  while (Date.now() < deadline) {
    seen = await getKey(`http://127.0.0.1:${port}`, key, { serializable: true, timeoutMs: 1000 }).catch(() => undefined);
    if (seen === value) return seen;
    await new Promise((r) => setTimeout(r, 50));
  }
  return seen;
}

describe.skipIf(skipE2E)('a 3-member lab', () => {
  let lab: TestLab;
  let first: UpResult;

  beforeAll(async () => {
    lab = await createTestLab('life');
    first = await lab.json<UpResult>(['up']);
  });
  afterAll(async () => lab?.remove());

  it('up reaches quorum: one leader, 3 healthy members, every HAProxy backend UP', () => {
    expect(first.alreadyUp).toBe(false);
    expect(first.clientEndpoint).toBe(`http://127.0.0.1:${lab.clientPort}`);
    expect(first.status.members.filter((m) => m.isLeader)).toHaveLength(1);
    expect(first.status.members.every((m) => m.healthy && m.backend === 'UP')).toBe(true);
    expect(first.status.quorum).toMatchObject({ members: 3, healthy: 3, held: true, tolerates: 1 });
  });

  it('status --json reports one leader and 3 healthy members, read over etcd\'s API', async () => {
    const status = await lab.json<LabStatus>(['status']);
    expect(status.members).toHaveLength(3);
    expect(status.members.filter((m) => m.healthy)).toHaveLength(3);
    const leaders = status.members.filter((m) => m.isLeader);
    expect(leaders).toHaveLength(1);
    expect(status.leader).toBe(leaders[0]!.name);
    // Every member follows the same leader in the same term.
    expect(new Set(status.members.map((m) => m.leaderId)).size).toBe(1);
    expect(new Set(status.members.map((m) => m.raftTerm)).size).toBe(1);
    expect(status.summary).toBe('3/3 healthy — quorum held, tolerates 1 more failure');
  });

  it('status prints the table people read', async () => {
    const r = await lab.cli(['status']);
    expect(r).toExitWith(0);
    expect(r.stdout).toMatch(/MEMBER\s+ADDRESS\s+CONTAINER\s+HEALTH\s+LEADER\s+TERM\s+INDEX\s+DB SIZE\s+VERSION\s+HAPROXY/);
    expect(r.stdout.match(/^etcd\d .*healthy/gm)).toHaveLength(3);
  });

  it('status --watch refreshes until interrupted', async () => {
    const { spawn } = await import('node:child_process');
    const bin = new URL('../../bin/etcd-lab.js', import.meta.url).pathname;
    const child = spawn(process.execPath, [bin, 'status', '--watch', '0.3', '--json'], { cwd: lab.dir, env: { ...process.env, CI: 'true' } });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    const deadline = Date.now() + 10_000;
    while (out.split('\n').filter(Boolean).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGINT');
    const reads = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as LabStatus);
    expect(reads.length).toBeGreaterThanOrEqual(3);
    for (const r of reads) expect(r.quorum.held).toBe(true);
  });

  it('logs shows a member\'s own log, and names the choices for an unknown one', async () => {
    const one = await lab.cli(['logs', 'etcd2', '--tail', '20']);
    expect(one).toExitWith(0);
    expect(one.stdout + one.stderr).toMatch(/"msg":/);
    const all = await lab.cli(['logs', '--tail', '2']);
    expect(all.stdout).toMatch(/^etcd1\s+\| /m);
    expect(all.stdout).toMatch(/^haproxy\s+\| /m);
    const unknown = await lab.cli(['logs', 'etcd9']);
    expect(unknown).toExitWith(1);
    expect(unknown.stderr).toMatch(/choose one of: etcd1, etcd2, etcd3, haproxy/);
  });

  it('a put through HAProxy is readable from every member', async () => {
    const value = `v-${Date.now()}`;
    await putKey(first.clientEndpoint, 'e2e/replicated', value);
    const status = await lab.json<LabStatus>(['status']);
    for (const m of status.members) {
      expect(await readFromMember(m.hostPort!, 'e2e/replicated', value), m.name).toBe(value);
    }
  });

  it('up twice is a no-op that reports status', async () => {
    const before = await labResources(lab.name);
    const again = await lab.json<UpResult>(['up']);
    expect(again.alreadyUp).toBe(true);
    expect(again.status.quorum.held).toBe(true);
    const after = await labResources(lab.name);
    expect(after).toEqual(before);
  });

  it('down keeps the data: a second up still has the key', async () => {
    await putKey(first.clientEndpoint, 'e2e/durable', 'kept');
    const down = await lab.json<DownResult>(['down']);
    expect(down.removed.containers).toHaveLength(4);
    expect(down.keptVolumes).toHaveLength(3);
    const between = await labResources(lab.name);
    expect(between.containers).toEqual([]);
    expect(between.networks).toEqual([]);
    expect(between.volumes).toHaveLength(3);

    const second = await lab.json<UpResult>(['up']);
    expect(second.alreadyUp).toBe(false);
    expect(await getKey(second.clientEndpoint, 'e2e/durable')).toBe('kept');
  });

  it('down --volumes asks first: without a terminal and without --yes it refuses and removes nothing', async () => {
    const r = await lab.cli(['down', '--volumes']);
    expect(r).toExitWith(1);
    expect(r.stderr).toMatch(/add --yes/);
    expect((await labResources(lab.name)).containers).toHaveLength(4);
  });

  it('down --volumes --yes leaves no container, network or volume behind', async () => {
    const r = await lab.cli(['down', '--volumes', '--yes']);
    expect(r).toExitWith(0);
    expect(await labResources(lab.name)).toEqual({ containers: [], networks: [], volumes: [] });
  });
});

describe.skipIf(skipE2E)('a 5-member lab', () => {
  let lab: TestLab;
  beforeAll(async () => {
    lab = await createTestLab('five', { members: 5 });
  });
  afterAll(async () => lab?.remove());

  it('comes up with 5 healthy members, one leader, tolerating 2 failures', async () => {
    const result = await lab.json<UpResult>(['up']);
    expect(result.status.members).toHaveLength(5);
    expect(result.status.members.filter((m) => m.healthy && m.backend === 'UP')).toHaveLength(5);
    expect(result.status.members.filter((m) => m.isLeader)).toHaveLength(1);
    expect(result.status.quorum).toMatchObject({ members: 5, healthy: 5, needed: 3, tolerates: 2, held: true });
    const r = await lab.cli(['down', '--volumes', '--yes']);
    expect(r).toExitWith(0);
    expect(await labResources(lab.name)).toEqual({ containers: [], networks: [], volumes: [] });
  });
});
