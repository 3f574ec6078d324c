// Backup and disaster recovery on real containers: `snapshot save` (also under check's workload and
// checker), `status` and `restore`, in plain and TLS mode; a bad snapshot is refused with the lab untouched; a restore that fails, is
// interrupted, or is killed outright leaves the old data in place or restorable.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SaveResult } from '../../src/lab/snapshot.js';
import type { RestoreResult } from '../../src/lab/restore.js';
import type { UpResult } from '../../src/lab/up.js';
import type { LabStatus } from '../../src/runtime/status.js';
import { b64, countPrefix, getKey, getPrefix, post, putKey, type Endpoint } from '../../src/protocol/etcd-http.js';
import type { SnapshotInfo } from '../../src/runtime/snapshot.js';
import { LABEL } from '../../src/config/topology.js';
import { stateAt } from '../../src/checker/check.js';
import type { History } from '../../src/checker/history.js';
import { kvList } from '../../src/protocol/etcd-kv.js';
import { BIN, cliEnv, clientOf, createTestLab, labResources, skipE2E, spawnCli, TEST_IMAGES, underCheck, type TestLab } from './lab-fixture.js';

/** A shell line in the lab's directory with `etcd-lab env` applied: how a person drives the host's own etcdctl. */
function withEnv(lab: TestLab, line: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile('bash', ['-c', `eval "$(${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} env)" && ${line}`], { cwd: lab.dir, env: cliEnv() }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

/** Every member's own copy (serializable reads, one member at a time) of the keys under `prefix`. */
async function perMember(lab: TestLab, prefix: string): Promise<Map<string, string>[]> {
  const status = await lab.json<LabStatus>(['status']);
  return Promise.all(
    status.members.map(async (m) => {
      const url = `${status.clientEndpoint.startsWith('https') ? 'https' : 'http'}://127.0.0.1:${m.hostPort}`;
      return (await getPrefix(clientOf(lab, url), prefix, { serializable: true })).values;
    }),
  );
}

async function memberIds(lab: TestLab): Promise<string[]> {
  const docker = new Docker();
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL.lab}=${lab.name}`, `${LABEL.role}=etcd`] } });
  return list.map((c) => c.Id).sort();
}

describe.skipIf(skipE2E).each([{ tls: false }, { tls: true }])('snapshot save and restore, TLS $tls', ({ tls }) => {
  let lab: TestLab;
  let client: Endpoint;
  let saved: SaveResult;

  beforeAll(async () => {
    lab = await createTestLab(tls ? 'bakt' : 'bak', { tls: { enabled: tls }, kind: { name: `kind-${tls ? 'bakt' : 'bak'}-${process.pid}` } });
    client = clientOf(lab, (await lab.json<UpResult>(['up'])).clientEndpoint);
  });
  afterAll(async () => lab?.remove());

  it('save: from a follower, into generated/snapshots/, with the status etcd reports', async () => {
    for (let i = 0; i < 50; i++) await putKey(client, `before/${i}`, `v${i}`);
    saved = await lab.json<SaveResult>(['snapshot', 'save']);
    expect(saved.file).toMatch(new RegExp(`/generated/snapshots/${lab.name}-\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\dZ\\.db$`));
    expect(saved.hashed).toBe(true);
    expect(saved.totalKeys).toBeGreaterThanOrEqual(50);
    expect(saved.revision).toBeGreaterThanOrEqual(51);
    const status = await lab.json<LabStatus>(['status']);
    expect(status.members.find((m) => m.name === saved.member)?.isLeader).toBe(false);
    // `snapshot status` reads the same file the same way; people get etcd's table.
    const again = await lab.json<SnapshotInfo>(['snapshot', 'status', saved.file]);
    expect(again).toMatchObject({ hash: saved.hash, revision: saved.revision, totalKeys: saved.totalKeys, totalSize: saved.totalSize });
    const human = await lab.cli(['snapshot', 'status', saved.file]);
    expect(human.stdout).toMatch(/^HASH\s+REVISION\s+TOTAL KEYS\s+TOTAL SIZE/m);
    expect(human.stdout).toContain(saved.hash.toString(16).padStart(8, '0'));
    // A file that exists is never overwritten.
    const twice = await lab.cli(['snapshot', 'save', saved.file]);
    expect(twice).toExitWith(2);
    expect(twice.stderr).toMatch(/already exists/);
  });

  // The save under check's workload, whose history a later restore is held to.
  let underCheckSave: { saved: SaveResult; history: History; prefix: string } | undefined;

  it("a save while check's workload runs (8 clients, 2 watchers): its history checks, and the snapshot is whole", async () => {
    const file = `${lab.dir}/generated/snapshots/under-check.db`;
    const prefix = `bak-check-${tls ? 't' : 'p'}/`;
    let during: SaveResult | undefined;
    const result = await underCheck(client, prefix, async () => {
      during = await lab.json<SaveResult>(['snapshot', 'save', file]);
    });
    expect(result.acknowledged).toBeGreaterThan(20);
    expect(during?.hashed).toBe(true);
    expect((await lab.json<SnapshotInfo>(['snapshot', 'status', file])).hash).toBe(during?.hash);
    underCheckSave = { saved: during!, history: result.history, prefix };
  });

  it("the host's own etcdctl (Debian's) reads etcd-lab's snapshot, and etcd-lab reads one etcdctl saved", async () => {
    const status = await withEnv(lab, `etcdctl snapshot status ${JSON.stringify(saved.file)} -w json`);
    expect(status).toExitWith(0, 'etcdctl comes with `etcd-lab setup-host --clients`');
    expect(JSON.parse(status.stdout.trim().split('\n').at(-1)!)).toMatchObject({ hash: saved.hash, revision: saved.revision, totalKey: saved.totalKeys });
    const theirs = `${lab.dir}/by-etcdctl.db`;
    const save = await withEnv(lab, `etcdctl snapshot save ${JSON.stringify(theirs)}`);
    expect(save).toExitWith(0);
    const info = await lab.json<SnapshotInfo>(['snapshot', 'status', theirs]);
    expect(info.hashed).toBe(true);
    expect(info.revision).toBeGreaterThanOrEqual(saved.revision);
  });

  it('restore refuses a damaged or cut-short snapshot before touching the lab', async () => {
    await putKey(client, 'after/marker', 'written after the snapshot');
    const ids = await memberIds(lab);
    const bytes = readFileSync(saved.file);
    const damaged = `${lab.dir}/damaged.db`;
    const copy = Buffer.from(bytes);
    copy[Math.floor(copy.length / 2)] = copy[Math.floor(copy.length / 2)]! ^ 0xff;
    writeFileSync(damaged, copy);
    const cut = `${lab.dir}/cut.db`;
    writeFileSync(cut, bytes.subarray(0, bytes.length - 1000));
    for (const [file, message] of [
      [damaged, /is damaged: its contents do not match the sha256/],
      [cut, /not a complete snapshot|is damaged/],
    ] as const) {
      const r = await lab.cli(['snapshot', 'restore', file, '--yes']);
      expect(r).toExitWith(2);
      expect(r.stderr).toMatch(message);
    }
    expect(await memberIds(lab)).toEqual(ids);
    expect(await getKey(client, 'after/marker')).toBe('written after the snapshot');
  });

  it('restore without --yes and without a terminal refuses', async () => {
    const r = await lab.cli(['snapshot', 'restore', saved.file]);
    expect(r).toExitWith(1);
    expect(r.stderr).toMatch(/without confirmation[\s\S]*--yes/);
  });

  it('restore refuses while a KIND cluster of the lab runs, saying why', async () => {
    const docker = new Docker();
    const spec = readFileSync(`${lab.dir}/etcd-lab.yaml`, 'utf8');
    const kindName = /name: (kind-[\w-]+)/.exec(spec)![1]!;
    const node = await docker.createContainer({
      Image: TEST_IMAGES.etcd,
      Entrypoint: ['sleep', '300'],
      name: `${kindName}-control-plane`,
      Labels: { 'io.x-k8s.kind.cluster': kindName, [LABEL.lab]: lab.name },
    });
    await node.start();
    try {
      const r = await lab.cli(['snapshot', 'restore', saved.file, '--yes']);
      expect(r).toExitWith(3);
      expect(r.stderr).toMatch(new RegExp(`KIND cluster "${kindName}" is running on this lab`));
      expect(r.stderr).toMatch(/API server caches[\s\S]*stop the API servers first[\s\S]*--ignore-kind/);
    } finally {
      await node.remove({ force: true });
    }
  });

  it('a restore that fails after the members were stopped puts the old data back', async () => {
    // Too short a deadline for the restored lab: the failure comes after the old data was replaced.
    const r = await lab.cli(['snapshot', 'restore', saved.file, '--yes', '--timeout', '0.1']);
    expect(r).toExitWith(4);
    expect(r.stderr).toMatch(/put the restored data in place/);
    expect(r.stderr).toMatch(/restore failed[\s\S]*the lab is back on its own data/);
    expect(await getKey(client, 'after/marker')).toBe('written after the snapshot');
    expect((await labResources(lab.name)).volumes.filter((v) => v.endsWith('-before-restore'))).toEqual([]);
  });

  it('restore: later writes gone, earlier ones there, at the reported revision, on every member', async () => {
    const result = await lab.json<RestoreResult>(['snapshot', 'restore', saved.file, '--yes']);
    // By default the revision moves past every one a client saw (etcdutl --bump-revision, all before it compacted).
    expect(result.bumpedBy).toBe(1_000_000_000);
    expect(result.revision).toBe(saved.revision + result.bumpedBy);
    expect(result.snapshot.revision).toBe(saved.revision);
    expect(await getKey(client, 'after/marker')).toBeUndefined();
    expect(await countPrefix(client, 'before/')).toBe(50);
    const copies = await perMember(lab, 'before/');
    expect(copies).toHaveLength(3);
    for (const copy of copies) {
      expect(copy.size).toBe(50);
      expect(copy.get('before/7')).toBe('v7');
    }
    // Nothing kept behind, and the lab takes writes again.
    const { volumes, containers } = await labResources(lab.name);
    expect(volumes).toHaveLength(3);
    expect(containers).toHaveLength(4);
    expect((await putKey(client, 'after/restore', 'yes')).revision).toBe(saved.revision + result.bumpedBy + 1);
    // A read at a revision from before the restore is refused as compacted, as a watcher resuming there would be.
    await expect(post(client, '/v3/kv/range', { key: b64('before/7'), revision: saved.revision }, 5000)).rejects.toThrow(/required revision has been compacted/);
  });
  it("restore of the snapshot saved under check's workload: exactly the store the checker replayed at its revision, and the restored lab passes check", async () => {
    if (!underCheckSave) throw new Error('the save under check did not run (its test failed first)');
    const { saved: during, history, prefix } = underCheckSave;
    const result = await lab.json<RestoreResult>(['snapshot', 'restore', during.file, '--yes']);
    expect(result.snapshot.revision).toBe(during.revision);
    // Every key of the workload as the replay has it at the snapshot's revision: value, mod and
    // create revision, version; nothing more, nothing less.
    const expected = stateAt(history, during.revision).map(({ key, value, modRevision, createRevision, version }) => ({ key, value, modRevision, createRevision, version }));
    const restored = (await kvList(client, prefix, { timeoutMs: 5000 })).kvs.map(({ key, value, modRevision, createRevision, version }) => ({ key, value, modRevision, createRevision, version }));
    expect(expected.length).toBeGreaterThan(0);
    expect(restored).toEqual(expected);
    // And the restored lab serves check's clients and watchers from its bumped revision on.
    const again = await underCheck(client, `${prefix}after-restore/`, async () => {
      await putKey(client, 'after/restore-under-check', 'yes');
    });
    expect(again.acknowledged).toBeGreaterThan(20);
  });
});

describe.skipIf(skipE2E)('restore across sizes, interrupted and killed restores', () => {
  let three: TestLab;
  let five: TestLab;
  let client3: Endpoint;
  let client5: Endpoint;

  beforeAll(async () => {
    three = await createTestLab('rst3', { members: 3 });
    five = await createTestLab('rst5', { members: 5 });
    client3 = (await three.json<UpResult>(['up'])).clientEndpoint;
    client5 = (await five.json<UpResult>(['up'])).clientEndpoint;
  });
  afterAll(async () => {
    await three?.remove();
    await five?.remove();
  });

  // Two saves and two restores (one of five members): 60–80 s on an idle 2-core machine, so more than
  // the default budget.
  it('a snapshot of a 3-member lab restores into a 5-member lab, and the reverse', { timeout: 240_000 }, async () => {
    await putKey(client3, 'from/three', '3');
    await putKey(client5, 'from/five', '5');
    const of3 = await three.json<SaveResult>(['snapshot', 'save']);
    const of5 = await five.json<SaveResult>(['snapshot', 'save']);

    // --bump-revision 0: the revision stays as the snapshot had it.
    const into5 = await five.json<RestoreResult>(['snapshot', 'restore', of3.file, '--yes', '--bump-revision', '0']);
    expect(into5.members).toHaveLength(5);
    expect(into5.bumpedBy).toBe(0);
    expect(into5.revision).toBe(of3.revision);
    for (const copy of await perMember(five, 'from/')) expect([...copy.entries()]).toEqual([['from/three', '3']]);

    const into3 = await three.json<RestoreResult>(['snapshot', 'restore', of5.file, '--yes']);
    expect(into3.members).toHaveLength(3);
    for (const copy of await perMember(three, 'from/')) expect([...copy.entries()]).toEqual([['from/five', '5']]);
    const status = await five.json<LabStatus>(['status']);
    expect(status.quorum).toMatchObject({ healthy: 5, held: true });
  });

  it('Ctrl-C while the restored lab starts: the old data comes back and the command says so', async () => {
    const snap = await three.json<SaveResult>(['snapshot', 'save']);
    await putKey(client3, 'after/ctrl-c', 'kept');
    const run = spawnCli(three.dir, ['snapshot', 'restore', snap.file, '--yes']);
    await run.waitFor(/\.\.\. start the members/, 90_000);
    run.child.kill('SIGINT');
    const r = await run.exited;
    expect(r).toExitWith(130);
    expect(r.stderr).toMatch(/restore interrupted: the lab is back on its own data/);
    expect(await getKey(client3, 'after/ctrl-c')).toBe('kept');
    expect((await labResources(three.name)).volumes.filter((v) => v.endsWith('-before-restore'))).toEqual([]);
  });

  it('a restore killed outright (SIGKILL) after replacing data leaves the old data restorable: `snapshot rollback`', async () => {
    const snap = await three.json<SaveResult>(['snapshot', 'save']);
    await putKey(client3, 'after/kill', 'kept');
    const run = spawnCli(three.dir, ['snapshot', 'restore', snap.file, '--yes']);
    await run.waitFor(/\.\.\. start the members/, 90_000);
    run.child.kill('SIGKILL');
    await run.exited;
    // The restore's copies of the old data are there, and a new restore will not run over them.
    expect((await labResources(three.name)).volumes.filter((v) => v.endsWith('-before-restore'))).toHaveLength(3);
    const blocked = await three.cli(['snapshot', 'restore', snap.file, '--yes']);
    expect(blocked).toExitWith(3);
    expect(blocked.stderr).toMatch(/an earlier restore[\s\S]*did not finish[\s\S]*etcd-lab snapshot rollback/);

    const back = await three.cli(['snapshot', 'rollback']);
    expect(back).toExitWith(0);
    expect(await getKey(client3, 'after/kill')).toBe('kept');
    for (const copy of await perMember(three, 'after/')) expect(copy.get('after/kill')).toBe('kept');
    expect((await labResources(three.name)).volumes.filter((v) => v.endsWith('-before-restore'))).toEqual([]);
  });
});
