// `etcd-lab kind`: a KIND cluster whose control plane keeps everything in the lab's external etcd.
// Steps (KIND_CREATE_STEPS, then KIND_READY_STEPS): tools → lab serving → no clash → endpoint
// mode (+ kind network on Linux) → reachability proven from the KIND nodes' network →
// kind-config.yaml → kind create → API server ready → no stacked etcd pod. A failure before the
// cluster exists removes what this run added to the lab's surroundings.
import { join } from 'node:path';
import { UserError } from '../errors.js';
import type { Reporter, StepHandle } from '../progress.js';
import { KIND_FILE } from '../render/index.js';
import { kindEtcdEndpoint, kindEtcdFiles, kindEtcdPrefix, renderKindConfig, resolveEndpointMode, type KubeadmApi, type ResolvedEndpointMode } from '../render/kind.js';
import type { Engine } from '../engine/engine.js';
import { writeFileAtomic } from '../files.js';
import { countPrefix, deletePrefix } from '../protocol/etcd-http.js';
import { kindCli, kindNetworkName, kubeadmApiFor, parseKindVersion } from '../runtime/kind-cli.js';
import { LabRuntime } from '../runtime/lab.js';
import { collectStatus } from '../runtime/status.js';
import { waitUntil } from '../runtime/wait.js';
import type { LoadOptions } from '../config/load.js';
import { Interrupted } from '../interrupt.js';
import { withLab } from './session.js';
import { runSteps, type Step } from './steps.js';
import { LABEL, type Role } from '../config/topology.js';
import { KUBEADM_MIN_ETCD, olderThan } from '../config/validate.js';
import { ExitCode } from '../exit-codes.js';

export interface KindOptions extends LoadOptions {
  /** Keep what this run set up when kind fails, and pass `--retain` to `kind create cluster` so kind keeps its nodes. */
  retain?: boolean;
  /** How long the API server may take to become ready. */
  timeoutMs?: number;
  engine?: Engine;
}

export interface KindResult {
  cluster: string;
  context: string;
  endpoint: string;
  endpointMode: ResolvedEndpointMode;
  etcdPrefix: string;
  kubeadmApi: KubeadmApi;
  config: string;
  clientEndpoint: string;
}

export async function createKindCluster(opts: KindOptions, reporter: Reporter): Promise<KindResult> {
  return withLab(opts, { lock: 'kind' }, reporter, (runtime) => createOnLab(runtime, opts, reporter));
}

/**
 * What the steps that put the lab's etcd within a KIND node's reach find and make: shared by
 * `etcd-lab kind` and `etcd-lab apiserver`, whose API server sits where a KIND node would.
 */
export interface EndpointContext {
  runtime: LabRuntime;
  reporter: Reporter;
  info?: { dockerDesktop: boolean };
  /** The image the members really run: the stand-in node runs etcdctl from it. */
  memberImage?: string;
  mode?: ResolvedEndpointMode;
  endpoint?: string;
  /** What this run made around the lab, for the undo. */
  made: { network?: string; attached?: { network: string; container: string } };
}

/** What kind's steps find and make, read by the steps after them and by their undo. */
interface KindContext extends EndpointContext {
  opts: KindOptions;
  cluster: string;
  kindVersion?: ReturnType<typeof parseKindVersion>;
  kubeadmApi?: KubeadmApi;
  made: EndpointContext['made'] & { cluster?: boolean };
}

/** Network mode: the kind network (made if missing) with HAProxy on it; then etcd proven reachable from there. */
export const ENDPOINT_STEPS: Step<EndpointContext>[] = [
  {
    title: (ctx) => `endpoint ${ctx.endpoint} (${ctx.mode} mode${ctx.runtime.lab.spec.kind.endpoint === 'auto' ? `, auto: ${ctx.info!.dockerDesktop ? 'Docker Desktop' : 'Docker Engine'}` : ''})`,
    run: prepareEndpoint,
    undo: async ({ runtime, made }) => {
      const undone: string[] = [];
      if (made.attached) {
        await runtime.detach(made.attached.network, { id: made.attached.container }).catch(() => {});
        undone.push(`HAProxy's attachment to "${kindNetworkName()}"`);
      }
      if (made.network) {
        await runtime.removeNetwork({ id: made.network }).catch(() => {});
        undone.push(`network "${kindNetworkName()}"`);
      }
      return undone;
    },
  },
  { title: (ctx) => `etcd answers at ${ctx.endpoint} from the "${kindNetworkName()}" network`, run: probeFromKindNetwork },
];

