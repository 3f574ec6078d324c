// A rolling upgrade from etcd 3.4.23 (Debian bookworm) to 3.5.16 (Debian trixie) on real containers,
// a writer going through HAProxy the whole time and its history verified; a new image that cannot
// start stops the upgrade after its first member with quorum held; a downgrade is refused.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpgradeResult } from '../../src/lab/upgrade.js';
import type { UpResult } from '../../src/lab/up.js';
import type { LabStatus } from '../../src/runtime/status.js';
import type { Endpoint } from '../../src/protocol/etcd-http.js';
import { LABEL } from '../../src/config/topology.js';
import { cliIn, createTestLab, once, removeImage, skipE2E, TEST_IMAGES, TEST_LAB_PREFIX, type TestLab, underCheck } from './lab-fixture.js';

const ETCD_34 = 'etcd-lab/etcd:3.4-bookworm';

/** A lab whose own .env puts it on etcd 3.4. */
async function labOn34(tag: string): Promise<TestLab> {
  const lab = await createTestLab(tag, { members: 3 });
  const env = join(lab.dir, '.env');
  writeFileSync(env, readFileSync(env, 'utf8').replace(/^ETCD_LAB_ETCD_IMAGE=.*$/m, `ETCD_LAB_ETCD_IMAGE=${ETCD_34}`));
  return lab;
}

/** An image whose etcd says it is 3.5.16 but cannot start: what a bad image does to an upgrade. */
async function brokenEtcdImage(): Promise<string> {
  const docker = new Docker();
  const script = '#!/bin/sh\\nif [ "$1" = --version ]; then echo "etcd Version: 3.5.16"; exit 0; fi\\necho "etcd: simulated start failure" >&2\\nexit 1\\n';
  const container = await docker.createContainer({
    Image: TEST_IMAGES.etcd,
    Entrypoint: ['sh', '-c', `printf '${script}' > /usr/local/bin/etcd && chmod 755 /usr/local/bin/etcd`],
    Labels: { [LABEL.lab]: `${TEST_LAB_PREFIX}broken-build` },
  });
  await container.start();
  await container.wait();
  await container.commit({ repo: `${TEST_LAB_PREFIX}broken-etcd`, tag: String(process.pid) });
  await container.remove({ force: true });
  return `${TEST_LAB_PREFIX}broken-etcd:${process.pid}`;
}

describe.skipIf(skipE2E)('rolling upgrade 3.4 → 3.5', () => {
  let lab: TestLab;
  let broken: TestLab;
  let brokenImage: string;
  let client: Endpoint;

  beforeAll(async () => {
    // The command that makes the 3.4 image is part of what is tested.
    const build = await cliIn(process.cwd())(['images', 'build', '--etcd-version', '3.4']);
    expect(build).toExitWith(0);
    lab = await labOn34('upg');
    broken = await labOn34('upgb');
    client = (await lab.json<UpResult>(['up'])).clientEndpoint;
    await broken.json<UpResult>(['up']);
    brokenImage = await brokenEtcdImage();
  });
  afterAll(async () => {
    await lab?.remove();
    await broken?.remove();
    await removeImage(brokenImage);
  });

  // The upgrade, done by whichever test needs it first (each test can run alone or in any order).
  const upgraded = once(async () => {
    const before = await lab.json<LabStatus>(['status']);
    let result: UpgradeResult | undefined;
    await underCheck(client, 'upgrade/', async () => {
      result = await lab.json<UpgradeResult>(['upgrade', '--etcd-image', TEST_IMAGES.etcd]);
    });
    return { before, result };
  });

  it('upgrades every member under writes, leader last, nothing acknowledged lost, cluster version 3.5', async () => {
    const { before, result } = await upgraded();
    expect(before.members.map((m) => m.version)).toEqual(['3.4.23', '3.4.23', '3.4.23']);
    expect(before.clusterVersion).toBe('3.4.0');

    if (!result) throw new Error('upgrade gave no result');
    expect(result.members.map((m) => m.wasLeader)).toEqual([false, false, true]);
    expect(result.members.at(-1)!.member).toBe(before.leader);
    expect(Object.values(result.after.servers)).toEqual(['3.5.16', '3.5.16', '3.5.16']);
    expect(result.after.cluster).toBe('3.5.0');
    expect(result.snapshot).toMatch(/-before-upgrade-.*\.db$/);

    const after = await lab.json<LabStatus>(['status']);
    expect(after.clusterVersion).toBe('3.5.0');
    expect(after.members.map((m) => m.version)).toEqual(['3.5.16', '3.5.16', '3.5.16']);
    // The new image is where `up` reads it: `up` changes nothing.
    expect(readFileSync(join(lab.dir, '.env'), 'utf8')).toMatch(new RegExp(`^ETCD_LAB_ETCD_IMAGE=${TEST_IMAGES.etcd}$`, 'm'));
    expect((await lab.json<UpResult>(['up'])).alreadyUp).toBe(true);
  });

  it('a downgrade is refused with etcd\'s reason', async () => {
    await upgraded();
    const r = await lab.cli(['upgrade', '--etcd-image', ETCD_34]);
    expect(r).toExitWith(3);
    expect(r.stderr).toMatch(/that is a downgrade \(cluster version 3\.5\.0 → 3\.4\.23\)/);
  });

  it('an image that cannot start stops the upgrade after the first member, quorum held', async () => {
    const r = await broken.cli(['upgrade', '--etcd-image', brokenImage, '--timeout', '15']);
    expect(r).toExitWith(4);
    expect(r.stderr).toMatch(/etcd\d did not come back on/);
    expect(r.stderr).toMatch(/the other members still hold quorum[\s\S]*etcd-lab logs etcd\d[\s\S]*etcd-lab up/);
    const status = await broken.json<LabStatus>(['status']);
    expect(status.quorum).toMatchObject({ healthy: 2, held: true });
    expect(status.members.filter((m) => m.version === '3.4.23')).toHaveLength(2);
    // As the message says: `up` puts the member back on the image it had.
    const up = await broken.cli(['up']);
    expect(up).toExitWith(0);
    expect((await broken.json<LabStatus>(['status'])).quorum).toMatchObject({ healthy: 3, held: true });
  });
});
