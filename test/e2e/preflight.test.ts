// Each preflight failure gives its error and leaves nothing behind; a failure after the start
// rolls back what the run created.
import { createServer, type Server } from 'node:net';
import Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LABEL } from '../../src/config/topology.js';
import { buildSleepyEtcd, createTestLab, labResources, removeImage, skipE2E, TEST_IMAGES, type TestLab } from './lab-fixture.js';

const nothing = { containers: [], networks: [], volumes: [] };
const labs: TestLab[] = [];
afterAll(async () => {
  for (const lab of labs) await lab.remove();
});

async function newLab(tag: string, spec: Record<string, unknown> = {}) {
  const lab = await createTestLab(tag, spec);
  labs.push(lab);
  return lab;
}

describe.skipIf(skipE2E)('up preflight', () => {
  let blocker: Server | undefined;
  afterEach(() => blocker?.close());

  it('a busy client port: says which and how to choose another, creates nothing', async () => {
    const lab = await newLab('port');
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(lab.clientPort, '127.0.0.1', resolve));
    const r = await lab.cli(['up']);
    expect(r).toExitWith(3);
    expect(r.stderr).toContain(`the client port 127.0.0.1:${lab.clientPort} is already in use`);
    expect(r.stderr).toMatch(/ETCD_LAB_CLIENT_PORT=\d+ in \.env, or --client-port/);
    expect(await labResources(lab.name)).toEqual(nothing);
  });

  it('a subnet that overlaps an existing Docker network: names it, creates nothing', async () => {
    const lab = await newLab('overlap');
    const docker = new Docker();
    const wider = lab.subnet.replace(/\.\d+\.0\/24$/, '.0.0/16');
    // Labelled as a test lab's, so cleanup finds it if this test dies halfway.
    const network = await docker.createNetwork({
      Name: `${lab.name}-squatter`,
      IPAM: { Config: [{ Subnet: wider }] },
      Labels: { [LABEL.lab]: `${lab.name}-squatter` },
    });
    try {
      const r = await lab.cli(['up']);
      expect(r).toExitWith(3);
      expect(r.stderr).toContain(`the lab subnet ${lab.subnet} overlaps Docker network "${lab.name}-squatter" (${wider})`);
      expect(r.stderr).toMatch(/--subnet/);
      expect(await labResources(lab.name)).toEqual(nothing);
    } finally {
      await network.remove();
    }
  });

  it('Docker unreachable (a bad DOCKER_HOST): says so with the fix, exit 3', async () => {
    const lab = await newLab('nodocker');
    const r = await lab.cli(['up'], { DOCKER_HOST: 'tcp://127.0.0.1:1' });
    expect(r).toExitWith(3);
    expect(r.stderr).toContain('Docker is not reachable at DOCKER_HOST=tcp://127.0.0.1:1');
    expect(r.stderr).toMatch(/unset DOCKER_HOST/);
    expect(await labResources(lab.name)).toEqual(nothing);
  });

  it('a member count that differs from existing data is refused, not applied by wiping', async () => {
    const lab = await newLab('members');
    const docker = new Docker();
    // Data of an earlier 3-member lab of this name.
    for (const member of ['etcd1', 'etcd2', 'etcd3']) {
      await docker.createVolume({ Name: `${lab.name}-${member}-data`, Labels: { [LABEL.lab]: lab.name, [LABEL.role]: 'data', [LABEL.member]: member } });
    }
    const r = await lab.cli(['up', '--members', '5']);
    expect(r).toExitWith(3);
    expect(r.stderr).toContain(`already holds data for 3 members, but the spec asks for 5`);
    expect(r.stderr).toContain("`etcd-lab up --members 3`) and change the count with `etcd-lab scale 5`");
    expect(r.stderr).toMatch(/down --volumes/);
    const left = await labResources(lab.name);
    expect(left.containers).toEqual([]);
    expect(left.networks).toEqual([]);
    expect(left.volumes).toHaveLength(3);
  });
});

describe.skipIf(skipE2E)('up after the start', () => {
  let sleepyEtcd: string;
  beforeAll(async () => {
    sleepyEtcd = await buildSleepyEtcd('preflight');
  });
  afterAll(() => removeImage(sleepyEtcd));

  it('a container that cannot start: compose\'s error, and everything this run created rolled back', async () => {
    const lab = await newLab('nostart');
    // The HAProxy image has no etcd binary: compose cannot start the members.
    const r = await lab.cli(['up', '--etcd-image', TEST_IMAGES.haproxy]);
    expect(r).toExitWith(4);
    expect(r.stderr).toMatch(/docker compose up failed: .*"etcd": executable file not found/);
    expect(r.stderr).toMatch(/roll back what this run created/);
    expect(await labResources(lab.name)).toEqual(nothing);
  });

  it('members that never become healthy: a timeout that says what it saw, then a full rollback', async () => {
    const lab = await newLab('rollback');
    // --timeout covers compose too: long enough for it, then the members never become healthy.
    const r = await lab.cli(['up', '--timeout', '12', '--etcd-image', sleepyEtcd]);
    expect(r).toExitWith(4);
    expect(r.stderr).toMatch(/timed out waiting for every member to be healthy: 0\/3 healthy \(etcd1: /);
    expect(r.stderr).toMatch(/etcd-lab logs/);
    expect(r.stderr).toMatch(/roll back what this run created/);
    expect(await labResources(lab.name)).toEqual(nothing);
  });

  it('a failed re-up of a running lab (compose recreated its members) keeps the lab\'s containers and says so', async () => {
    const lab = await newLab('reup');
    expect(await lab.cli(['up'])).toExitWith(0);
    const r = await lab.cli(['up', '--timeout', '12', '--etcd-image', sleepyEtcd]);
    expect(r).toExitWith(4);
    expect(r.stderr).toMatch(/kept .*-etcd1.*: compose recreated them for the changed spec/);
    const left = await labResources(lab.name);
    expect(left.containers).toHaveLength(4);
    expect(left.volumes).toHaveLength(3);
    // Back to its own images, the lab comes up again with its data.
    const again = await lab.cli(['up']);
    expect(again).toExitWith(0);
  });

  it('--retain keeps what it created for inspection', async () => {
    const lab = await newLab('retain');
    const r = await lab.cli(['up', '--timeout', '12', '--retain', '--etcd-image', sleepyEtcd]);
    expect(r).toExitWith(4);
    expect(r.stderr).toMatch(/--retain: leaving what this run made as it is/);
    const left = await labResources(lab.name);
    expect(left.containers).toHaveLength(4);
    expect(left.networks).toEqual([lab.name]);
    const down = await lab.cli(['down', '--volumes', '--yes']);
    expect(down).toExitWith(0);
    expect(await labResources(lab.name)).toEqual(nothing);
  });
});
