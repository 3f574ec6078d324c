// `etcd-lab apiserver`: Kubernetes' own API server code storing objects in the lab, in both TLS
// modes, driven by Debian's kubectl (the one in the image, run on the host's network with the host's
// kubeconfig, as a kubectl on the host would be). The image is built by the command under test;
// the first build is a Go build of some minutes, hence this file's long setup deadline.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { apiServerEndpoint, type ApiServerResult } from '../../src/lab/apiserver.js';
import type { LabStatus } from '../../src/runtime/status.js';
import type { UpResult } from '../../src/lab/up.js';
import { fetchWithDeadline, getPrefix } from '../../src/protocol/etcd-http.js';
import { APISERVER_IMAGE } from '../../src/runtime/images.js';
import { KubeWorkload, WIDGETS, WIDGETS_CRD } from '../../src/workload/kube.js';
import { clientOf, cliIn, createTestLab, labResources, removeNetwork, skipE2E, type TestLab } from './lab-fixture.js';

const BUILD_DEADLINE_MS = 40 * 60_000;
const docker = new Docker();

/** Debian's kubectl from the image, on the host's network, with generated/apiserver/ mounted: a host kubectl. */
function kubectl(
  lab: TestLab,
  args: string[],
  opts: { stdin?: string; timeoutMs?: number; kubeconfig?: string; onStdout?: (all: string) => void } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = opts.kubeconfig ?? join(lab.dir, 'generated', 'apiserver', 'kubeconfig');
  return new Promise((resolve) => {
    const child = spawn(
      'docker',
      ['run', '--rm', '-i', '--network', 'host', '-v', `${dirname(file)}:/kube:ro`, '-e', `KUBECONFIG=/kube/${basename(file)}`, '--entrypoint', 'kubectl', APISERVER_IMAGE, ...args],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      opts.onStdout?.(stdout);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

/** What a person would kubectl apply: the widgets CRD as YAML. */
const CRD = stringify(WIDGETS_CRD);

const widget = (name: string, size: number) => `apiVersion: lab.example.com/v1
kind: Widget
metadata: { name: ${name}, namespace: default }
spec: { size: ${size} }
`;

describe.skipIf(skipE2E).each([
  { mode: 'plain', tls: false },
  { mode: 'TLS', tls: true },
])('etcd-lab apiserver ($mode)', ({ tls }) => {
  let lab: TestLab;
  let result: ApiServerResult;
  let network: string;
  let clientEndpoint: string;

  beforeAll(async () => {
    // The command that makes the image is part of what is tested; warm, it only checks the recipe.
    const build = await cliIn(process.cwd())(['images', 'build', '--apiserver']);
    expect(build).toExitWith(0);
    lab = await createTestLab(`api${tls ? 't' : 'p'}`, tls ? { tls: { enabled: true } } : {});
    network = `${lab.name}-kind`;
    clientEndpoint = (await lab.json<UpResult>(['up'])).clientEndpoint;
    const r = await lab.cli(['apiserver', '--json'], { KIND_EXPERIMENTAL_DOCKER_NETWORK: network });
    expect(r).toExitWith(0);
    result = JSON.parse(r.stdout) as ApiServerResult;
  }, BUILD_DEADLINE_MS);
  afterAll(async () => {
    await lab?.remove();
    if (network) await removeNetwork(network);
  });

  it('its image build leaves no build stage behind (some 4.9 GB, once untagged)', async () => {
    const left = await docker.listImages({ filters: { dangling: ['true'], label: ['io.etcd-lab.build-stage=apiserver'] } });
    expect(left.map((i) => `${i.Id} ${i.Size}`)).toEqual([]);
  });

  it('runs where a KIND node would be, wired exactly as the KIND config wires kube-apiserver', async () => {
    expect(result.readyMs).toBeLessThan(30_000);
    expect(result.endpointMode).toBe('network');
    // The same endpoint and prefix as the kind-config.yaml `up` wrote (one function renders both).
    const config = parse(readFileSync(join(lab.dir, 'generated', 'kind-config.yaml'), 'utf8')) as { kubeadmConfigPatches: string[] };
    const patch = parse(config.kubeadmConfigPatches[0]!) as { etcd: { external: { endpoints: string[]; caFile?: string; certFile?: string; keyFile?: string } }; apiServer: { extraArgs: Record<string, string> } };
    expect(result.etcdEndpoint).toBe(patch.etcd.external.endpoints[0]);
    expect(result.etcdPrefix).toBe(patch.apiServer.extraArgs['etcd-prefix']);
    const inspect = await docker.getContainer(result.container).inspect();
    const args = inspect.Args;
    expect(args).toContain(`--etcd-servers=${result.etcdEndpoint}`);
    expect(args).toContain(`--etcd-prefix=${result.etcdPrefix}`);
    if (tls) {
      const ext = patch.etcd.external;
      expect(args).toEqual(expect.arrayContaining([`--etcd-cafile=${ext.caFile}`, `--etcd-certfile=${ext.certFile}`, `--etcd-keyfile=${ext.keyFile}`]));
    } else {
      expect(args.some((a) => a.startsWith('--etcd-cafile'))).toBe(false);
    }
    expect(Object.keys(inspect.NetworkSettings.Networks)).toEqual([network]);
  });

  it("kubectl creates a CRD and objects, lists and watches them; they are in the lab's etcd under the prefix", async () => {
    const crd = await kubectl(lab, ['apply', '-f', '-'], { stdin: CRD });
    expect(crd).toExitWith(0);
    const established = await kubectl(lab, ['wait', '--for=condition=Established', 'crd/widgets.lab.example.com', '--timeout=30s']);
    expect(established).toExitWith(0);

    // A watch from before the writes sees each of them, in order. It is known to be watching once it
    // has listed the object that was there before it.
    const first = await kubectl(lab, ['apply', '-f', '-'], { stdin: widget('first', 0) });
    expect(first).toExitWith(0);
    let listed: () => void = () => {};
    const watching = new Promise<void>((resolve) => (listed = resolve));
    const watch = kubectl(lab, ['get', 'widgets', '--watch', '--output-watch-events', '-o', 'custom-columns=EVENT:.type,NAME:.object.metadata.name,SIZE:.object.spec.size', '--no-headers', '--request-timeout=20s'], {
      timeoutMs: 30_000,
      onStdout: (all) => all.includes('first') && listed(),
    });
    await Promise.race([watching, watch.then((w) => Promise.reject(new Error(`kubectl --watch ended before it listed anything: ${w.stderr}`)))]);
    for (const [name, size] of [['a', 1], ['b', 2]] as const) {
      const created = await kubectl(lab, ['apply', '-f', '-'], { stdin: widget(name, size) });
      expect(created).toExitWith(0);
    }
    const patched = await kubectl(lab, ['patch', 'widget', 'a', '--type=merge', '-p', '{"spec":{"size":10}}']);
    expect(patched).toExitWith(0);
    const deleted = await kubectl(lab, ['delete', 'widget', 'b']);
    expect(deleted).toExitWith(0);

    const list = await kubectl(lab, ['get', 'widgets', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.spec.size} {end}']);
    expect(list).toExitWith(0);
    expect(list.stdout.trim()).toBe('a=10 first=0');

    const events = (await watch).stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    expect(events).toEqual(['ADDED first 0', 'ADDED a 1', 'ADDED b 2', 'MODIFIED a 10', 'DELETED b 2']);

    const keys = [...(await getPrefix(clientOf(lab, clientEndpoint), `${result.etcdPrefix}/`)).values.keys()];
    expect(keys).toContain(`${result.etcdPrefix}/apiextensions.k8s.io/customresourcedefinitions/widgets.lab.example.com`);
    expect(keys).toContain(`${result.etcdPrefix}/lab.example.com/widgets/default/a`);
    expect(keys).not.toContain(`${result.etcdPrefix}/lab.example.com/widgets/default/b`);
  });

  it('`etcd-lab env` exports KUBECONFIG at its kubeconfig; --delete removes the container and stops exporting it', async () => {
    const env = await lab.cli(['env', '--json']);
    expect(JSON.parse(env.stdout)).toMatchObject({ KUBECONFIG: result.kubeconfig });
    const again = await lab.cli(['apiserver'], { KIND_EXPERIMENTAL_DOCKER_NETWORK: network });
    expect(again).toExitWith(3);
    expect(again.stderr).toContain('exists already');

    const gone = await lab.cli(['apiserver', '--delete']);
    expect(gone).toExitWith(0);
    expect((await labResources(lab.name)).containers).not.toContain(result.container);
    expect(JSON.parse((await lab.cli(['env', '--json'])).stdout)).not.toHaveProperty('KUBECONFIG');
  });

  it('one not ready in time is removed again, nothing half-made left', async () => {
    await lab.cli(['apiserver', '--delete']);
    const late = await lab.cli(['apiserver', '--timeout', '0.05'], { KIND_EXPERIMENTAL_DOCKER_NETWORK: network });
    expect(late.code).not.toBe(0);
    expect(late.stderr).toMatch(/report ready/);
    expect((await labResources(lab.name)).containers).not.toContain(result.container);
  });

  it("--merge-kubeconfig merges its context into the person's kubeconfig, keeping theirs; --delete takes it out", async () => {
    await lab.cli(['apiserver', '--delete']);
    const home = mkdtempSync(join(tmpdir(), 'etcd-lab-home-'));
    try {
      const kube = join(home, '.kube');
      mkdirSync(kube);
      writeFileSync(join(kube, 'config'), stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'prod', cluster: { server: 'https://prod.example:6443' } }], users: [{ name: 'me', user: { token: 't' } }], contexts: [{ name: 'prod', context: { cluster: 'prod', user: 'me' } }], 'current-context': 'prod' }));
      const started = await lab.cli(['apiserver', '--merge-kubeconfig', '--json'], { KIND_EXPERIMENTAL_DOCKER_NETWORK: network, HOME: home, KUBECONFIG: '' });
      expect(started).toExitWith(0);
      const r = JSON.parse(started.stdout) as ApiServerResult;
      expect(r.mergedInto).toBe(join(kube, 'config'));
      const merged = parse(readFileSync(join(kube, 'config'), 'utf8')) as { contexts: { name: string }[]; 'current-context': string };
      expect(merged.contexts.map((c) => c.name)).toEqual(['prod', r.context]);
      expect(merged['current-context']).toBe(r.context);
      // kubectl with nothing but that file reaches the lab's API server.
      const ready = await kubectl(lab, ['get', '--raw', '/readyz?exclude=informer-sync'], { kubeconfig: join(kube, 'config') });
      expect(ready).toExitWith(0);

      const gone = await lab.cli(['apiserver', '--delete'], { HOME: home, KUBECONFIG: '' });
      expect(gone).toExitWith(0);
      expect(gone.stdout).toContain(`removed its context from ${join(kube, 'config')}`);
      const after = parse(readFileSync(join(kube, 'config'), 'utf8')) as { contexts: { name: string }[] };
      expect(after.contexts.map((c) => c.name)).toEqual(['prod']);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('--etcd-endpoints members: every member as its endpoints, from the lab network; it serves, and through a leader kill', async () => {
    await lab.cli(['apiserver', '--delete']);
    const started = await lab.cli(['apiserver', '--etcd-endpoints', 'members', '--json'], { KIND_EXPERIMENTAL_DOCKER_NETWORK: network });
    expect(started).toExitWith(0);
    const r = JSON.parse(started.stdout) as ApiServerResult;
    const scheme = tls ? 'https' : 'http';
    const status = await lab.json<LabStatus>(['status']);
    expect(r.etcdEndpoints).toBe('members');
    expect(r.etcdEndpoint.split(',')).toEqual(status.members.map((m) => expect.stringMatching(new RegExp(`^${scheme}://10\\.\\d+\\.\\d+\\.\\d+:2379$`))));
    const inspect = await docker.getContainer(r.container).inspect();
    expect(inspect.Args).toContain(`--etcd-servers=${r.etcdEndpoint}`);
    expect(Object.keys(inspect.NetworkSettings.Networks)).toEqual([lab.name]);
    // A Kubernetes-shaped client through a leader kill: nothing acknowledged lost, the watch complete.
    const api = apiServerEndpoint(join(lab.dir, 'generated'), r.server);
    await fetchWithDeadline(api, { method: 'POST', body: JSON.stringify(WIDGETS_CRD), headers: { 'content-type': 'application/json' } }, 10_000, '/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
    for (let i = 0; ; i++) {
      const listed = await fetchWithDeadline(api, {}, 5000, `/apis/${WIDGETS.group}/${WIDGETS.version}/namespaces/${WIDGETS.namespace}/${WIDGETS.plural}`).catch(() => undefined);
      if (listed?.status === 200) break;
      if (i > 150) throw new Error('widgets never served');
      await new Promise((done) => setTimeout(done, 200));
    }
    const workload = await new KubeWorkload({ api, prefix: 'members-', objects: 8, callTimeoutMs: 5000, pauseMs: 5 }).start();
    expect(await lab.cli(['kill', 'leader'])).toExitWith(0);
    expect(await lab.cli(['start'])).toExitWith(0);
    const outcome = await workload.stop();
    expect(outcome.violations, outcome.violations.join('\n')).toEqual([]);
    expect(outcome.acknowledged).toBeGreaterThan(20);
    expect(await lab.cli(['apiserver', '--delete'])).toExitWith(0);
  });
});
