// The rollbacks of the operations that change a running lab — scale, member replace, snapshot restore,
// upgrade, the faults — against
// the fake engine and a fake etcd cluster (no Docker): a failure at each step, the undo that follows,
// and the point of no return respected (what etcd's membership or data already holds is never
// "undone" by taking the files back; the error says where it stopped instead).
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import { replaceMember } from '../../src/lab/membership.js';
import { down } from '../../src/lab/down.js';
import { fault } from '../../src/lab/faults.js';
import { scale } from '../../src/lab/scale.js';
import { restoreLabSnapshot } from '../../src/lab/restore.js';
import { upgrade } from '../../src/lab/upgrade.js';
import { RecordingReporter } from '../../src/progress.js';
import { COMPOSE_FILE } from '../../src/render/index.js';
import { FakeEngine } from './fake-engine.js';
import type { FakeCluster } from './fake-etcd.js';
import { startFakeLab } from './fake-lab.js';

let dir: string;
let engine: FakeEngine;
let cluster: FakeCluster;

/** A running lab of `members` members: files generated, containers made by the fake compose, a fake etcd and HAProxy answering. */
async function runningLab(members: number): Promise<void> {
  cluster = await startFakeLab(dir, engine, members);
}

const membersIn = (file: string) => [...readFileSync(join(dir, 'generated', file), 'utf8').matchAll(/container_name: fakelab-(etcd\d)/g)].map((m) => m[1]);
const specCount = () => /^members: (\d+)$/m.exec(readFileSync(join(dir, 'etcd-lab.yaml'), 'utf8'))?.[1];
const failureOf = (work: Promise<unknown>) =>
  work.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as UserError,
  );

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'etcd-lab-rollback-'));
  engine = new FakeEngine();
});
afterEach(async () => {
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('scale', () => {
  const run = (members: number, timeoutMs = 2500) => scale({ cwd: dir, env: {}, engine, members, timeoutMs }, new RecordingReporter());

  it('the fixture: 3 → 5 against the fakes goes through (both join as learners, are promoted; the spec records 5)', async () => {
    await runningLab(3);
    const result = await run(5);
    expect(result.added).toEqual(['etcd4', 'etcd5']);
    expect(cluster.calls).toEqual([
      'member add http://10.250.0.14:2380 (learner)',
      'member promote etcd4',
      'member add http://10.250.0.15:2380 (learner)',
      'member promote etcd5',
    ]);
    expect(specCount()).toBe('5');
    expect(membersIn(COMPOSE_FILE)).toEqual(['etcd1', 'etcd2', 'etcd3', 'etcd4', 'etcd5']);
  });

  it('etcd refuses the first member add: nothing joined, so the files go back to 3 members and the spec is untouched', async () => {
    await runningLab(3);
    cluster.refuse.set('/v3/cluster/member/add', 'etcdserver: unhealthy cluster');
    const error = await failureOf(run(5));
    expect(error.message).not.toMatch(/scaling stopped with/);
    expect(cluster.calls).toEqual([]);
    expect(membersIn(COMPOSE_FILE)).toEqual(['etcd1', 'etcd2', 'etcd3']);
    expect(specCount()).toBe('3');
    expect(engine.volumesByName.has('fakelab-etcd4-data')).toBe(false);
  });

  it('the second new member never serves: past the first join nothing is taken back, and the error says how far it got', async () => {
    await runningLab(3);
    cluster.neverServes.add('etcd5');
    const error = await failureOf(run(5));
    expect(error.message).toMatch(/^scaling stopped with 5 members in etcd's membership \(etcd4 added, etcd5 added\)/);
    expect(error.hint).toMatch(/etcd-lab.yaml still says 3[\s\S]*etcdctl member remove <ID>/);
    expect(error.exitCode).toBe(ExitCode.failedPartWay);
    // The files stay at 5 (etcd4 serves from them), the spec at 3, etcd4 a voter.
    expect(membersIn(COMPOSE_FILE)).toEqual(['etcd1', 'etcd2', 'etcd3', 'etcd4', 'etcd5']);
    expect(specCount()).toBe('3');
    expect(cluster.calls).toContain('member promote etcd4');
    expect(cluster.calls).not.toContain('member promote etcd5');
  });

  it('5 → 3, the first removal refused: nothing left, the files are back at 5', async () => {
    await runningLab(5);
    cluster.refuse.set('/v3/cluster/member/remove', 'etcdserver: re-configuration failed due to not enough started members');
    const error = await failureOf(run(3));
    expect(error.message).not.toMatch(/scaling stopped with/);
    expect(membersIn(COMPOSE_FILE)).toEqual(['etcd1', 'etcd2', 'etcd3', 'etcd4', 'etcd5']);
    expect(engine.containersById.size).toBe(6);
  });
});

describe('member replace', () => {
  const run = (member: string, opts: { force?: boolean } = {}) => replaceMember({ cwd: dir, env: {}, engine, member, timeoutMs: 2500, ...opts }, new RecordingReporter());

  it('a healthy member is refused before anything changes', async () => {
    await runningLab(3);
    const error = await failureOf(run('etcd2'));
    expect(error.message).toMatch(/etcd2 is healthy/);
    expect(error.exitCode).toBe(ExitCode.refused);
    expect(cluster.calls).toEqual([]);
    expect(engine.calls).toEqual([]);
  });

  it('etcd refuses the member add after the old member was removed: nothing is put back, and running it again continues', async () => {
    await runningLab(3);
    const etcd2 = [...engine.containersById.values()].find((c) => c.name === 'fakelab-etcd2')!;
    await engine.containers.kill(etcd2.id);
    cluster.refuse.set('/v3/cluster/member/add', 'etcdserver: unhealthy cluster');
    const error = await failureOf(run('etcd2'));
    expect(error.message).toMatch(/^replacing etcd2 stopped: /);
    expect(error.hint).toMatch(/etcd-lab member replace etcd2` again continues from where this stopped/);
    expect(cluster.calls).toEqual(['member remove etcd2']);
    expect(engine.calls).toEqual(expect.arrayContaining(['remove container fakelab-etcd2', 'remove volume fakelab-etcd2-data']));

    // Running it again: the member is gone from etcd already, so it is added and started.
    cluster.refuse.clear();
    const again = await run('etcd2');
    expect(again.member).toBe('etcd2');
    expect(cluster.calls).toEqual(['member remove etcd2', 'member add http://10.250.0.12:2380 (learner)', 'member promote etcd2']);
  });
});

describe('upgrade', () => {
  it('a member that does not come back on the new image: the upgrade stops there, earlier members stay moved, the others untouched', async () => {
    await runningLab(3);
    engine.tools.versions.set('etcd-lab/etcd:next', '3.6.4');
    cluster.versionOn.set('etcd-lab/etcd:next', '3.6.4');
    // Followers first (etcd1 leads): etcd2 moves, etcd3 never serves on the new image.
    cluster.neverServesOn = { image: 'etcd-lab/etcd:next', members: new Set(['etcd3']) };
    const error = await failureOf(upgrade({ cwd: dir, env: {}, engine, image: 'etcd-lab/etcd:next', timeoutMs: 2500 }, new RecordingReporter()));
    expect(error.message).toMatch(/^etcd3 did not come back on etcd-lab\/etcd:next/);
    expect(error.hint).toMatch(/the upgrade stopped there; the other members still hold quorum \(etcd2 on 3\.6\.4\), etcd1 untouched/);
    expect(error.exitCode).toBe(ExitCode.failedPartWay);
    const images = Object.fromEntries([...engine.containersById.values()].filter((c) => c.labels['io.etcd-lab.role'] === 'etcd').map((c) => [c.labels['io.etcd-lab.member'], c.image]));
    expect(images).toMatchObject({ etcd2: 'etcd-lab/etcd:next', etcd3: 'etcd-lab/etcd:next' });
    expect(images.etcd1).not.toBe('etcd-lab/etcd:next');
    // Nothing recorded for the next `up`.
    expect(readFileSync(join(dir, '.env'), 'utf8')).not.toMatch(/etcd-lab\/etcd:next/);
  });
});

describe('snapshot restore', () => {
  /** A whole snapshot file (its sha256 trailer); the fake etcdutl says it is at revision 42. */
  const snapshotFile = () => {
    const file = join(dir, 'backup.db');
    const body = Buffer.alloc(1024, 7);
    writeFileSync(file, Buffer.concat([body, createHash('sha256').update(body).digest()]));
    return file;
  };
  const run = () => restoreLabSnapshot({ cwd: dir, env: {}, engine, file: snapshotFile(), yes: true, timeoutMs: 2500 }, new RecordingReporter());
  const putBackCopies = () => engine.calls.filter((c) => /^copy volume fakelab-etcd\d-data-before-restore to /.test(c));
  const keptLeft = () => [...engine.volumesByName.keys()].filter((v) => v.endsWith('-before-restore'));

  it('the fixture: a restore against the fakes goes through, the copies of the old data removed at the end', async () => {
    await runningLab(3);
    cluster.revision = 1_000_000_050;
    const result = await run();
    expect(result.snapshot.revision).toBe(42);
    expect(putBackCopies()).toEqual([]);
    expect(keptLeft()).toEqual([]);
  });

  it('putting the restored data in place fails: the members get their own data back, proven, and the copies go', async () => {
    await runningLab(3);
    cluster.revision = 1_000_000_050;
    engine.trouble.set('volumes.copyInto', { fail: new Error('no space left on device') });
    const error = await failureOf(run());
    expect(error.message).toBe('restore failed: no space left on device');
    expect(error.hint).toMatch(/the lab is back on its own data, as it was before/);
    // Only etcd1's volume had been replaced when it failed: only it is put back.
    expect(putBackCopies()).toEqual(['copy volume fakelab-etcd1-data-before-restore to fakelab-etcd1-data']);
    expect(keptLeft()).toEqual([]);
    expect([...engine.containersById.values()].filter((c) => c.state === 'running').length).toBe(4);
  });

  it('past the proof (the restored lab serves), a failure puts nothing back: the restore stands, and the error says what is left', async () => {
    await runningLab(3);
    cluster.revision = 1_000_000_050;
    engine.trouble.set('volumes.remove', { fail: new Error('volume is in use'), only: (call) => call.endsWith('-before-restore') });
    const error = await failureOf(run());
    expect(error.message).toMatch(/^the lab is restored \(revision 1000000050\), but removing the copies of the old data failed: volume is in use/);
    expect(error.hint).toMatch(/docker volume rm fakelab-etcd1-data-before-restore fakelab-etcd2-data-before-restore fakelab-etcd3-data-before-restore/);
    expect(putBackCopies()).toEqual([]);
    expect(keptLeft()).toHaveLength(3);
  });
});

describe('faults', () => {
  const stateOf = (member: string) => [...engine.containersById.values()].find((c) => c.name === `fakelab-${member}`)?.state;

  it('a kill of two members that fails at the second puts the first back: no fault is left half-made', async () => {
    await runningLab(3);
    engine.trouble.set('containers.kill', { fail: new Error('the engine refused'), only: (call) => call.includes(engineIdOf('etcd3')) });
    const error = await failureOf(fault({ cwd: dir, env: {}, engine, action: 'kill', members: ['etcd2', 'etcd3'], timeoutMs: 2500 }, new RecordingReporter()));
    expect(error.message).toBe('the engine refused');
    expect(engine.calls).toEqual(['kill container fakelab-etcd2', 'start container fakelab-etcd2']);
    expect([stateOf('etcd2'), stateOf('etcd3')]).toEqual(['running', 'running']);
  });

  it('once every member is acted on, a failure while waiting leaves the action as it is', async () => {
    await runningLab(3);
    // The lab's HAProxy stats page never answers after the start: the wait for the members to serve fails.
    const etcd2 = engineIdOf('etcd2');
    await engine.containers.kill(etcd2);
    cluster.neverServes.add('etcd2');
    engine.calls.splice(0);
    const error = await failureOf(fault({ cwd: dir, env: {}, engine, action: 'start', members: ['etcd2'], timeoutMs: 1500 }, new RecordingReporter()));
    expect(error.message).toMatch(/every member to be healthy|etcd2/);
    expect(engine.calls).toEqual(['start container fakelab-etcd2']);
    expect(stateOf('etcd2')).toBe('running');
  });
});

function engineIdOf(member: string): string {
  return [...engine.containersById.values()].find((c) => c.name === `fakelab-${member}`)!.id;
}

describe('down', () => {
  it('nothing to undo: a failure part-way says so, and down again removes the rest', async () => {
    await runningLab(3);
    engine.trouble.set('networks.remove', { fail: new Error('network has active endpoints') });
    const error = await failureOf(down({ cwd: dir, env: {}, engine, volumes: true, yes: true }, new RecordingReporter()));
    expect(error.message).toMatch(/network has active endpoints/);
    expect(engine.containersById.size).toBe(0);
    expect(engine.volumesByName.size).toBe(3);
    engine.trouble.clear();
    const again = await down({ cwd: dir, env: {}, engine, volumes: true, yes: true }, new RecordingReporter());
    expect(again.removed).toEqual({ containers: [], networks: ['fakelab'], volumes: ['fakelab-etcd1-data', 'fakelab-etcd2-data', 'fakelab-etcd3-data'] });
    expect([engine.containersById.size, engine.networksByName.size, engine.volumesByName.size]).toEqual([0, 0, 0]);
  });
});
