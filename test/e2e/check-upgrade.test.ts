// A rolling upgrade as one of check's faults: a lab on etcd 3.4.23 (Debian bookworm) moved to 3.5.16
// (Debian trixie) one member per fault while check's clients and watchers run (each traffic kind)
// and members are killed between the upgrade steps; the history must pass, the members end on 3.5
// with the image recorded for the next `up`.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult } from '../../src/lab/check.js';
import type { UpResult } from '../../src/lab/up.js';
import type { LabStatus } from '../../src/runtime/status.js';
import { cliIn, createTestLab, skipE2E, TEST_IMAGES, type TestLab } from './lab-fixture.js';

const ETCD_34 = 'etcd-lab/etcd:3.4-bookworm';

// Each traffic kind on a lab of its own (an upgrade goes one way: every run starts on 3.4).
describe.skipIf(skipE2E).each(['etcd', 'kubernetes', 'leases'])('check with a rolling upgrade as a fault, %s traffic', (traffic) => {
  let lab: TestLab;

  beforeAll(async () => {
    expect(await cliIn(process.cwd())(['images', 'build', '--etcd-version', '3.4'])).toExitWith(0);
    lab = await createTestLab(`chku${traffic[0]}`, { members: 3 });
    const env = join(lab.dir, '.env');
    writeFileSync(env, readFileSync(env, 'utf8').replace(/^ETCD_LAB_ETCD_IMAGE=.*$/m, `ETCD_LAB_ETCD_IMAGE=${ETCD_34}`));
    await lab.json<UpResult>(['up']);
  });
  afterAll(async () => lab?.remove());

  it('upgrade faults between kills: no violation, each member moved once, every member on 3.5 and recorded', async () => {
    const before = await lab.json<LabStatus>(['status']);
    expect(before.members.map((m) => m.version)).toEqual(['3.4.23', '3.4.23', '3.4.23']);

    const r = await lab.cli(['check', '--traffic', traffic, '--nemesis', 'upgrade,kill', '--faults', '6', '--hold', '1', '--upgrade-image', TEST_IMAGES.etcd, '--json']);
    expect(r).toExitWith(0);
    const result = JSON.parse(r.stdout) as CheckResult;
    expect(result.checker.violations).toEqual([]);
    expect(result.faults.map((f) => f.kind)).toEqual(['upgrade', 'kill', 'upgrade', 'kill', 'upgrade', 'kill']);
    const upgrades = result.faults.filter((f) => f.kind === 'upgrade').map((f) => f.target);
    for (const u of upgrades) expect(u).toMatch(/^etcd\d → etcd 3\.5\.16$/);
    // Three different members, each once.
    expect(new Set(upgrades.map((u) => u.split(' ')[0])).size).toBe(3);
    // Clients were served throughout (a mixed-version cluster included).
    expect(result.checker.counts.ok).toBeGreaterThan(100);
    if (traffic === 'leases') expect(result.checker.counts.leaseExpiries).toBeGreaterThan(0);

    const after = await lab.json<LabStatus>(['status']);
    expect(after.members.map((m) => m.version)).toEqual(['3.5.16', '3.5.16', '3.5.16']);
    expect(after.clusterVersion).toBe('3.5.0');
    expect(readFileSync(join(lab.dir, '.env'), 'utf8')).toMatch(new RegExp(`^ETCD_LAB_ETCD_IMAGE=${TEST_IMAGES.etcd}$`, 'm'));
    // Recorded where `up` reads it: `up` changes nothing.
    expect((await lab.json<UpResult>(['up'])).alreadyUp).toBe(true);

    // Now on 3.5: moving back to 3.4 is etcd's forbidden downgrade, refused before any client starts.
    const back = await lab.cli(['check', '--nemesis', 'upgrade', '--faults', '1', '--upgrade-image', ETCD_34]);
    expect(back).toExitWith(3);
    expect(back.stderr).toMatch(/the upgrade fault cannot move lab "[^"]+" to etcd 3\.4\.23: that is a downgrade/);
  });
});
