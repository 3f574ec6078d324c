// `etcd-lab apiserver`: Kubernetes' generic API server (k8s.io/apiserver's etcd3 storage, watch cache
// and compaction, as kube-apiserver runs them) on the lab, placed where a KIND control-plane node
// would be and wired as generated/kind-config.yaml wires kube-apiserver. In under a second, on a
// machine where KIND cannot run. Steps: lab serving → no API server or KIND cluster on the same
// prefix → image (built once) → endpoint (+ kind network on Linux) → etcd reachable from there → its
// certificates and kubeconfigs → the container → ready → the host's kubeconfig → (asked) the
// person's kubeconfig. A failure undoes what it made.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { LoadOptions } from '../config/load.js';
import { ETCD_CLIENT_PORT, type Role } from '../config/topology.js';
import type { Reporter, StepHandle } from '../progress.js';
import {
  APISERVER_DIR,
  APISERVER_ENV,
  APISERVER_FILES,
  APISERVER_PORT,
  apiServerArgs,
  apiServerBinds,
  apiServerCertRequests,
  apiServerContainer,
  apiServerContext,
  mergeKubeconfig,
  renderKubeconfig,
  renderLoopbackKubeconfig,
  unmergeKubeconfig,
} from '../render/apiserver.js';
import { kubeApiServerEtcd, type KubeApiServerEtcd } from '../render/kind.js';
import type { Engine } from '../engine/engine.js';
import { fetchWithDeadline, type ClientTls } from '../protocol/etcd-http.js';
import { writeFileAtomic } from '../files.js';
import { APISERVER_IMAGE } from '../runtime/images.js';
import { kindCli, kindNetworkName } from '../runtime/kind-cli.js';
import type { LabRuntime } from '../runtime/lab.js';
import { ensurePki } from '../runtime/pki.js';
import { waitUntil } from '../runtime/wait.js';
import { checkLabServing, ENDPOINT_STEPS, type EndpointContext } from './kind.js';
import { withLab } from './session.js';
import { runSteps, type Step } from './steps.js';

/**
 * How the API server reaches etcd: `haproxy`, the lab's HAProxy as its one endpoint (what a KIND
 * node gets, and the default); `members`, every member's own address (--etcd-servers listing each),
 * from the lab's network, which a KIND node is not on.
 */
export const ETCD_ENDPOINTS = ['haproxy', 'members'] as const;
export type EtcdEndpoints = (typeof ETCD_ENDPOINTS)[number];

export interface ApiServerOptions extends LoadOptions {
  etcdEndpoints?: EtcdEndpoints;
  /** Keep what this run made when it fails, to inspect (the container and its logs). */
  retain?: boolean;
  /** How long the API server may take to become ready. */
  timeoutMs?: number;
  /** Also merge its context into the person's own kubeconfig (true: where kubectl looks by default). */
  mergeKubeconfig?: boolean | string;
  engine?: Engine;
}

export interface ApiServerResult {
  container: string;
  /** https://127.0.0.1:<port> */
  server: string;
  kubeconfig: string;
  context: string;
  etcdEndpoint: string;
  /** haproxy or members (--etcd-endpoints). */
  etcdEndpoints: EtcdEndpoints;
  endpointMode: string;
  etcdPrefix: string;
  /** Milliseconds from the container's start to /readyz answering ok. */
  readyMs: number;
  image: string;
  /** The person's kubeconfig its context was merged into (--merge-kubeconfig). */
  mergedInto?: string;
}

interface ApiServerContext extends EndpointContext {
  opts: ApiServerOptions;
  etcd?: KubeApiServerEtcd;
  server?: string;
  startedAt?: number;
  readyMs?: number;
  mergedInto?: string;
  made: EndpointContext['made'] & { container?: string; mergedKubeconfig?: { path: string; before?: string } };
}

const ROLE: Role = 'apiserver';

