// Membership on real containers, with a writer going through HAProxy the whole time and its history
// verified afterwards: `member replace` of a member whose container and volume are gone (3 and 5
// members), `leader` moves, `member list`, and the refusals that keep quorum safe.
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LeaderResult, MemberRow, ReplaceResult } from '../../src/lab/membership.js';
import type { UpResult } from '../../src/lab/up.js';
import type { LabStatus } from '../../src/runtime/status.js';
import { getPrefix, type Endpoint } from '../../src/protocol/etcd-http.js';
import { clientOf, createTestLab, skipE2E, type TestLab, underCheck } from './lab-fixture.js';

async function destroyMember(lab: TestLab, member: string): Promise<void> {
  const docker = new Docker();
  await docker.getContainer(`${lab.name}-${member}`).remove({ force: true });
  await docker.getVolume(`${lab.name}-${member}-data`).remove();
}

describe.skipIf(skipE2E).each([{ members: 3, tls: false }, { members: 5, tls: true }])('membership, $members members, TLS $tls', ({ members, tls }) => {
  let lab: TestLab;
  let client: Endpoint;

  beforeAll(async () => {
    lab = await createTestLab(`mbr${members}${tls ? 't' : ''}`, { members, tls: { enabled: tls } });
    client = clientOf(lab, (await lab.json<UpResult>(['up'])).clientEndpoint);
  });
  afterAll(async () => lab?.remove());

  it('member list: what etcd thinks, beside what the lab expects', async () => {
    const list = await lab.json<{ members: MemberRow[]; coherent: boolean }>(['member', 'list']);
    expect(list.coherent).toBe(true);
    expect(list.members.map((m) => m.name)).toEqual(Array.from({ length: members }, (_, i) => `etcd${i + 1}`));
    for (const m of list.members) {
      expect(m.id).toMatch(/^[0-9a-f]+$/);
      expect(m.role).toBe('voter');
      expect(m.peerUrls[0]).toMatch(tls ? /^https:\/\// : /^http:\/\//);
    }
    const human = await lab.cli(['member', 'list']);
    expect(human.stdout).toMatch(/^ID\s+NAME\s+PEER URLS\s+CLIENT URLS\s+ROLE\s+LAB/m);
  });

  it('a healthy member is not replaced without --force, saying why', async () => {
    const r = await lab.cli(['member', 'replace', 'etcd2']);
    expect(r).toExitWith(3);
    expect(r.stderr).toMatch(/etcd2 is healthy: replacing it throws its data away[\s\S]*--force/);
  });

  it('replace a member whose container and volume are gone, with nothing acknowledged lost', async () => {
    const before = await lab.json<{ members: MemberRow[] }>(['member', 'list']);
    const victim = before.members.find((m) => m.name === `etcd${members}`)!;
    let result: ReplaceResult | undefined;
    await underCheck(client, `replace-${members}/`, async () => {
      await destroyMember(lab, victim.name);
      result = await lab.json<ReplaceResult>(['member', 'replace', victim.name]);
    });
    expect(result!.oldId).toBe(victim.id);
    expect(result!.newId).not.toBe(victim.id);
    const after = await lab.json<{ members: MemberRow[]; coherent: boolean }>(['member', 'list']);
    expect(after.coherent).toBe(true);
    expect(after.members.find((m) => m.name === victim.name)?.id).toBe(result!.newId);
    const status = await lab.json<LabStatus>(['status']);
    expect(status.quorum).toMatchObject({ healthy: members, held: true });
    // The new member has the data: its own copy (serializable) holds a key written before it came.
    const fresh = status.members.find((m) => m.name === victim.name)!;
    const own = await getPrefix(clientOf(lab, `${tls ? 'https' : 'http'}://127.0.0.1:${fresh.hostPort}`), 'etcd-lab/ready', { serializable: true });
    expect(own.values.size).toBe(1);
    // The lab's files describe it as it is: `up` changes nothing.
    const up = await lab.json<UpResult>(['up']);
    expect(up.alreadyUp).toBe(true);
  });

  it('leader moves leadership, and every member follows', async () => {
    const status = await lab.json<LabStatus>(['status']);
    const target = status.members.find((m) => !m.isLeader)!.name;
    let moved: LeaderResult | undefined;
    await underCheck(client, `leader-${members}/`, async () => {
      moved = await lab.json<LeaderResult>(['leader', target]);
    });
    expect(moved!.before).toBe(status.leader);
    expect(moved!.leader).toBe(target);
    expect((await lab.json<LabStatus>(['status'])).leader).toBe(target);
    const again = await lab.cli(['leader', target]);
    expect(again.stdout).toMatch(new RegExp(`${target} already leads`));
  });

  it('leader moves leadership while a member is cut off (that member is not waited for)', async () => {
    const status = await lab.json<LabStatus>(['status']);
    const [cut, target] = status.members.filter((m) => !m.isLeader).map((m) => m.name);
    expect(await lab.cli(['partition', cut!])).toExitWith(0);
    try {
      const r = await lab.cli(['leader', target!, '--json']);
      expect(r).toExitWith(0);
      expect((JSON.parse(r.stdout) as LeaderResult).leader).toBe(target);
    } finally {
      expect(await lab.cli(['heal'])).toExitWith(0);
    }
  });

  it('replace is refused when the others cannot hold quorum, pointing to snapshot restore', async () => {
    const down = Array.from({ length: Math.floor(members / 2) }, (_, i) => `etcd${i + 1}`);
    const killed = await lab.cli(['kill', ...down, '--no-wait']);
    expect(killed).toExitWith(0);
    try {
      const r = await lab.cli(['member', 'replace', `etcd${members}`, '--force']);
      expect(r).toExitWith(3);
      expect(r.stderr).toMatch(/the cluster needs \d to change its membership[\s\S]*snapshot restore/);
    } finally {
      expect(await lab.cli(['start'])).toExitWith(0);
    }
  });
});
