// `etcd-lab kind` on a TLS lab, up to the boundary this machine has: the generated config names
// https endpoints and the API server's etcd client files, mounted into the node; the real kind binary
// accepts it; and Kubernetes' API server code with the etcd flags kubeadm would take from that config
// and exactly those mounts, on the network KIND uses, stores objects in the lab (without the client
// certificate, etcd refuses the node).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { UpResult } from '../../src/lab/up.js';
import { DockerEngine } from '../../src/engine/docker.js';
import { deletePrefix, getKey } from '../../src/protocol/etcd-http.js';
import { clientOf, createTestLab, removeNetwork, skipE2E, TEST_IMAGES, type TestLab } from './lab-fixture.js';
import { KIND_NODE_API_SERVER_TIMEOUT_MS, startKindNodeApiServer, storeWidget } from './kind-node-apiserver.js';

const FAKE_BIN = fileURLToPath(new URL('../fixtures/fake-bin/', import.meta.url));
const REAL_KIND = ['/usr/bin/kind', '/usr/local/bin/kind'].find((p) => existsSync(p));

interface KindConfig {
  nodes: { role: string; extraMounts?: { hostPath: string; containerPath: string; readOnly: boolean }[] }[];
  kubeadmConfigPatches: string[];
}

describe.skipIf(skipE2E)('etcd-lab kind on a TLS lab', () => {
  let lab: TestLab;
  let up: UpResult;
  let network: string;

  beforeAll(async () => {
    lab = await createTestLab('kindtls', { tls: { enabled: true } });
    up = await lab.json<UpResult>(['up']);
    network = `${lab.name}-kind`;
  });
  afterAll(async () => {
    await removeNetwork(network);
    await lab?.remove();
  });

  it('writes https endpoints, the three files kubeadm names, and mounts them into the control-plane node', async () => {
    const log = join(lab.dir, 'kind-calls.log');
    writeFileSync(log, '');
    const r = await lab.cli(['kind'], { PATH: `${FAKE_BIN}:${process.env.PATH}`, FAKE_LOG: log, KIND_EXPERIMENTAL_DOCKER_NETWORK: network });
    expect(r).toExitWith(0);
    const config = parse(readFileSync(join(lab.dir, 'generated/kind-config.yaml'), 'utf8')) as KindConfig;
    const external = (parse(config.kubeadmConfigPatches[0]!) as { etcd: { external: Record<string, unknown> } }).etcd.external;
    expect(external).toEqual({
      endpoints: [`https://${lab.name}-haproxy:2379`],
      caFile: '/etc/etcd-lab/pki/ca.crt',
      certFile: '/etc/etcd-lab/pki/kube-apiserver-etcd-client.crt',
      keyFile: '/etc/etcd-lab/pki/kube-apiserver-etcd-client.key',
    });
    // One directory, mounted whole (so a re-issued certificate reaches the node), holding each file named.
    const [mount, ...more] = config.nodes[0]!.extraMounts!;
    expect(more).toEqual([]);
    expect(mount).toEqual({ hostPath: join(lab.dir, 'generated/pki/kube-apiserver'), containerPath: '/etc/etcd-lab/pki', readOnly: true });
    for (const file of ['caFile', 'certFile', 'keyFile']) {
      const path = String(external[file]);
      expect(path.startsWith(`${mount!.containerPath}/`), file).toBe(true);
      expect(existsSync(join(mount!.hostPath, path.slice(mount!.containerPath.length + 1))), path).toBe(true);
    }
    expect(readFileSync(log, 'utf8')).toMatch(/kind create cluster/);
  });

  it("Kubernetes' API server with exactly those flags and mounts, on the KIND network, stores objects in the lab", { timeout: KIND_NODE_API_SERVER_TIMEOUT_MS }, async () => {
    const node = await startKindNodeApiServer(lab, network);
    try {
      await storeWidget(node.api, 'from-a-tls-kind-node');
      expect(await getKey(clientOf(lab, up.clientEndpoint), `${node.prefix}/lab.example.com/widgets/default/from-a-tls-kind-node`)).toMatch(/"name":"from-a-tls-kind-node"/);
    } finally {
      await node.remove();
      await deletePrefix(clientOf(lab, up.clientEndpoint), `/kind/${lab.name}/`);
    }
  });

  it('without the client certificate, a node on the KIND network is refused', async () => {
    const config = parse(readFileSync(join(lab.dir, 'generated/kind-config.yaml'), 'utf8')) as KindConfig;
    const external = (parse(config.kubeadmConfigPatches[0]!) as { etcd: { external: { endpoints: string[]; caFile: string } } }).etcd.external;
    const binds = config.nodes[0]!.extraMounts!.map((m) => `${m.hostPath}:${m.containerPath}:ro`);
    const engine = new DockerEngine();
    const bare = await engine.tools.run({
      image: TEST_IMAGES.etcd,
      command: ['etcdctl', `--endpoints=${external.endpoints[0]}`, `--cacert=${external.caFile}`, '--dial-timeout=2s', '--command-timeout=3s', 'endpoint', 'health'],
      binds,
      network,
      labels: { 'io.etcd-lab.lab': lab.name },
      timeoutMs: 20_000,
    });
    expect(bare.exitCode).not.toBe(0);
    // Refused for the missing certificate, not for a network that is not there.
    expect(bare.output).toMatch(/certificate|tls:/i);
  });

  it('the real kind binary accepts the TLS config: it gets as far as the node image', async () => {
    expect(REAL_KIND, 'the kind binary is not installed: etcd-lab setup-host --kind').toBeDefined();
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(REAL_KIND!, ['create', 'cluster', '--name', lab.name, '--config', join(lab.dir, 'generated/kind-config.yaml')], { timeout: 120_000 }, (error, _o, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toMatch(/unable to decode config|invalid configuration/);
    expect(r.stderr).toMatch(/failed to pull image "kindest\/node/);
  });
});