export const APISERVER_STEPS: Step<ApiServerContext>[] = [
  // The cheap checks first: a lab that is down must not cost an image build.
  { title: (ctx) => `lab "${ctx.runtime.lab.spec.name}" serving`, run: checkLabServing },
  { title: 'no API server or KIND cluster on the same prefix', run: checkNoClash },
  { title: `image ${APISERVER_IMAGE}`, reportsItself: true, run: ensureImage },
  ...ENDPOINT_STEPS.map((step) => ({ ...step, when: (ctx: ApiServerContext) => viaHaproxy(ctx) })),
  { title: (ctx) => `certificates and kubeconfigs in ${dirOf(ctx)}`, run: writeOwnFiles },
  {
    title: (ctx) => `start ${apiServerContainer(ctx.runtime.lab.spec)}`,
    run: startContainer,
    undo: async ({ runtime, made }) => {
      if (!made.container) return [];
      await runtime.removeContainer({ id: made.container }, 0).catch(() => {});
      return [`container ${apiServerContainer(runtime.lab.spec)}`];
    },
  },
  { title: 'API server ready (/readyz)', run: waitReady },
  {
    title: (ctx) => `write ${join(dirOf(ctx), APISERVER_FILES.kubeconfig)}`,
    run: writeHostKubeconfig,
    // `etcd-lab env` exports KUBECONFIG while this file exists: it goes with the container.
    undo: async (ctx) => {
      await rm(join(dirOf(ctx), APISERVER_FILES.kubeconfig), { force: true });
      return [];
    },
  },
  {
    title: (ctx) => `merge context ${apiServerContext(ctx.runtime.lab.spec)} into ${personalKubeconfig(ctx.opts.mergeKubeconfig)}`,
    when: (ctx) => Boolean(ctx.opts.mergeKubeconfig),
    run: mergeIntoPersonalKubeconfig,
    undo: async (ctx) => {
      const merged = ctx.made.mergedKubeconfig;
      if (!merged) return [];
      if (merged.before === undefined) await rm(merged.path, { force: true });
      else await writeFileAtomic(merged.path, merged.before, { mode: 0o600 });
      await rm(join(dirOf(ctx), MERGED_INTO), { force: true });
      return [`context in ${merged.path}`];
    },
  },
];

const dirOf = (ctx: { runtime: LabRuntime }) => join(ctx.runtime.lab.outDir, APISERVER_DIR);
const viaHaproxy = (ctx: ApiServerContext) => (ctx.opts.etcdEndpoints ?? 'haproxy') === 'haproxy';

export async function startApiServer(opts: ApiServerOptions, reporter: Reporter): Promise<ApiServerResult> {
  return withLab(opts, { lock: 'apiserver' }, reporter, async (runtime) => {
    const ctx: ApiServerContext = { runtime, reporter, opts, made: {} };
    const name = apiServerContainer(runtime.lab.spec);
    await runSteps(APISERVER_STEPS, ctx, reporter, {
      command: 'apiserver',
      retain: opts.retain,
      retainedHint: `\`docker logs ${name}\` shows why; \`etcd-lab apiserver --delete\` removes it`,
      leftovers: async () => (ctx.made.container ? [`container ${name}`] : []),
    });
    return {
      container: name,
      server: ctx.server!,
      kubeconfig: join(dirOf(ctx), APISERVER_FILES.kubeconfig),
      context: apiServerContext(runtime.lab.spec),
      etcdEndpoint: ctx.etcd!.endpoint,
      etcdEndpoints: opts.etcdEndpoints ?? 'haproxy',
      endpointMode: viaHaproxy(ctx) ? ctx.mode! : 'lab network',
      etcdPrefix: ctx.etcd!.prefix,
      readyMs: ctx.readyMs!,
      image: APISERVER_IMAGE,
      ...(ctx.mergedInto ? { mergedInto: ctx.mergedInto } : {}),
    };
  });
}

async function ensureImage(ctx: ApiServerContext): Promise<void> {
  // Present and built from today's recipe: nothing to do. Else built here, with its progress.
  await ctx.runtime.buildImages({ apiserverOnly: true }, ctx.reporter);
}

async function checkNoClash(ctx: ApiServerContext): Promise<void> {
  const { runtime } = ctx;
  const { spec } = runtime.lab;
  const name = apiServerContainer(spec);
  const running = await runtime.apiServerContainer();
  if (running) {
    throw new UserError(`the lab's API server ${name} exists already (${running.status})`, {
      hint: `use it (KUBECONFIG=${join(dirOf(ctx), APISERVER_FILES.kubeconfig)}), or remove it first: etcd-lab apiserver --delete`,
      exitCode: ExitCode.refused,
    });
  }
  // A KIND cluster of the same name keeps its objects under the same prefix: two API servers would share them.
  const clusters = await kindCli.clusters().catch(() => [] as string[]); // no kind here: no such cluster
  if (clusters.includes(spec.kind.name)) {
    throw new UserError(`KIND cluster "${spec.kind.name}" runs on this lab, with its objects under the prefix this API server would use`, {
      hint: 'delete it first (etcd-lab kind --delete), or set kind.name to another name',
      exitCode: ExitCode.refused,
    });
  }
}

