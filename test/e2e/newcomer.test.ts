// What a new user hit (issue 8), each as it was hit: a lab started with no image named anywhere and
// `kind` on it; a second checkout beside the first; Ctrl-C in the middle of `up`, `check` and
// `kind`; two commands at once on one lab.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config/defaults.js';
import type { UpResult } from '../../src/lab/up.js';
import { LOCAL_IMAGES } from '../../src/runtime/images.js';
import { acquireLabLock } from '../../src/runtime/lock.js';
import type { LabStatus } from '../../src/runtime/status.js';
import {
  buildSleepyEtcd,
  cliIn,
  createTestLab,
  labResources,
  removeImage,
  removeNetwork,
  removeTestLabs,
  skipE2E,
  spawnCli,
  type TestLab,
} from './lab-fixture.js';

const FAKE_BIN = fileURLToPath(new URL('../fixtures/fake-bin/', import.meta.url));
const nothing = { containers: [], networks: [], volumes: [] };
const docker = new Docker();
const labs: TestLab[] = [];
const scratch: string[] = [];
afterAll(async () => {
  for (const lab of labs) await lab.remove();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

async function newLab(tag: string, spec: Record<string, unknown> = {}, opts: { newcomer?: boolean } = {}) {
  const lab = await createTestLab(tag, spec, opts);
  labs.push(lab);
  return lab;
}

/** Every member running (not paused) and on the lab network: nothing left killed, frozen or cut off. */
async function membersIntact(lab: TestLab): Promise<string[]> {
  const problems: string[] = [];
  for (const c of await docker.listContainers({ all: true, filters: { label: [`io.etcd-lab.lab=${lab.name}`, 'io.etcd-lab.role=etcd'] } })) {
    const networks = Object.keys(c.NetworkSettings?.Networks ?? {});
    if (c.State !== 'running') problems.push(`${c.Names[0]} ${c.State}`);
    if (!networks.includes(lab.name)) problems.push(`${c.Names[0]} on ${networks.join(',')}`);
  }
  return problems;
}

async function waitHealthy(lab: TestLab, members = 3): Promise<LabStatus> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await lab.cli(['status', '--json']);
    const status = r.code === 0 ? (JSON.parse(r.stdout) as LabStatus) : undefined;
    if (status?.quorum.healthy === members && status.members.every((m) => m.backend === 'UP')) return status;
    if (Date.now() > deadline) throw new Error(`lab never healthy again: ${r.stdout}${r.stderr}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

describe.skipIf(skipE2E)('a lab started as a newcomer starts it (no image named anywhere)', () => {
  let lab: TestLab;
  let up: UpResult;
  // Decided apart from etcd-lab: whether this machine has, or can pull, the spec's default images.
  let officialImages: boolean;
  beforeAll(async () => {
    const docker = new Docker();
    const available = async (ref: string) =>
      (await docker.getImage(ref).inspect().then(() => true, () => false)) || spawnSync('docker', ['pull', '--quiet', ref], { timeout: 120_000 }).status === 0;
    officialImages = (await available(DEFAULTS.etcd.image)) && (await available(DEFAULTS.haproxy.image));
    lab = await newLab('newcomer', {}, { newcomer: true });
    up = await lab.json<UpResult>(['up']);
  });

  it('up runs the spec\'s images, or when they cannot be pulled, falls back to local ones by itself and says why', () => {
    expect(Boolean(up.images.fallback), 'up fell back to local images exactly when the official ones are neither here nor pullable').toBe(!officialImages);
    if (up.images.fallback) {
      // Where no registry answers (CI here), the official images cannot be pulled.
      expect(up.images).toMatchObject({ etcd: LOCAL_IMAGES.etcd, haproxy: LOCAL_IMAGES.haproxy });
      expect(up.images.fallback.reason).toMatch(/gcr\.io\/etcd-development\/etcd/);
    } else {
      expect(up.images).toMatchObject({ etcd: DEFAULTS.etcd.image, haproxy: DEFAULTS.haproxy.image });
    }
    expect(up.status.quorum.healthy).toBe(3);
  });

  it('kind runs its stand-in node on the image the members really run, not the unpullable spec image', async () => {
    const log = join(lab.dir, 'kind-calls.log');
    writeFileSync(log, '');
    const network = `${lab.name}-kind`;
    try {
      const r = await lab.cli(['kind'], { PATH: `${FAKE_BIN}:${process.env.PATH}`, FAKE_LOG: log, KIND_EXPERIMENTAL_DOCKER_NETWORK: network });
      expect(r.stderr).not.toMatch(/bug in etcd-lab|No such image/);
      expect(r).toExitWith(0);
      expect(r.stderr).toMatch(/etcd answers at http:\/\/.*-haproxy:2379 from the ".*-kind" network/);
      expect(readFileSync(log, 'utf8')).toMatch(/kind create cluster/);
    } finally {
      await removeNetwork(network);
    }
  });
});

describe.skipIf(skipE2E)('a second checkout beside the first', () => {
  let first: TestLab;
  let secondDir: string;
  let second: ReturnType<typeof cliIn>;
  let containersBefore: string[];

  beforeAll(async () => {
    first = await newLab('owner');
    await first.json<UpResult>(['up']);
    // The same committed spec and the same per-person .env: the same lab name, subnet and ports.
    secondDir = mkdtempSync(join(tmpdir(), 'elt-second-checkout-'));
    scratch.push(secondDir);
    cpSync(join(first.dir, 'etcd-lab.yaml'), join(secondDir, 'etcd-lab.yaml'));
    cpSync(join(first.dir, '.env'), join(secondDir, '.env'));
    second = cliIn(secondDir);
    containersBefore = (await docker.listContainers({ filters: { label: [`io.etcd-lab.lab=${first.name}`] } })).map((c) => `${c.Id} ${c.State}`).sort();
  });

  it.each([['up'], ['down'], ['down', '--volumes', '--yes'], ['status'], ['logs'], ['kill', 'etcd1'], ['partition', 'etcd2'], ['check', '--faults', '1'], ['kind']])(
    '`%s` from the second checkout refuses, naming the first and the ways out',
    async (...args) => {
      const r = await second(args);
      expect(r).toExitWith(3);
      expect(r.stderr).toContain(`lab "${first.name}" belongs to another checkout: ${join(first.dir, 'etcd-lab.yaml')}`);
      expect(r.stderr).toContain(`run etcd-lab in ${first.dir}`);
      expect(r.stderr).toMatch(/another name \(name: in etcd-lab\.yaml, or --name/);
    },
  );

  it('the first checkout\'s lab was not touched', async () => {
    const now = (await docker.listContainers({ filters: { label: [`io.etcd-lab.lab=${first.name}`] } })).map((c) => `${c.Id} ${c.State}`).sort();
    expect(now).toEqual(containersBefore);
    expect(await first.cli(['status'])).toExitWith(0);
  });

  it('another name with the same subnet or the same ports is still caught by preflight', async () => {
    const sameSubnet = await second(['up', '--name', `${first.name}-b`]);
    expect(sameSubnet).toExitWith(3);
    expect(sameSubnet.stderr).toMatch(/overlaps Docker network/);
    const samePorts = await second(['up', '--name', `${first.name}-b`, '--subnet', '10.254.254.0/24']);
    expect(samePorts).toExitWith(3);
    expect(samePorts.stderr).toMatch(/port 127\.0\.0\.1:\d+ is already in use/);
    expect(await labResources(`${first.name}-b`)).toEqual(nothing);
  });

  it('once the first checkout is gone, the orphan can be removed from the second with down --take-over', async () => {
    const orphan = await newLab('orphan');
    await orphan.json<UpResult>(['up']);
    const other = mkdtempSync(join(tmpdir(), 'elt-orphan-'));
    scratch.push(other);
    cpSync(join(orphan.dir, 'etcd-lab.yaml'), join(other, 'etcd-lab.yaml'));
    cpSync(join(orphan.dir, '.env'), join(other, '.env'));
    rmSync(orphan.dir, { recursive: true, force: true });
    const refused = await cliIn(other)(['down']);
    expect(refused).toExitWith(3);
    expect(refused.stderr).toMatch(/that directory no longer exists/);
    expect(refused.stderr).toMatch(/etcd-lab down --take-over/);
    const r = await cliIn(other)(['down', '--take-over', '--volumes', '--yes']);
    expect(r).toExitWith(0);
    expect(r.stderr).toMatch(/--take-over: removing lab/);
    expect(await labResources(orphan.name)).toEqual(nothing);
  });
});

describe.skipIf(skipE2E)('Ctrl-C', () => {
  let sleepyEtcd: string;
  let stubbornEtcd: string;
  beforeAll(async () => {
    sleepyEtcd = await buildSleepyEtcd('newcomer');
    stubbornEtcd = await buildSleepyEtcd('stubborn', { ignoreTerm: true });
  });
  afterAll(async () => {
    await removeImage(sleepyEtcd);
    await removeImage(stubbornEtcd);
  });

  it('during up\'s compose step: rolls back what it created, says so, exits 130', async () => {
    const lab = await newLab('intcompose');
    const run = spawnCli(lab.dir, ['up']);
    // The moment Docker holds the first thing of this lab, compose is at work.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const held = await labResources(lab.name);
      if (held.containers.length + held.networks.length + held.volumes.length > 0) break;
      if (Date.now() > deadline || run.child.exitCode !== null) throw new Error(`up made nothing in time:\n${run.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    run.child.kill('SIGINT');
    const r = await run.exited;
    expect(r).toExitWith(130);
    expect(r.stderr).toMatch(/interrupted \(SIGINT\): rolling back what this run created/);
    expect(r.stderr).toMatch(/up interrupted; rolled back what it had created/);
    expect(await labResources(lab.name)).toEqual(nothing);
  });

  it('while waiting for members: stops the wait, rolls back everything, exits 130', async () => {
    const lab = await newLab('intwait');
    const run = spawnCli(lab.dir, ['up', '--timeout', '120', '--etcd-image', sleepyEtcd]);
    await run.waitFor(/\.\.\. members healthy/);
    run.child.kill('SIGINT');
    const r = await run.exited;
    expect(r).toExitWith(130);
    expect(r.stderr).toMatch(/up interrupted; rolled back what it had created \(.*-etcd1.*-data/);
    expect(await labResources(lab.name)).toEqual(nothing);
  });

  it('twice: exits at once and lists what is left', async () => {
    const lab = await newLab('intforce');
    // A member that ignores SIGTERM makes the rollback slow (docker stop waits 2 s per member).
    const run = spawnCli(lab.dir, ['up', '--timeout', '120', '--etcd-image', stubbornEtcd]);
    await run.waitFor(/\.\.\. members healthy/);
    run.child.kill('SIGINT');
    await run.waitFor(/press Ctrl-C again/);
    run.child.kill('SIGINT');
    const r = await run.exited;
    expect(r).toExitWith(130);
    expect(r.stderr).toMatch(/stopping at once; left behind: .*(container|network|volume) /);
    await removeTestLabs(lab.name);
  });

  it('during check: no member is left killed, paused or cut off, and the lab serves again', async () => {
    const lab = await newLab('intcheck');
    await lab.json<UpResult>(['up']);
    const run = spawnCli(lab.dir, ['check', '--faults', '6', '--nemesis', 'kill,partition']);
    // Interrupt while the second fault (a partition of the leader) is in force.
    await run.waitFor(/ok {2}partition etcd\d/);
    run.child.kill('SIGINT');
    const r = await run.exited;
    expect(r).toExitWith(130);
    expect(r.stderr).toMatch(/check interrupted after \d+ faults?; every member is back/);
    expect(await membersIntact(lab)).toEqual([]);
    expect(await labResources(lab.name).then((x) => x.networks)).toEqual([lab.name]);
    await waitHealthy(lab);
  });

  it('during kind create: deletes the half-made cluster and undoes the network it made', async () => {
    const lab = await newLab('intkind');
    await lab.json<UpResult>(['up']);
    const log = join(lab.dir, 'kind-calls.log');
    writeFileSync(log, '');
    const network = `${lab.name}-kind`;
    const run = spawnCli(lab.dir, ['kind'], { PATH: `${FAKE_BIN}:${process.env.PATH}`, FAKE_LOG: log, FAKE_SCENARIO: 'slow', KIND_EXPERIMENTAL_DOCKER_NETWORK: network });
    await run.waitFor(/Creating cluster/);
    run.child.kill('SIGINT');
    const r = await run.exited;
    expect(r).toExitWith(130);
    expect(r.stderr).toMatch(/kind interrupted; rolled back what it had created \(KIND cluster .*, HAProxy's attachment to ".*", network ".*"\)/);
    expect(readFileSync(log, 'utf8')).toContain(`kind delete cluster --name ${lab.name}`);
    expect((await docker.listNetworks({ filters: { name: [network] } })).filter((n) => n.Name === network)).toEqual([]);
  });
});

describe.skipIf(skipE2E)('two commands at once on one lab', () => {
  let lab: TestLab;
  beforeAll(async () => {
    lab = await newLab('lock');
    await lab.json<UpResult>(['up']);
  });

  it('kill during check waits briefly, then refuses, naming check', async () => {
    const run = spawnCli(lab.dir, ['check', '--faults', '2', '--nemesis', 'kill,partition']);
    await run.waitFor(/\.\.\. kill /);
    const r = await lab.cli(['kill', 'etcd1'], { ETCD_LAB_LOCK_WAIT: '1' });
    expect(r).toExitWith(3);
    expect(r.stderr).toMatch(/lab ".*" is busy: `etcd-lab check` \(pid \d+, started \d+s ago in .*\) is working on it/);
    expect(r.stderr).toMatch(/waiting for `etcd-lab check`/);
    const checked = await run.exited;
    expect(checked).toExitWith(0);
    expect(await membersIntact(lab)).toEqual([]);
  });

  it('the second waits for the first when it ends in time', async () => {
    const lock = await acquireLabLock(lab.name, 'test-holder');
    const run = spawnCli(lab.dir, ['stop', 'etcd3']);
    await run.waitFor(/is busy: waiting for `etcd-lab test-holder`/);
    lock.release();
    const r = await run.exited;
    expect(r).toExitWith(0);
    const start = await lab.cli(['start']);
    expect(start).toExitWith(0);
  });

  it('a lock left by a process that died does not block', async () => {
    const lock = await acquireLabLock(lab.name, 'doomed');
    // Rewrite it as held by a pid that does not exist, as after a `kill -9`.
    const { lockPath } = await import('../../src/runtime/lock.js');
    writeFileSync(lockPath(lab.name), JSON.stringify({ pid: 2 ** 22 + 17, command: 'up', cwd: '/gone', startedAt: new Date().toISOString() }));
    const r = await lab.cli(['status']);
    expect(r).toExitWith(0);
    const k = await lab.cli(['pause', 'etcd2'], { ETCD_LAB_LOCK_WAIT: '1' });
    expect(k).toExitWith(0);
    expect(await lab.cli(['unpause'])).toExitWith(0);
    lock.release();
  });
});
