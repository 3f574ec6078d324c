// Maintenance on real containers, in plain and TLS mode: `defrag` shrinks every member while `check`'s
// workload through HAProxy goes on (every call answered, the history judged); a lab with a 16 MiB quota fills up (NOSPACE), `status` and `alarm list` say
// so, and `alarm recover` gives working writes back with no acknowledged write lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecoverResult, DefragReport } from '../../src/lab/maintenance.js';
import type { UpResult } from '../../src/lab/up.js';
import type { LabStatus } from '../../src/runtime/status.js';
import { deletePrefix, getPrefix, putKey, type Endpoint } from '../../src/protocol/etcd-http.js';
import { clientOf, createTestLab, skipE2E, type TestLab, underCheck } from './lab-fixture.js';

const MiB = 1024 * 1024;

describe.skipIf(skipE2E).each([{ tls: false }, { tls: true }])('defrag and the space quota, TLS $tls', ({ tls }) => {
  let lab: TestLab;
  let client: Endpoint;

  beforeAll(async () => {
    lab = await createTestLab(tls ? 'mntt' : 'mnt', {
      tls: { enabled: tls },
      // History is kept until compacted by hand, so that what fills the database is under the test's control.
      etcd: { quotaBackendBytes: '16MiB', autoCompaction: { mode: 'revision', retention: '1000000' } },
    });
    client = clientOf(lab, (await lab.json<UpResult>(['up'])).clientEndpoint);
  });
  afterAll(async () => lab?.remove());

  it('defrag --compact after deleting most keys shrinks every member, followers first, while writes go on', async () => {
    const value = 'x'.repeat(4096);
    for (let i = 0; i < 1500; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => putKey(client, `bulk/${String(i + j).padStart(4, '0')}`, value, 5000)));
    await deletePrefix(client, 'bulk/0');
    await deletePrefix(client, 'bulk/1');
    const before = await lab.json<LabStatus>(['status']);
    for (const m of before.members) expect(m.dbSize).toBeGreaterThan(5 * MiB);

    let result: { compactedTo: number; members: DefragReport[] } | undefined;
    const traffic = await underCheck(client, 'during-defrag/', async () => {
      result = await lab.json<{ compactedTo: number; members: DefragReport[] }>(['defrag', '--compact']);
    });

    expect(result!.compactedTo).toBeGreaterThan(1500);
    expect(result!.members.map((m) => m.wasLeader)).toEqual([false, false, true]);
    const leader = before.members.find((m) => m.isLeader)?.name;
    expect(result!.members.at(-1)!.member).toBe(leader);
    for (const m of result!.members) {
      expect(m.before.dbSize).toBeGreaterThan(5 * MiB);
      expect(m.after.dbSize).toBeLessThan(m.before.dbSize / 3);
    }
    const after = await lab.json<LabStatus>(['status']);
    for (const m of after.members) expect(m.dbSize).toBeLessThan(2 * MiB);
    // Every call through HAProxy was answered (the checker judged the history in underCheck).
    expect(traffic.notAcknowledged).toBe(0);
  });

  it('defrag of a member that is not there is refused with the names to choose from', async () => {
    const r = await lab.cli(['defrag', 'etcd9']);
    expect(r).toExitWith(2);
    expect(r.stderr).toMatch(/has no member "etcd9"[\s\S]*etcd1, etcd2, etcd3/);
  });

  it('a full database raises NOSPACE; status and alarm list show it; alarm recover brings writes back, nothing acknowledged lost', async () => {
    // Overwriting a few keys: the history fills the quota, as constantly updated objects do.
    const big = 'y'.repeat(100_000);
    const acknowledged = new Map<string, string>();
    let failure = '';
    let refused = { key: '', value: '' };
    for (let n = 0; n < 1000 && !failure; n++) {
      const key = `hot/${n % 20}`;
      const value = `${n}:${big}`;
      try {
        await putKey(client, key, value, 5000);
        acknowledged.set(key, value);
      } catch (error) {
        failure = (error as Error).message;
        refused = { key, value };
      }
    }
    expect(failure).toMatch(/database space exceeded/);

    const status = await lab.json<LabStatus>(['status']);
    expect(status.alarms.map((a) => a.alarm)).toEqual(['NOSPACE']);
    expect(status.summary).toMatch(/ALARM NOSPACE on etcd\d/);
    // Quorum is held: a full database still serves reads (HAProxy keeps routing to it).
    expect(status.quorum.held).toBe(true);
    expect(status.members.some((m) => m.alarms.includes('NOSPACE'))).toBe(true);
    const list = await lab.cli(['alarm', 'list']);
    expect(list.stdout).toMatch(/^etcd\d {2}NOSPACE$/m);
    await expect(putKey(client, 'hot/refused', 'x')).rejects.toThrow(/database space exceeded/);

    const recovered = await lab.json<RecoverResult>(['alarm', 'recover']);
    expect(recovered.disarmed.map((a) => a.alarm)).toContain('NOSPACE');
    expect(recovered.defragmented).toHaveLength(3);
    for (const m of recovered.defragmented) expect(m.after.dbSize).toBeLessThan(m.before.dbSize);
    expect(recovered.writeRevision).toBeGreaterThan(recovered.compactedTo);

    // The put answered NOSPACE is an unknown outcome, not a refusal: when a write crosses the quota
    // at apply time, etcd's quota applier applies it and then raises the alarm. Its key holds either.
    const values = (await getPrefix(client, 'hot/')).values;
    for (const [key, value] of acknowledged) {
      const ok = values.get(key) === value || (key === refused.key && values.get(key) === refused.value);
      expect(ok, `${key} keeps its last acknowledged value`).toBe(true);
    }
    await putKey(client, 'hot/after', 'works');
    const clear = await lab.json<LabStatus>(['status']);
    expect(clear.alarms).toEqual([]);
    expect(clear.summary).not.toMatch(/ALARM/);
  });

  it('when live keys fill the quota, alarm recover says that compaction cannot help for long, and what can', async () => {
    const big = 'z'.repeat(100_000);
    for (let n = 0; n < 1000; n++) {
      try {
        await putKey(client, `live/${n}`, big, 5000);
      } catch (error) {
        expect((error as Error).message).toMatch(/database space exceeded/);
        break;
      }
    }
    // Compaction frees no live key. Writes either still fail (exit 4), or come back for a moment (how
    // close to the quota the last write stopped decides); either way the command says why and what helps.
    const stuck = await lab.cli(['alarm', 'recover', '--json']);
    if (stuck.code === 0) {
      const crowded = JSON.parse(stuck.stdout) as RecoverResult;
      expect(crowded.liveBytes).toBeGreaterThan(0.8 * crowded.quotaBytes);
      expect(stuck.stderr).toMatch(/the live keys still use [\d.]+ MB of the 16\.0 MB quota/);
    } else {
      expect(stuck).toExitWith(4);
      expect(stuck.stderr).toMatch(/writes still fail after compaction and defragmentation[\s\S]*the live keys use [\d.]+ MB of the 16\.0 MB quota/);
    }
    expect(stuck.stderr).toMatch(/Delete keys[\s\S]*or raise etcd\.quotaBackendBytes/);
    // As it said: a few more writes fill it again.
    let refusedAfter = -1;
    for (let n = 0; n < 30 && refusedAfter < 0; n++) {
      await putKey(client, `live/more-${n}`, big, 5000).catch((error: Error) => {
        expect(error.message).toMatch(/database space exceeded/);
        refusedAfter = n;
      });
    }
    expect(refusedAfter).toBeGreaterThanOrEqual(0);
    // A recover that found writes still failing left the alarm raised: the very next write is refused.
    if (stuck.code !== 0) expect(refusedAfter).toBe(0);
    // Following that advice works: deletes are allowed under NOSPACE.
    await deletePrefix(client, 'live/');
    const r = await lab.cli(['alarm', 'recover']);
    expect(r).toExitWith(0);
    expect(r.stderr).not.toMatch(/live keys still use/);
    await putKey(client, 'live/again', big, 5000);
  });
});