async function writeOwnFiles(ctx: ApiServerContext): Promise<void> {
  const { spec } = ctx.runtime.lab;
  // The API server's own PKI, apart from the lab's etcd PKI: its own CA, kept while it is fresh.
  await ensurePki(join(dirOf(ctx), 'pki'), apiServerCertRequests(spec), spec.tls);
  await writeFileAtomic(join(dirOf(ctx), APISERVER_FILES.loopback), renderLoopbackKubeconfig(spec), { mode: 0o600 });
}

async function startContainer(ctx: ApiServerContext, step: StepHandle): Promise<void> {
  const { runtime, made } = ctx;
  const { spec } = runtime.lab;
  const wiring = kubeApiServerEtcd(spec, { mode: ctx.mode!, clientPort: runtime.lab.local.clientPort, hostPkiDir: runtime.pkiDir });
  // Every member at its fixed address on the lab's network (addresses survive a restart or replace).
  const scheme = spec.tls.enabled ? 'https' : 'http';
  const members = runtime.topology.members.map((m) => `${scheme}://${m.address}:${ETCD_CLIENT_PORT}`).join(',');
  ctx.etcd = viaHaproxy(ctx) ? wiring : { ...wiring, endpoint: members };
  // Where a KIND node would be: on the kind network (network mode), else on the default bridge;
  // with every member as its endpoints, on the lab's own network.
  const network = !viaHaproxy(ctx) ? runtime.topology.network : ctx.mode === 'network' ? kindNetworkName() : 'bridge';
  step.update(`on "${network}", etcd at ${ctx.etcd.endpoint}, prefix ${ctx.etcd.prefix}`);
  // A port fixed now, not picked by the engine at each start: a restart (snapshot restore does one) keeps it.
  const port = await freeLoopbackPort();
  made.container = await runtime.runContainer(ROLE, {
    name: apiServerContainer(spec),
    image: APISERVER_IMAGE,
    args: apiServerArgs(ctx.etcd),
    network,
    binds: apiServerBinds(ctx.etcd, dirOf(ctx)),
    env: APISERVER_ENV,
    publish: { containerPort: APISERVER_PORT, hostPort: port },
  });
  ctx.startedAt = Date.now();
  ctx.server = `https://127.0.0.1:${port}`;
}

/** A port nothing listens on at 127.0.0.1 now (the kernel's pick). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

/** The admin's client identity at the server (what kubectl presents with the host's kubeconfig); `outDir` is generated/. */
export function apiServerEndpoint(outDir: string, server: string): { url: string; tls: ClientTls } {
  const read = (file: string) => readFileSync(join(outDir, APISERVER_DIR, file), 'utf8');
  return { url: server, tls: { ca: read(`${APISERVER_FILES.ca}.crt`), cert: read(`${APISERVER_FILES.admin}.crt`), key: read(`${APISERVER_FILES.admin}.key`) } };
}

const adminEndpoint = (ctx: ApiServerContext) => apiServerEndpoint(ctx.runtime.lab.outDir, ctx.server!);
async function waitReady(ctx: ApiServerContext, step: StepHandle): Promise<void> {
  await waitApiServerReady(ctx.runtime, ctx.made.container!, Date.now() + (ctx.opts.timeoutMs ?? 60_000), step);
  ctx.readyMs = Date.now() - ctx.startedAt!;
}

/** Until the lab's API server (container `id`) answers /readyz; a container that stops ends the wait with its last lines. */
export async function waitApiServerReady(runtime: LabRuntime, id: string, deadline: number, step: StepHandle): Promise<void> {
  const name = apiServerContainer(runtime.lab.spec);
  // The admin's files do not change while it starts: read once, not at every poll.
  const admin = apiServerEndpoint(runtime.lab.outDir, '');
  await waitUntil(
    `${name} to report ready`,
    deadline,
    async () => {
      const found = await runtime.apiServerContainer();
      const state = found?.id === id ? found : undefined;
      if (state && state.state !== 'running') throw new UserError(`${name} stopped (${state.status}): ${await lastLogLines(runtime, id)}`, { hint: `\`docker logs ${name}\``, exitCode: ExitCode.refused });
      const port = state?.hostPorts[APISERVER_PORT];
      if (!port) return { done: false, detail: 'no published port yet' };
      try {
        // informer-sync waits for informers of core resources this server does not have.
        const response = await fetchWithDeadline({ ...admin, url: `https://127.0.0.1:${port}` }, {}, 2000, '/readyz?exclude=informer-sync');
        return { done: response.status === 200, detail: response.text.trim().split('\n').at(-1)?.slice(0, 80) ?? '' };
      } catch (error) {
        return { done: false, detail: (error as Error).message.slice(0, 80) };
      }
    },
    step,
    { intervalMs: 100, hint: `\`docker logs ${name}\` says why` },
  );
}