/** `etcd-lab kind` up to a created cluster, in order. A failure or Ctrl-C undoes what this run made. */
export const KIND_CREATE_STEPS: Step<KindContext>[] = [
  { title: 'kind and kubectl', run: checkTools },
  { title: (ctx) => `lab "${ctx.runtime.lab.spec.name}" serving`, run: checkLabServes },
  { title: (ctx) => `no clash with KIND cluster "${ctx.cluster}"`, run: checkNoClash },
  ...ENDPOINT_STEPS,
  {
    title: (ctx) => `write ${kindConfigPath(ctx)}`,
    run: (ctx) =>
      writeFileAtomic(kindConfigPath(ctx), renderKindConfig(ctx.runtime.lab.spec, { mode: ctx.mode!, clientPort: ctx.runtime.lab.local.clientPort, kubeadmApi: ctx.kubeadmApi!, hostPkiDir: ctx.runtime.pkiDir })),
  },
  {
    title: (ctx) => `kind create cluster --name ${ctx.cluster}`,
    run: createCluster,
    undo: async ({ cluster, made }) => {
      if (!made.cluster) return [];
      await kindCli.delete(cluster, undefined, { cleanup: true }).catch(() => {});
      return [`KIND cluster ${cluster}`];
    },
  },
];

/** From here the cluster exists: a failure says so, and how to remove it, and removes nothing. */
export const KIND_READY_STEPS: Step<KindContext>[] = [
  { title: 'API server ready', run: waitApiServerReady },
  { title: 'no stacked etcd in kube-system', run: checkNoStackedEtcd },
];

const kindConfigPath = (ctx: KindContext) => join(ctx.runtime.lab.outDir, KIND_FILE);
const contextOf = (cluster: string) => `kind-${cluster}`;

async function createOnLab(runtime: LabRuntime, opts: KindOptions, reporter: Reporter): Promise<KindResult> {
  const cluster = runtime.lab.spec.kind.name;
  const ctx: KindContext = { runtime, opts, reporter, cluster, made: {} };
  const leftovers = async () => [ctx.made.cluster ? `KIND cluster ${cluster} (kind delete cluster --name ${cluster})` : '', ctx.made.network || ctx.made.attached ? `network "${kindNetworkName()}"` : ''].filter(Boolean);
  await runSteps(KIND_CREATE_STEPS, ctx, reporter, { command: 'kind', retain: opts.retain, retainedHint: '`etcd-lab kind --delete` removes the cluster', leftovers });
  try {
    await runSteps(KIND_READY_STEPS, ctx, reporter, { command: 'kind' });
  } catch (error) {
    if (error instanceof UserError && !(error instanceof Interrupted)) {
      throw new UserError(`${error.message} (KIND cluster ${cluster} exists)`, {
        problems: error.problems,
        hint: `${error.hint ? `${error.hint}; ` : ''}\`etcd-lab kind --delete\` removes the cluster`,
        exitCode: error.exitCode,
        cause: error.cause,
      });
    }
    throw error;
  }
  return {
    cluster,
    context: contextOf(cluster),
    endpoint: ctx.endpoint!,
    endpointMode: ctx.mode!,
    etcdPrefix: kindEtcdPrefix(runtime.lab.spec),
    kubeadmApi: ctx.kubeadmApi!,
    config: kindConfigPath(ctx),
    clientEndpoint: runtime.clientEndpoint,
  };
}

