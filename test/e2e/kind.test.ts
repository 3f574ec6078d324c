// `etcd-lab kind` up to the boundary this machine has (no kindest/node image can be had here):
// (b) the real kind binary accepts the generated config, told apart from the image failure;
// (c) Kubernetes' API server code, given the etcd flags kubeadm would take from the generated config,
//     on the very network KIND would use, stores objects in the lab under the prefix;
// (d) the orchestration, with kind and kubectl replaced by recording fakes on PATH.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { UpResult } from '../../src/lab/up.js';
import { countPrefix, deletePrefix, getKey, putKey } from '../../src/protocol/etcd-http.js';
import { createTestLab, removeNetwork, skipE2E, type TestLab } from './lab-fixture.js';
import { KIND_NODE_API_SERVER_TIMEOUT_MS, startKindNodeApiServer, storeWidget } from './kind-node-apiserver.js';

const FAKE_BIN = fileURLToPath(new URL('../fixtures/fake-bin/', import.meta.url));
const REAL_KIND = ['/usr/bin/kind', '/usr/local/bin/kind'].find((p) => existsSync(p));
const docker = new Docker();

function kindEndpointOf(configPath: string): string {
  const config = parse(readFileSync(configPath, 'utf8')) as { kubeadmConfigPatches: string[] };
  const patch = parse(config.kubeadmConfigPatches[0]!) as { etcd: { external: { endpoints: string[] } } };
  return patch.etcd.external.endpoints[0]!;
}

async function networkMembers(name: string): Promise<string[]> {
  const found = (await docker.listNetworks({ filters: { name: [name] } })).find((n) => n.Name === name);
  if (!found) return [];
  const info = (await docker.getNetwork(found.Id).inspect()) as { Containers?: Record<string, { Name: string }> };
  return Object.values(info.Containers ?? {}).map((c) => c.Name);
}