async function lastLogLines(runtime: LabRuntime, id: string): Promise<string> {
  const text = await runtime.output({ id }, 5);
  return text.trim().split('\n').slice(-3).join(' / ') || 'no output';
}

async function writeHostKubeconfig(ctx: ApiServerContext): Promise<void> {
  const { spec } = ctx.runtime.lab;
  const { tls } = adminEndpoint(ctx);
  // The key is embedded: 0600, under generated/ (gitignored), like kind's own kubeconfig.
  await writeFileAtomic(join(dirOf(ctx), APISERVER_FILES.kubeconfig), renderKubeconfig(spec, ctx.server!, { pem: tls }), { mode: 0o600 });
}

/**
 * The kubeconfig kubectl reads by default, as kind picks it: the first file of $KUBECONFIG, else
 * ~/.kube/config. The lab's own kubeconfig (KUBECONFIG after `eval "$(etcd-lab env)"`) is never it.
 */
export function personalKubeconfig(choice: boolean | string | undefined, env = process.env): string {
  if (typeof choice === 'string') return resolve(choice);
  const first = (env.KUBECONFIG ?? '').split(delimiter).find((p) => p.trim() !== '');
  const ownTail = join(APISERVER_DIR, APISERVER_FILES.kubeconfig);
  if (first && !resolve(first).endsWith(ownTail)) return resolve(first);
  return join(homedir(), '.kube', 'config');
}

async function mergeIntoPersonalKubeconfig(ctx: ApiServerContext): Promise<void> {
  const path = personalKubeconfig(ctx.opts.mergeKubeconfig);
  const before = existsSync(path) ? await readFile(path, 'utf8') : undefined;
  const ours = await readFile(join(dirOf(ctx), APISERVER_FILES.kubeconfig), 'utf8');
  let merged: string;
  try {
    merged = mergeKubeconfig(before, ours, path);
  } catch (error) {
    throw new UserError(`cannot merge into ${path}: ${(error as Error).message}`, {
      hint: `fix or move that file, or use the lab's own: export KUBECONFIG=${join(dirOf(ctx), APISERVER_FILES.kubeconfig)}`,
      exitCode: ExitCode.badInput,
    });
  }
  await mkdir(dirname(path), { recursive: true });
  ctx.made.mergedKubeconfig = { path, before };
  await writeFileAtomic(path, merged, { mode: 0o600 });
  // --delete takes the context out of this very file, wherever it was.
  await writeFileAtomic(join(dirOf(ctx), MERGED_INTO), `${path}\n`);
  ctx.mergedInto = path;
}

/** Beside the host kubeconfig: the path of the person's kubeconfig the context was merged into. */
const MERGED_INTO = 'merged-into';

/** `etcd-lab apiserver --delete`: the container goes; its files and its objects in etcd stay. */
export async function deleteApiServer(
  opts: LoadOptions & { engine?: Engine },
  reporter: Reporter,
): Promise<{ container: string; removed: boolean; unmergedFrom?: string }> {
  return withLab(opts, { lock: 'apiserver --delete' }, reporter, async (runtime) => {
    const { spec } = runtime.lab;
    const name = apiServerContainer(spec);
    const found = await runtime.apiServerContainer();
    if (found) await reporter.step(`remove ${found.name}`, () => runtime.removeContainer(found, 5));
    // Its kubeconfig names a port that is gone now: `etcd-lab env` stops pointing at it.
    await rm(join(runtime.lab.outDir, APISERVER_DIR, APISERVER_FILES.kubeconfig), { force: true });
    // As `kind delete cluster` does: a context merged into the person's kubeconfig goes with it.
    const record = join(runtime.lab.outDir, APISERVER_DIR, MERGED_INTO);
    const personal = existsSync(record) ? readFileSync(record, 'utf8').trim() : personalKubeconfig(undefined);
    await rm(record, { force: true });
    const text = existsSync(personal) ? await readFile(personal, 'utf8') : undefined;
    const without = text === undefined ? undefined : unmergeKubeconfigSafely(text, apiServerContext(spec), personal, reporter);
    if (without !== undefined) await reporter.step(`remove context ${apiServerContext(spec)} from ${personal}`, () => writeFileAtomic(personal, without, { mode: 0o600 }));
    return { container: name, removed: found !== undefined, ...(without !== undefined ? { unmergedFrom: personal } : {}) };
  });
}

function unmergeKubeconfigSafely(text: string, name: string, path: string, reporter: Reporter): string | undefined {
  try {
    return unmergeKubeconfig(text, name, path);
  } catch (error) {
    reporter.warn(`left ${path} as it is: ${(error as Error).message}`);
    return undefined;
  }
}
