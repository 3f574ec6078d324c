// `etcd-lab export swarm` deployed with the real engine: this machine becomes a one-node swarm
// (when it is not one already), the exported stack runs on the local images, quorum is proven
// through the exported HAProxy, a member's task is killed and Swarm's replacement keeps its data;
// then the stack is removed and the swarm left, as it was found.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExportSwarmResult } from '../../src/lab/export.js';
import { getKey, putKey, type Endpoint } from '../../src/protocol/etcd-http.js';
import { readClientTls } from '../../src/runtime/pki.js';
import { demuxedText } from '../../src/engine/docker/containers.js';
import { cliIn, freePorts, skipE2E, TEST_IMAGES, uniqueLab, until } from './lab-fixture.js';

function docker(args: string[], cwd?: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) =>
    execFile('docker', args, { cwd, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}`.trim() }),
    ),
  );
}

/** How often this file's waits look again. */
const POLL_MS = 500;

describe.skipIf(skipE2E)('export swarm on a one-node swarm', () => {
  const engine = new Docker();
  const { name } = uniqueLab('swm');
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  let result: ExportSwarmResult;
  let joinedHere = false;
  /** swarm init makes this network; leaving the swarm does not remove it. */
  let gwbridgeBefore = true;
  let nodeId = '';
  let client: Endpoint;
  let admin: ReturnType<typeof readClientTls>;

  /** etcdctl from a container on the stack's overlay network, with the exported admin pair. */
  const etcdctl = async (args: string[]) => {
    const c = await engine.createContainer({
      Image: TEST_IMAGES.etcd,
      Labels: { 'io.etcd-lab.lab': name },
      Entrypoint: ['etcdctl'],
      Cmd: ['--cacert=/admin/ca.crt', '--cert=/admin/admin.crt', '--key=/admin/admin.key', '--command-timeout=5s', ...args],
      HostConfig: { NetworkMode: `${name}_etcd`, Binds: [`${join(result.dir, 'admin')}:/admin:ro`] },
    });
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    const output = demuxedText((await c.logs({ stdout: true, stderr: true })) as unknown as Buffer);
    await c.remove({ force: true });
    return { code: StatusCode, output };
  };

  beforeAll(async () => {
    const [clientPort, statsPort] = await freePorts(2);
    writeFileSync(join(dir, 'etcd-lab.yaml'), `apiVersion: etcd-lab/v1alpha1\nname: ${name}\nmembers: 3\n`);
    writeFileSync(join(dir, '.env'), `ETCD_LAB_CLIENT_PORT=${clientPort}\nETCD_LAB_STATS_PORT=${statsPort}\nETCD_LAB_ETCD_IMAGE=${TEST_IMAGES.etcd}\nETCD_LAB_HAPROXY_IMAGE=${TEST_IMAGES.haproxy}\n`);
    const r = await cliIn(dir)(['export', 'swarm', '--json']);
    expect(r).toExitWith(0);
    result = JSON.parse(r.stdout) as ExportSwarmResult;
    admin = readClientTls(result.dir, 'admin/admin');
    client = { url: `https://127.0.0.1:${clientPort}`, tls: admin };

    const state = (await engine.info()).Swarm?.LocalNodeState;
    gwbridgeBefore = (await engine.listNetworks({ filters: { name: ['docker_gwbridge'] } })).some((n) => n.Name === 'docker_gwbridge');
    if (state !== 'active') {
      const init = await docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
      expect(init).toExitWith(0);
      joinedHere = true;
    }
    nodeId = (await engine.info()).Swarm!.NodeID as string;
    const labels = result.nodeLabels.flatMap((l) => ['--label-add', l]);
    const label = await docker(['node', 'update', ...labels, nodeId]);
    expect(label).toExitWith(0);
  }, 120_000);

  afterAll(async () => {
    await docker(['stack', 'rm', name]);
    // Stack removal is asynchronous: the tasks' containers go first, then the network.
    await until('the stack to be gone', 60_000, async () => ((await engine.listContainers({ all: true, filters: { label: [`com.docker.stack.namespace=${name}`] } })).length === 0 ? true : undefined), POLL_MS).catch(() => {});
    for (const c of await engine.listContainers({ all: true, filters: { label: ['io.etcd-lab.lab=' + name] } })) await engine.getContainer(c.Id).remove({ force: true });
    for (const v of (await engine.listVolumes({ filters: { label: [`io.etcd-lab.lab=${name}`] } })).Volumes ?? []) await engine.getVolume(v.Name).remove().catch(() => {});
    if (nodeId && !joinedHere) await docker(['node', 'update', ...result.nodeLabels.flatMap((l) => ['--label-rm', l.split('=')[0]!]), nodeId]);
    if (joinedHere) await docker(['swarm', 'leave', '--force']);
    if (joinedHere && !gwbridgeBefore) await docker(['network', 'rm', 'docker_gwbridge']);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('the stack pins each member by node label, uses DNS round robin, secrets and host-mode ports', async () => {
    const { parse } = await import('yaml');
    const { readFileSync } = await import('node:fs');
    const stack = parse(readFileSync(result.stackFile, 'utf8')) as {
      services: Record<string, { deploy: { endpoint_mode: string; placement: { constraints: string[] } }; secrets: { source: string }[]; ports?: { mode: string }[]; environment?: unknown }>;
    };
    expect(stack.services.etcd2!.deploy.placement.constraints).toEqual(['node.labels.etcd-lab.etcd2 == true']);
    for (const s of Object.values(stack.services)) {
      expect(s.deploy.endpoint_mode).toBe('dnsrr');
      expect(s.environment).toBeUndefined();
      expect(s.secrets.length).toBeGreaterThan(0);
    }
    expect(stack.services.haproxy!.ports!.map((p) => p.mode)).toEqual(['host', 'host']);
  });

  it('deploys: quorum through the exported HAProxy, every member in `endpoint status --cluster`', async () => {
    const deploy = await docker(['stack', 'deploy', '-c', 'stack.yml', name], result.dir);
    expect(deploy).toExitWith(0);
    await until('a write through HAProxy', 90_000, async () => (await putKey(client, 'swarm/before', 'kept', 2000)).revision || undefined, POLL_MS);
    expect(await getKey(client, 'swarm/before')).toBe('kept');
    const status = await until('every member in endpoint status --cluster', 60_000, async () => {
      const r = await etcdctl(['--endpoints=https://etcd1:2379', 'endpoint', 'status', '--cluster', '-w', 'json']);
      return r.code === 0 ? r.output : undefined;
    }, POLL_MS);
    const endpoints = JSON.parse(status.slice(status.indexOf('['))) as { Endpoint: string; Status: { leader: number } }[];
    expect(endpoints.map((e) => e.Endpoint).sort()).toEqual(['https://etcd1:2379', 'https://etcd2:2379', 'https://etcd3:2379']);
    expect(new Set(endpoints.map((e) => e.Status.leader)).size).toBe(1);
  }, 180_000);

  it("a killed member's task is replaced by Swarm, with its data", async () => {
    const [task] = await engine.listContainers({ filters: { label: [`com.docker.swarm.service.name=${name}_etcd2`] } });
    expect(task).toBeDefined();
    await engine.getContainer(task!.Id).kill();
    const replacement = await until('Swarm to start a new etcd2 task', 90_000, async () => {
      const list = await engine.listContainers({ filters: { label: [`com.docker.swarm.service.name=${name}_etcd2`] } });
      return list.find((c) => c.Id !== task!.Id && c.State === 'running');
    }, POLL_MS);
    expect(replacement.Id).not.toBe(task!.Id);
    // etcd2's own copy (a serializable read from it alone) still has what was written before.
    const own = await until('etcd2 to serve its own data', 60_000, async () => {
      const r = await etcdctl(['--endpoints=https://etcd2:2379', 'get', 'swarm/before', '--print-value-only', '--consistency=s']);
      return r.code === 0 && r.output.trim() === 'kept' ? r.output.trim() : undefined;
    }, POLL_MS);
    expect(own).toBe('kept');
    await until('a write through HAProxy after the replacement', 30_000, async () => (await putKey(client, 'swarm/after', 'yes', 2000)).revision || undefined, POLL_MS);
  }, 180_000);
});