describe.skipIf(skipE2E)('etcd-lab kind', () => {
  let lab: TestLab;
  let endpoint: string;
  let log: string;
  let scratch: string;
  const networks: string[] = [];

  beforeAll(async () => {
    lab = await createTestLab('kind');
    endpoint = (await lab.json<UpResult>(['up'])).clientEndpoint;
    scratch = mkdtempSync(join(tmpdir(), 'etcd-lab-kind-'));
  });
  afterAll(async () => {
    for (const n of networks) await removeNetwork(n);
    await lab?.remove();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });
  beforeEach(() => {
    log = join(scratch, `calls-${Date.now()}.log`);
    writeFileSync(log, '');
  });

  /** The kind network for one test: private, so a real `kind` network on the machine is never touched. */
  function kindNetwork(tag: string): string {
    const name = `${lab.name}-${tag}`;
    networks.push(name);
    return name;
  }

  function kind(args: string[], env: Record<string, string> = {}) {
    return lab.cli(['kind', ...args], {
      PATH: `${FAKE_BIN}:${process.env.PATH}`,
      FAKE_LOG: log,
      KIND_EXPERIMENTAL_DOCKER_NETWORK: kindNetwork('kind'),
      ...env,
    });
  }
  const calls = () => readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);

  it('(d) runs its steps in order and hands kind the generated config', async () => {
    const network = kindNetwork('kind');
    const r = await kind(['--json']);
    expect(r).toExitWith(0);
    const result = JSON.parse(r.stdout) as { context: string; endpoint: string; endpointMode: string; etcdPrefix: string; config: string };
    const config = join(lab.dir, 'generated/kind-config.yaml');
    expect(result).toMatchObject({
      context: `kind-${lab.name}`,
      endpoint: `http://${lab.name}-haproxy:2379`,
      endpointMode: 'network',
      etcdPrefix: `/kind/${lab.name}/registry`,
      config,
    });
    // The two tool checks run side by side: either may be logged first.
    expect(calls().slice(0, 2).sort()).toEqual(['kind version', 'kubectl version --client']);
    expect(calls().slice(2)).toEqual([
      'kind get clusters',
      `kind create cluster --name ${lab.name} --config ${config}`,
      `kubectl --context kind-${lab.name} get --raw /readyz`,
      `kubectl --context kind-${lab.name} get pods --namespace kube-system --output name`,
    ]);
    expect(kindEndpointOf(config)).toBe(result.endpoint);
    expect(readFileSync(config, 'utf8')).toContain(`etcd-prefix: /kind/${lab.name}/registry`);
    // HAProxy now sits on the network the KIND nodes will use.
    expect(await networkMembers(network)).toContain(`${lab.name}-haproxy`);
  });

  it("(c) Kubernetes' API server, wired from the KIND config's own kubeadm patch on that network, stores objects in the lab under the prefix", { timeout: KIND_NODE_API_SERVER_TIMEOUT_MS }, async () => {
    const network = kindNetwork('kind');
    const node = await startKindNodeApiServer(lab, network);
    try {
      expect(node.prefix).toBe(`/kind/${lab.name}/registry`);
      await storeWidget(node.api, 'from-a-kind-node');
      // The same object, seen from this machine through HAProxy: one cluster, under the prefix kubeadm was given.
      expect(await getKey(endpoint, `${node.prefix}/lab.example.com/widgets/default/from-a-kind-node`)).toMatch(/"name":"from-a-kind-node"/);
    } finally {
      await node.remove();
      // Its objects would read as an earlier cluster's leftovers to `etcd-lab kind` in the tests below.
      await deletePrefix(endpoint, `/kind/${lab.name}/`);
    }
  });

  it('(d) refuses when a KIND cluster of that name exists, before creating anything', async () => {
    const r = await kind([], { FAKE_KIND_CLUSTERS: `other ${lab.name}` });
    expect(r).toExitWith(3);
    expect(r.stderr).toContain(`a KIND cluster named "${lab.name}" already exists`);
    expect(r.stderr).toMatch(/etcd-lab kind --delete/);
    expect(calls().some((c) => c.startsWith('kind create'))).toBe(false);
  });

  it('(d) the node image cannot be pulled: says so clearly and undoes its network changes', async () => {
    const network = kindNetwork('kind-image');
    const r = await kind([], { FAKE_SCENARIO: 'image', KIND_EXPERIMENTAL_DOCKER_NETWORK: network });
    expect(r).toExitWith(6);
    expect(r.stderr).toMatch(/kind could not get its node image kindest\/node:v1\.32\.2@sha256:[0-9a-f]+: this machine cannot pull it/);
    expect(r.stderr).toMatch(/everything before it is verified/);
    expect(r.stderr).toMatch(/docker save kindest\/node:v1\.32\.2 \| docker load/);
    expect((await docker.listNetworks({ filters: { name: [network] } })).filter((n) => n.Name === network)).toEqual([]);
  });

  it('(d) any other kind failure is reported with kind\'s own reason', async () => {
    const r = await kind([], { FAKE_SCENARIO: 'badconfig', KIND_EXPERIMENTAL_DOCKER_NETWORK: kindNetwork('kind-bad') });
    expect(r).toExitWith(6);
    expect(r.stderr).toMatch(/kind create cluster failed: failed to create cluster: unable to decode config/);
  });

  it('(d) a stacked etcd pod in kube-system is an error', async () => {
    const r = await kind([], { FAKE_SCENARIO: 'stacked' });
    expect(r).toExitWith(6);
    expect(r.stderr).toMatch(/kube-system runs a stacked etcd \(pod\/etcd-etcd-lab-control-plane\).*\(KIND cluster \S+ exists\)/);
  });

  it('(d) an API server that never becomes ready times out with a hint', async () => {
    const r = await kind(['--timeout', '2'], { FAKE_SCENARIO: 'notready' });
    expect(r).toExitWith(4);
    expect(r.stderr).toMatch(/timed out waiting for the API server to report ready.*\(KIND cluster \S+ exists\)/);
    expect(r.stderr).toMatch(/readyz\?verbose.*`etcd-lab kind --delete` removes the cluster/);
  });

  it('(d) missing kind or kubectl: a clear error with install hints, nothing done', async () => {
    for (const [present, absent] of [
      ['kubectl', 'kind'],
      ['kind', 'kubectl'],
    ] as const) {
      const only = mkdtempSync(join(scratch, `only-${present}-`));
      symlinkSync(join(FAKE_BIN, present), join(only, present));
      const r = await lab.cli(['kind'], { PATH: only, FAKE_LOG: log, KIND_EXPERIMENTAL_DOCKER_NETWORK: kindNetwork('kind') });
      expect(r).toExitWith(3);
      expect(r.stderr).toContain(`${absent} is not installed (or not on PATH)`);
      expect(r.stderr).toMatch(absent === 'kind' ? /kind\.sigs\.k8s\.io/ : /kubernetes\.io\/docs\/tasks\/tools/);
    }
    expect(calls().some((c) => c.startsWith('kind create'))).toBe(false);
  });

  it('(d) objects an earlier cluster of that name left in etcd: refused; --delete --purge removes them', async () => {
    await putKey(endpoint, `/kind/${lab.name}/registry/pods/default/leftover`, 'x');
    const refused = await kind([]);
    expect(refused).toExitWith(3);
    expect(refused.stderr).toMatch(/still holds 1 objects under \/kind\/.*\/registry\//);
    expect(calls().some((c) => c.startsWith('kind create'))).toBe(false);

    const noTerminal = await kind(['--delete', '--purge']);
    expect(noTerminal).toExitWith(1);
    expect(noTerminal.stderr).toMatch(/add --yes/);

    const purged = await kind(['--delete', '--purge', '--yes', '--json']);
    expect(purged).toExitWith(0);
    expect(JSON.parse(purged.stdout)).toEqual({ cluster: lab.name, deletedKeys: 1 });
    expect(calls()).toContain(`kind delete cluster --name ${lab.name}`);
    expect(await countPrefix(endpoint, `/kind/${lab.name}/`)).toBe(0);
  });

  it('(c) host mode on a Linux engine: host.docker.internal does not resolve on the KIND network, and it says so', async () => {
    const hostLab = await createTestLab('kindhost', { kind: { endpoint: 'host' } });
    try {
      expect(await hostLab.cli(['up'])).toExitWith(0);
      const network = kindNetwork('kind-host');
      await docker.createNetwork({ Name: network });
      const r = await hostLab.cli(['kind'], { PATH: `${FAKE_BIN}:${process.env.PATH}`, FAKE_LOG: log, KIND_EXPERIMENTAL_DOCKER_NETWORK: network });
      expect(r).toExitWith(3);
      expect(r.stderr).toMatch(new RegExp(`a container on the "${network}" network cannot reach etcd at http://host.docker.internal:${hostLab.clientPort}`));
      expect(r.stderr).toMatch(/Docker Desktop only; on a Linux engine set kind.endpoint: network/);
      expect(calls().some((c) => c.startsWith('kind create'))).toBe(false);
    } finally {
      await hostLab.remove();
    }
  });

  it('(d) a lab that is not up: says to run up, before any kind call that changes anything', async () => {
    const idle = await createTestLab('kindidle');
    try {
      const r = await idle.cli(['kind'], { PATH: `${FAKE_BIN}:${process.env.PATH}`, FAKE_LOG: log, KIND_EXPERIMENTAL_DOCKER_NETWORK: kindNetwork('kind') });
      expect(r).toExitWith(3);
      expect(r.stderr).toMatch(/is not serving: 0\/3 healthy/);
      expect(r.stderr).toMatch(/etcd-lab up/);
      expect(calls()).toEqual(['kind version', 'kubectl version --client']);
    } finally {
      await idle.remove();
    }
  });
});

