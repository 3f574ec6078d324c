import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderCompose } from '../../src/render/compose.js';
import { configHashOf, renderHaproxyCfg } from '../../src/render/haproxy.js';
import { keptBootstrapEnv, type LabMemberContainer } from '../../src/runtime/lab-objects.js';
import { readSpec } from '../../src/config/read.js';
import { labTopology } from '../../src/config/topology.js';
import { alarmsIn, type MemberStatus } from '../../src/protocol/etcd-http.js';
import { checkSnapshotFile } from '../../src/runtime/snapshot.js';
import { upgradeRefusal } from '../../src/lab/upgrade.js';
import { compareMembership } from '../../src/lab/membership.js';

const dir = mkdtempSync(join(tmpdir(), 'etcd-lab-snapshot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file shaped as etcd's Snapshot API writes one: bbolt pages (512-byte multiples), then the sha256 of them. */
function snapshotLike(name: string, pages = 8): { file: string; bytes: Buffer } {
  const db = randomBytes(512 * pages);
  const bytes = Buffer.concat([db, createHash('sha256').update(db).digest()]);
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return { file, bytes };
}

describe('snapshot integrity check (before any tool or lab sees the file)', () => {
  it('accepts a snapshot whose appended sha256 matches', async () => {
    const { file, bytes } = snapshotLike('good.db');
    await expect(checkSnapshotFile(file)).resolves.toEqual({ bytes: bytes.length, hashed: true });
  });

  it('refuses a changed byte, naming the hash', async () => {
    const { file, bytes } = snapshotLike('changed.db');
    bytes[700] = bytes[700]! ^ 0xff;
    writeFileSync(file, bytes);
    await expect(checkSnapshotFile(file)).rejects.toThrow(/damaged: its contents do not match the sha256/);
  });

  it('refuses a truncated file as incomplete, and says how a bare db file is restored', async () => {
    const { file, bytes } = snapshotLike('cut.db');
    writeFileSync(file, bytes.subarray(0, 3000));
    await expect(checkSnapshotFile(file)).rejects.toThrow(/not a complete snapshot: it has no integrity hash/);
    await expect(checkSnapshotFile(file)).rejects.toMatchObject({ hint: expect.stringMatching(/--skip-hash-check/) });
    await expect(checkSnapshotFile(file, { skipHashCheck: true })).resolves.toEqual({ bytes: 3000, hashed: false });
  });

  it('refuses a missing file and a directory with exit code 2', async () => {
    await expect(checkSnapshotFile(join(dir, 'none.db'))).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/ENOENT/) });
    await expect(checkSnapshotFile(dir)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/is not a file/) });
  });
});

describe('alarms in a member status', () => {
  const status = (errors: string[]): MemberStatus => ({ memberId: '1', leader: '1', raftTerm: 2, raftIndex: 3, raftAppliedIndex: 3, isLearner: false, dbSize: 0, dbSizeInUse: 0, version: '3.5.16', errors });
  it('reads every alarm of the cluster with the member that raised it', () => {
    expect(alarmsIn(status(['memberID:13113284445835351589 alarm:NOSPACE ', 'memberID:42 alarm:CORRUPT ']))).toEqual([
      { memberId: '13113284445835351589', alarm: 'NOSPACE' },
      { memberId: '42', alarm: 'CORRUPT' },
    ]);
    expect(alarmsIn(status([]))).toEqual([]);
    expect(alarmsIn(status(['some other error']))).toEqual([]);
  });
});

describe('HAProxy says which configuration it runs', () => {
  const cfgFor = (yaml: string) => renderHaproxyCfg(readSpec(parse(yaml)).spec!);
  const hashIn = (cfg: string) => /set-header X-Etcd-Lab-Config "([0-9a-f]+)"/.exec(cfg)?.[1];
  it('the stats page header carries the hash of the file itself, which changes with any change', () => {
    const base = cfgFor('members: 3');
    expect(hashIn(base)).toMatch(/^[0-9a-f]{16}$/);
    expect(hashIn(base)).toBe(configHashOf(base));
    expect(hashIn(cfgFor('members: 3'))).toBe(hashIn(base));
    expect(hashIn(cfgFor('members: 3\nhaproxy: { balance: first }'))).not.toBe(hashIn(base));
    expect(hashIn(cfgFor('members: 5'))).not.toBe(hashIn(base));
    // A hand edit anywhere else shows too: the hash no longer matches the text.
    expect(configHashOf(base.replace('maxconn 4096', 'maxconn 100'))).not.toBe(hashIn(base));
  });
  it('compose no longer recreates HAProxy for a new haproxy.cfg: it mounts the folder, and etcd-lab reloads it', () => {
    const compose = parse(renderCompose(readSpec(parse('members: 3')).spec!)) as { services: { haproxy: { volumes: string[]; labels: Record<string, string> } } };
    expect(compose.services.haproxy.volumes).toEqual(['./haproxy:/usr/local/etc/haproxy:ro']);
    expect(JSON.stringify(compose.services.haproxy.labels)).not.toMatch(/hash/);
  });
});