async function checkTools(ctx: KindContext, step: StepHandle): Promise<void> {
  const [kind, kubectl] = await Promise.all([kindCli.version(), kindCli.kubectlVersion()]);
  step.update(`${kind}; ${kubectl}`);
  ctx.kindVersion = parseKindVersion(kind);
}

async function checkLabServes(ctx: KindContext, step: StepHandle): Promise<void> {
  await checkLabServing(ctx, step);
  ctx.kubeadmApi = kubeadmApiFor(ctx.kindVersion!, ctx.runtime.lab.spec.kind.nodeImage);
}

/** Quorum and HAProxy, etcd new enough for kubeadm; then where a KIND node finds etcd (mode, endpoint). */
export async function checkLabServing(ctx: EndpointContext, step: StepHandle): Promise<void> {
  const { runtime, reporter } = ctx;
  const { spec } = runtime.lab;
  // Right after a failure an election may still run: wait for it before judging the lab.
  await runtime.awaitLeader(Date.now() + runtime.electionWaitMs, step).catch(() => undefined);
  const status = await collectStatus(runtime);
  if (!status.quorum.held || status.haproxy.state !== 'running') {
    throw new UserError(`lab "${spec.name}" is not serving: ${status.summary}, HAProxy ${status.haproxy.state}`, {
      hint: 'start it with `etcd-lab up` (and `etcd-lab start`/`heal` for members you took down)',
      exitCode: ExitCode.refused,
    });
  }
  const versions = [...new Set(status.members.map((m) => m.version).filter((v): v is string => Boolean(v)))];
  for (const v of versions) {
    if (olderThan(v.split('.').map(Number), KUBEADM_MIN_ETCD)) {
      reporter.warn(
        `the lab runs etcd ${v}, older than ${KUBEADM_MIN_ETCD.join('.')}, kubeadm's minimum for external etcd: ` +
          "kind skips kubeadm's preflight, where that is checked, so the cluster can still start; plain `kubeadm init` would refuse it",
      );
    }
  }
  // The spec's image may not be on this machine at all (up falls back to local images when it cannot pull).
  ctx.memberImage = (await runtime.memberContainers()).find((c) => c.state === 'running')!.image;
  ctx.info = await runtime.engineInfo();
  ctx.mode = resolveEndpointMode(spec.kind.endpoint, ctx.info.dockerDesktop);
  ctx.endpoint = kindEtcdEndpoint(spec, ctx.mode, runtime.lab.local.clientPort);
}

async function checkNoClash({ runtime, cluster }: KindContext): Promise<void> {
  if ((await kindCli.clusters()).includes(cluster)) {
    throw new UserError(`a KIND cluster named "${cluster}" already exists`, {
      hint: `use it (kubectl --context kind-${cluster}), or delete it first: etcd-lab kind --delete`,
      exitCode: ExitCode.refused,
    });
  }
  const prefix = kindEtcdPrefix(runtime.lab.spec);
  const left = await runtime.ask(`count ${prefix}/`, (endpoint) => countPrefix(endpoint, `${prefix}/`), { idempotent: true });
  if (left > 0) {
    throw new UserError(`the lab's etcd still holds ${left} objects under ${prefix}/ from an earlier cluster named "${cluster}"`, {
      hint: 'a new cluster would start with them (kind delete leaves them behind): remove them with `etcd-lab kind --delete --purge`, or set kind.name to another name',
      exitCode: ExitCode.refused,
    });
  }
}