describe.skipIf(skipE2E)('(b) the real kind binary', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'etcd-lab-realkind-'));
  beforeAll(() => {
    expect(REAL_KIND, 'the kind binary is not installed: scripts/setup-host.sh --kind (Debian trixie package), or https://kind.sigs.k8s.io').toBeDefined();
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  function realKind(config: string, name: string): Promise<{ code: number; stderr: string }> {
    return new Promise((resolve) =>
      execFile(REAL_KIND!, ['create', 'cluster', '--name', name, '--config', config], { timeout: 120_000 }, (error, _stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
  }

  it('accepts the generated config: it gets as far as the node image, which no registry here serves', async () => {
    const lab = await createTestLab('realkind');
    try {
      expect(await lab.cli(['generate'])).toExitWith(0);
      const r = await realKind(join(lab.dir, 'generated/kind-config.yaml'), lab.name);
      expect(r.code).not.toBe(0);
      expect(r.stderr).not.toMatch(/unable to decode config|invalid configuration/);
      expect(r.stderr).toMatch(/failed to pull image "kindest\/node/);
    } finally {
      await lab.remove();
    }
  });

  it('rejects a broken config before the image (so the test above can tell them apart)', async () => {
    const broken = join(scratch, 'broken.yaml');
    writeFileSync(broken, 'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodez:\n  - role: control-plane\n');
    const r = await realKind(broken, 'elt-broken');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unable to decode config/);
    expect(r.stderr).not.toMatch(/failed to pull image/);
  });
});