describe('members keep the bootstrap flags they were created with', () => {
  const member = (name: string, command?: string): LabMemberContainer => ({ id: name, name: `lab-${name}`, member: name, labels: {}, image: 'etcd', state: 'running', status: '', hostPorts: {}, networks: [], command });
  it('reads --initial-cluster and its state from each container, so compose sees no change after a scale', () => {
    const env = keptBootstrapEnv([
      member('etcd1', 'etcd --name=etcd1 --initial-cluster=etcd1=http://10.0.0.11:2380,etcd2=http://10.0.0.12:2380,etcd3=http://10.0.0.13:2380 --initial-cluster-state=new --initial-cluster-token=x'),
      member('etcd4', 'etcd --name=etcd4 --initial-cluster=etcd1=http://10.0.0.11:2380,etcd4=http://10.0.0.14:2380 --initial-cluster-state=existing'),
    ]);
    expect(env).toEqual({
      ETCD_LAB_ETCD1_INITIAL_CLUSTER: 'etcd1=http://10.0.0.11:2380,etcd2=http://10.0.0.12:2380,etcd3=http://10.0.0.13:2380',
      ETCD_LAB_ETCD1_INITIAL_CLUSTER_STATE: 'new',
      ETCD_LAB_ETCD4_INITIAL_CLUSTER: 'etcd1=http://10.0.0.11:2380,etcd4=http://10.0.0.14:2380',
      ETCD_LAB_ETCD4_INITIAL_CLUSTER_STATE: 'existing',
    });
  });
  it('a member without a container, or without the flags, gets the compose file defaults', () => {
    expect(keptBootstrapEnv([member('etcd2'), member('etcd3', 'etcd --name=etcd3')])).toEqual({});
  });
});

describe("etcd's upgrade rules", () => {
  it('one minor version up, or a patch, is allowed', () => {
    expect(upgradeRefusal('3.4.0', '3.5.16')).toBeUndefined();
    expect(upgradeRefusal('3.5.0', '3.5.21')).toBeUndefined();
  });
  it('a downgrade is refused, pointing to the snapshot', () => {
    expect(upgradeRefusal('3.5.0', '3.4.23')).toMatch(/downgrade[\s\S]*restore the snapshot/);
  });
  it('a skipped minor version is refused', () => {
    // The cluster version lags the members: one already on 3.5 cannot go back to 3.4.
    expect(upgradeRefusal('3.4.0', '3.4.23', { etcd1: '3.4.23', etcd2: '3.5.16' })).toMatch(/that is a downgrade \(etcd2 runs 3\.5\.16 → 3\.4\.23\)[\s\S]*cannot go back/);
    expect(upgradeRefusal('3.4.0', '3.5.16', { etcd1: '3.4.23', etcd2: '3.5.16' })).toBeUndefined();
    expect(upgradeRefusal('3.4.0', '3.6.1')).toMatch(/skips a minor version[\s\S]*one minor version at a time/);
    expect(upgradeRefusal('3.5.0', '4.0.0')).toMatch(/skips a minor version/);
  });
});

describe('member list: what etcd has beside what the lab expects', () => {
  const spec = readSpec(parse('members: 3')).spec!;
  const topo = labTopology(spec);
  const member = (i: number, extra: Partial<{ name: string; isLearner: boolean; peer: string }> = {}) => ({
    id: String(1000 + i),
    name: extra.name ?? `etcd${i}`,
    peerUrls: [extra.peer ?? topo.members[i - 1]!.peerUrl],
    clientUrls: [topo.members[i - 1]?.clientUrl ?? ''],
    isLearner: extra.isLearner ?? false,
  });
  it('names each difference', () => {
    const rows = compareMembership(topo.members, [member(1), member(2, { name: '', isLearner: true }), { ...member(1), id: '77', name: 'stray', peerUrls: ['http://10.0.0.99:2380'] }]);
    expect(rows.map((r) => [r.name, r.role, r.expected])).toEqual([
      ['etcd1', 'voter', 'as expected'],
      ['etcd2', 'learner', 'added, not started yet'],
      ['etcd3', '-', 'not in the cluster'],
      ['stray', 'voter', 'not in the spec'],
    ]);
    expect(rows[0]!.id).toBe((1001).toString(16));
  });
});