/** Network mode: the kind network (made if missing, labelled for this lab) with HAProxy on it. */
async function prepareEndpoint(ctx: EndpointContext, step: StepHandle): Promise<void> {
  const { runtime, made } = ctx;
  const name = kindNetworkName();
  let kindNetwork = await runtime.networkNamed(name);
  if (ctx.mode !== 'network') return;
  if (!kindNetwork) {
    step.update(`creating docker network "${name}" for kind to reuse`);
    // The options kind itself would use (IPv4 here; kind reuses the network as it finds it).
    // Not the lab label: \`etcd-lab down\` must not take the network from under a KIND cluster.
    const id = await runtime.createNetwork(name, { [LABEL.createdFor]: runtime.lab.spec.name }, { 'com.docker.network.bridge.enable_ip_masquerade': 'true' });
    made.network = id;
    kindNetwork = { id, name, labels: {}, subnets: [] };
  }
  const haproxy = await runtime.haproxyContainer();
  if (!haproxy) throw new UserError(`lab "${runtime.lab.spec.name}" has no HAProxy container`, { hint: 'run `etcd-lab up`' });
  if (!haproxy.networks.includes(name)) {
    step.update(`attaching ${haproxy.name} to "${name}"`);
    await runtime.attach(kindNetwork.id, haproxy);
    made.attached = { network: kindNetwork.id, container: haproxy.id };
  }
}

/** A stand-in node: etcdctl from the members' image, on the network the KIND nodes will join. */
async function probeFromKindNetwork(ctx: EndpointContext, step: StepHandle): Promise<void> {
  const { runtime, endpoint, mode } = ctx;
  const { spec } = runtime.lab;
  const name = kindNetworkName();
  const network = (await runtime.networkNamed(name)) ? name : 'bridge';
  step.update(`stand-in node on "${network}": etcdctl endpoint health`);
  // TLS mode: the stand-in gets exactly the node's mounts and presents the API server's certificate.
  const files = spec.tls.enabled ? kindEtcdFiles(runtime.pkiDir) : undefined;
  const probe = await runtime.runTool({
    image: ctx.memberImage!,
    command: [
      'etcdctl',
      `--endpoints=${endpoint}`,
      ...(files ? [`--cacert=${files.caFile}`, `--cert=${files.certFile}`, `--key=${files.keyFile}`] : []),
      '--dial-timeout=3s',
      '--command-timeout=3s',
      'endpoint',
      'health',
    ],
    binds: files?.mounts.map((m) => `${m.hostPath}:${m.containerPath}:ro`),
    network,
    labels: { [LABEL.lab]: spec.name, [LABEL.role]: 'probe' satisfies Role },
    timeoutMs: 15_000,
  });
  if (probe.exitCode !== 0) {
    throw new UserError(`a container on the "${network}" network cannot reach etcd at ${endpoint}: ${probe.output.split('\n').at(-1)}`, {
      hint:
        mode === 'host'
          ? 'host.docker.internal resolves inside containers on Docker Desktop only; on a Linux engine set kind.endpoint: network (or auto)'
          : `is ${runtime.topology.haproxy.container} on the "${name}" network? \`docker network inspect ${name}\``,
      exitCode: ExitCode.refused,
    });
  }
}

async function createCluster(ctx: KindContext, step: StepHandle): Promise<void> {
  const { cluster, opts, made } = ctx;
  const config = kindConfigPath(ctx);
  try {
    made.cluster = true;
    await kindCli.create(cluster, config, (line) => step.update(line.slice(0, 100)), { retain: opts.retain });
  } catch (error) {
    if (error instanceof Interrupted) throw error;
    // kind removes what it made when it fails, unless --retain; then its nodes stay to inspect.
    made.cluster = Boolean(opts.retain);
    const text = `${(error as { stderr?: string }).stderr ?? ''}\n${(error as Error).message}`;
    const image = /failed to pull image "([^"]+)"/.exec(text)?.[1];
    if (image) {
      throw new UserError(`kind could not get its node image ${image}: this machine cannot pull it`, {
        hint:
          `everything before it is verified: kind accepted ${config}, and etcd answered at ${ctx.endpoint} from the "${kindNetworkName()}" network. ` +
          `Load the image from a machine that can pull it (docker save ${image.split('@')[0]} | docker load), or set kind.nodeImage to one you have, then run \`etcd-lab kind\` again`,
        exitCode: ExitCode.kindFailed,
        cause: error,
      });
    }
    const reason = /ERROR: (.*)/.exec(text)?.[1] ?? text.trim().split('\n').at(-1);
    const kept = opts.retain
      ? `; --retain kept the nodes: \`docker exec ${cluster}-control-plane journalctl -u kubelet\`, \`kind export logs --name ${cluster}\`, then \`etcd-lab kind --delete\``
      : '; `--retain` keeps kind\'s nodes to inspect';
    throw new UserError(`kind create cluster failed: ${reason}`, { hint: `the config is ${config}; kind's own output is above${kept}`, exitCode: ExitCode.kindFailed, cause: error });
  }
}

