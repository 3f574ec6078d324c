// A KIND control-plane node's API server, as far as etcd is concerned, without the node image this
// machine cannot have: Kubernetes' API server code (the `etcd-lab apiserver` image) started with the
// etcd flags kubeadm would give kube-apiserver from generated/kind-config.yaml's own patch
// (etcd.external endpoints and files, apiServer.extraArgs etcd-prefix) and the control-plane node's
// own extraMounts, on the network KIND uses. Only its own serving certificate and kubeconfigs come
// from `etcd-lab apiserver` (which writes them; its container is removed before this one starts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { expect } from 'vitest';
import { parse } from 'yaml';
import { apiServerEndpoint, type ApiServerResult } from '../../src/lab/apiserver.js';
import { APISERVER_MOUNT, APISERVER_PORT } from '../../src/render/apiserver.js';
import { fetchWithDeadline, type Endpoint } from '../../src/protocol/etcd-http.js';
import { WIDGETS_CRD } from '../../src/workload/kube.js';
import { cliIn, freePort, type TestLab } from './lab-fixture.js';

interface KindConfig {
  nodes: { role: string; extraMounts?: { hostPath: string; containerPath: string; readOnly?: boolean }[] }[];
  kubeadmConfigPatches: string[];
}
interface KubeadmPatch {
  etcd: { external: { endpoints: string[]; caFile?: string; certFile?: string; keyFile?: string } };
  apiServer: { extraArgs: Record<string, string> | { name: string; value: string }[] };
}

/** What kubeadm would give kube-apiserver for etcd, read from the KIND config as kind hands it over. */
export function kubeadmEtcdFlags(configPath: string): { args: string[]; binds: string[]; prefix: string } {
  const config = parse(readFileSync(configPath, 'utf8')) as KindConfig;
  const patch = parse(config.kubeadmConfigPatches[0]!) as KubeadmPatch;
  const extra = patch.apiServer.extraArgs;
  const prefix = Array.isArray(extra) ? extra.find((a) => a.name === 'etcd-prefix')!.value : extra['etcd-prefix']!;
  const ext = patch.etcd.external;
  // kubeadm's own mapping (cmd/kubeadm/app/phases/controlplane/manifests.go): endpoints joined, the three files as given.
  const args = [`--etcd-servers=${ext.endpoints.join(',')}`, `--etcd-prefix=${prefix}`];
  if (ext.caFile) args.push(`--etcd-cafile=${ext.caFile}`, `--etcd-certfile=${ext.certFile}`, `--etcd-keyfile=${ext.keyFile}`);
  const node = config.nodes.find((n) => n.role === 'control-plane')!;
  const binds = (node.extraMounts ?? []).map((m) => `${m.hostPath}:${m.containerPath}${m.readOnly ? ':ro' : ''}`);
  return { args, binds, prefix };
}

export interface KindNodeApiServer {
  container: string;
  api: Endpoint;
  prefix: string;
  remove(): Promise<void>;
}

/** A test that starts one may build the image first (cold: some minutes): give it this long. */
export const KIND_NODE_API_SERVER_TIMEOUT_MS = 40 * 60_000;

export async function startKindNodeApiServer(lab: TestLab, network: string): Promise<KindNodeApiServer> {
  const docker = new Docker();
  // Whichever test file runs first builds the image; warm, this only checks its recipe.
  const build = await cliIn(process.cwd())(['images', 'build', '--apiserver']);
  expect(build).toExitWith(0);
  const made = await lab.cli(['apiserver', '--json'], { KIND_EXPERIMENTAL_DOCKER_NETWORK: network });
  expect(made).toExitWith(0);
  const own = JSON.parse(made.stdout) as ApiServerResult;
  const inspect = await docker.getContainer(own.container).inspect();
  const gone = await lab.cli(['apiserver', '--delete']);
  expect(gone).toExitWith(0);

  const kind = kubeadmEtcdFlags(join(lab.dir, 'generated', 'kind-config.yaml'));
  const serverOnly = inspect.Args.filter((a) => !a.startsWith('--etcd-'));
  const ownFiles = (inspect.HostConfig.Binds ?? []).filter((b) => b.split(':')[1] === APISERVER_MOUNT);
  const port = await freePort();
  const name = `${lab.name}-kind-node-apiserver`;
  const container = await docker.createContainer({
    name,
    Image: inspect.Config.Image,
    Cmd: [...kind.args, ...serverOnly],
    Labels: { 'io.etcd-lab.lab': lab.name },
    ExposedPorts: { [`${APISERVER_PORT}/tcp`]: {} },
    HostConfig: { NetworkMode: network, Binds: [...kind.binds, ...ownFiles], PortBindings: { [`${APISERVER_PORT}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: String(port) }] } },
  });
  await container.start();
  const api = apiServerEndpoint(join(lab.dir, 'generated'), `https://127.0.0.1:${port}`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await fetchWithDeadline(api, {}, 2000, '/readyz?exclude=informer-sync').catch((error: Error) => ({ status: 0, text: error.message }));
    if (r.status === 200) break;
    if (Date.now() > deadline) throw new Error(`the API server wired from the KIND config was not ready in 60 s: ${r.text}\n${(await container.logs({ stdout: true, stderr: true, tail: 20 })).toString()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { container: name, api, prefix: kind.prefix, remove: () => container.remove({ force: true }).then(() => undefined) };
}


/** A CRD and one object through the API server; resolves once the object is stored. */
export async function storeWidget(api: Endpoint, name: string): Promise<void> {
  const post = (path: string, body: unknown) => fetchWithDeadline(api, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }, 10_000, path);
  const crd = await post('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', WIDGETS_CRD);
  expect([201, 409], crd.text).toContain(crd.status);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await post('/apis/lab.example.com/v1/namespaces/default/widgets', { apiVersion: 'lab.example.com/v1', kind: 'Widget', metadata: { name }, spec: { size: 1 } });
    if (r.status === 201) return;
    // 404 until the new resource is served.
    if (Date.now() > deadline) throw new Error(`could not create widget ${name}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