async function waitApiServerReady({ cluster, opts }: KindContext, step: StepHandle): Promise<void> {
  const context = contextOf(cluster);
  await waitUntil(
    'the API server to report ready',
    Date.now() + (opts.timeoutMs ?? 120_000),
    async () => {
      try {
        const out = (await kindCli.kubectl(context, ['get', '--raw', '/readyz'])).trim();
        return { done: out === 'ok', detail: out.slice(0, 80) };
      } catch (error) {
        return { done: false, detail: (error as Error).message.split('\n').at(-1) ?? '' };
      }
    },
    step,
    { intervalMs: 1000, hint: `kubectl --context ${context} get --raw '/readyz?verbose'` },
  ).catch((error: unknown) => {
    if (error instanceof Interrupted) {
      throw new Interrupted(`stopped waiting for the API server; KIND cluster ${cluster} exists`, '`etcd-lab kind --delete` removes it');
    }
    throw error;
  });
}

async function checkNoStackedEtcd(ctx: KindContext): Promise<void> {
  const context = contextOf(ctx.cluster);
  const pods = (await kindCli.kubectl(context, ['get', 'pods', '--namespace', 'kube-system', '--output', 'name'])).split('\n').filter(Boolean);
  const stacked = pods.filter((p) => /^pod\/etcd-/.test(p));
  if (stacked.length > 0) {
    throw new UserError(`kube-system runs a stacked etcd (${stacked.join(', ')}): the external etcd patch did not apply`, {
      hint: `check ${kindConfigPath(ctx)} and \`kubectl --context ${context} -n kube-system get cm kubeadm-config -o yaml\``,
      exitCode: ExitCode.kindFailed,
    });
  }
}

export interface KindDeleteOptions extends LoadOptions {
  purge?: boolean;
  yes?: boolean;
  confirm?: (question: string) => Promise<boolean>;
}

export async function deleteKindCluster(opts: KindDeleteOptions, reporter: Reporter): Promise<{ cluster: string; deletedKeys: number }> {
  return withLab(opts, { lock: 'kind --delete' }, reporter, (runtime) => deleteFromLab(runtime, opts, reporter));
}

async function deleteFromLab(runtime: LabRuntime, opts: KindDeleteOptions, reporter: Reporter): Promise<{ cluster: string; deletedKeys: number }> {
  const { lab } = runtime;
  const cluster = lab.spec.kind.name;
  const prefix = kindEtcdPrefix(lab.spec);
  await reporter.step(`kind delete cluster --name ${cluster}`, (step) => kindCli.delete(cluster, (line) => step.update(line)));
  let deletedKeys = 0;
  if (opts.purge) {
    const count = await runtime.ask(`count ${prefix}/`, (endpoint) => countPrefix(endpoint, `${prefix}/`), { idempotent: true });
    if (count > 0 && !opts.yes) {
      if (!opts.confirm) throw new UserError(`refusing to delete ${count} objects under ${prefix}/ without confirmation`, { hint: 'add --yes' });
      if (!(await opts.confirm(`Delete ${count} objects of cluster "${cluster}" under ${prefix}/ in the lab's etcd?`))) {
        throw new UserError('the cluster is deleted; its objects in etcd were kept');
      }
    }
    deletedKeys = await reporter.step(`delete ${count} objects under ${prefix}/`, (step) =>
      // Deleting what is gone already deletes nothing: safe to ask again.
      runtime.ask(`delete ${prefix}/`, (endpoint) => deletePrefix(endpoint, `${prefix}/`), { idempotent: true, step }),
    );
  }
  return { cluster, deletedKeys };
}
