// `etcd-lab kind`: a KIND cluster whose control plane keeps everything in the lab's external etcd.
// Steps: tools → lab healthy → no clash → endpoint mode (+ kind network on Linux) → reachability
// proven from the KIND nodes' network → kind-config.yaml → kind create → API server ready → no
// stacked etcd pod. A failure removes what this run added to the lab's surroundings.
import { join } from 'node:path';
import { UserError } from '../errors.js';
import type { Reporter } from '../progress.js';
import { KIND_FILE } from '../render/index.js';
import { kindEtcdEndpoint, kindEtcdFiles, kindEtcdPrefix, renderKindConfig, resolveEndpointMode, type KubeadmApi, type ResolvedEndpointMode } from '../render/kind.js';
import type { Engine } from '../runtime/engine.js';
import { writeFileAtomic } from '../runtime/files.js';
import { countPrefix, deletePrefix } from '../runtime/etcd-http.js';
import { kindCli, kindNetworkName, kubeadmApiFor, parseKindVersion } from '../runtime/kind-cli.js';
import { LabRuntime } from '../runtime/lab.js';
import { collectStatus } from '../runtime/status.js';
import { waitUntil } from '../runtime/wait.js';
import type { LoadOptions } from '../config/load.js';
import { guarded, Interrupted } from '../interrupt.js';
import { withLab } from './session.js';
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

async function createOnLab(runtime: LabRuntime, opts: KindOptions, reporter: Reporter): Promise<KindResult> {
  const { lab, engine } = runtime;
  const { spec } = lab;
  const cluster = spec.kind.name;
  const prefix = kindEtcdPrefix(spec);

  const kindVersion = await reporter.step('kind and kubectl', async (step) => {
    const [kind, kubectl] = await Promise.all([kindCli.version(), kindCli.kubectlVersion()]);
    step.update(`${kind}; ${kubectl}`);
    return parseKindVersion(kind);
  });

  const { info, memberImage } = await reporter.step(`lab "${spec.name}" serving`, async (step) => {
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
      const parts = v.split('.').map(Number);
      if (olderThan(parts, KUBEADM_MIN_ETCD)) {
        reporter.warn(
          `the lab runs etcd ${v}, older than ${KUBEADM_MIN_ETCD.join('.')}, kubeadm's minimum for external etcd: ` +
            "kind skips kubeadm's preflight, where that is checked, so the cluster can still start; plain `kubeadm init` would refuse it",
        );
      }
    }
    // The stand-in node runs etcdctl from the image the members really run: the spec's may not be
    // on this machine at all (up falls back to local images when it cannot pull).
    const memberImage = (await runtime.memberContainers()).find((c) => c.state === 'running')!.image;
    return { info: await engine.info(), memberImage };
  });

  await reporter.step(`no clash with KIND cluster "${cluster}"`, async () => {
    if ((await kindCli.clusters()).includes(cluster)) {
      throw new UserError(`a KIND cluster named "${cluster}" already exists`, {
        hint: `use it (kubectl --context kind-${cluster}), or delete it first: etcd-lab kind --delete`,
        exitCode: ExitCode.refused,
      });
    }
    const left = await runtime.ask(`count ${prefix}/`, (endpoint) => countPrefix(endpoint, `${prefix}/`), { idempotent: true });
    if (left > 0) {
      throw new UserError(`the lab's etcd still holds ${left} objects under ${prefix}/ from an earlier cluster named "${cluster}"`, {
        hint: 'a new cluster would start with them (kind delete leaves them behind): remove them with `etcd-lab kind --delete --purge`, or set kind.name to another name',
        exitCode: ExitCode.refused,
      });
    }
  });

  const mode = resolveEndpointMode(spec.kind.endpoint, info.dockerDesktop);
  const endpoint = kindEtcdEndpoint(spec, mode, lab.local.clientPort);
  const KIND_NETWORK = kindNetworkName();
  const kubeadmApi = kubeadmApiFor(kindVersion, spec.kind.nodeImage);
  const config = join(lab.outDir, KIND_FILE);
  const madeHere: { network?: string; attached?: { network: string; container: string }; cluster?: boolean } = {};
  const undo = async (): Promise<string[]> => {
    if (opts.retain) return [];
    const undone: string[] = [];
    if (madeHere.cluster) {
      await kindCli.delete(cluster, undefined, { cleanup: true }).catch(() => {});
      undone.push(`KIND cluster ${cluster}`);
    }
    if (madeHere.attached) {
      await engine.disconnectNetwork(madeHere.attached.network, madeHere.attached.container).catch(() => {});
      undone.push(`HAProxy's attachment to "${KIND_NETWORK}"`);
    }
    if (madeHere.network) {
      await engine.removeNetwork(madeHere.network).catch(() => {});
      undone.push(`network "${KIND_NETWORK}"`);
    }
    return undone;
  };
  const leftovers = async () =>
    [madeHere.cluster ? `KIND cluster ${cluster} (kind delete cluster --name ${cluster})` : '', madeHere.network || madeHere.attached ? `network "${KIND_NETWORK}"` : ''].filter(Boolean);

  return guarded({ undoing: opts.retain ? 'stopping; --retain keeps what this run made' : 'undoing what this run made', leftovers }, async () => {
    try {
      await reporter.step(`endpoint ${endpoint} (${mode} mode${spec.kind.endpoint === 'auto' ? `, auto: ${info.dockerDesktop ? 'Docker Desktop' : 'Docker Engine'}` : ''})`, async (step) => {
        let kindNetwork = (await engine.networks()).find((n) => n.name === KIND_NETWORK);
        if (mode !== 'network') return;
        if (!kindNetwork) {
          step.update(`creating docker network "${KIND_NETWORK}" for kind to reuse`);
          // The options kind itself would use (IPv4 here; kind reuses the network as it finds it).
          const id = await engine.createNetwork(
            KIND_NETWORK,
            // Not the lab label: `etcd-lab down` must not take the network from under a KIND cluster.
            { [LABEL.createdFor]: spec.name },
            { 'com.docker.network.bridge.enable_ip_masquerade': 'true' },
          );
          madeHere.network = id;
          kindNetwork = { id, name: KIND_NETWORK, labels: {}, subnets: [] };
        }
        const haproxy = await runtime.haproxyContainer();
        if (!haproxy) throw new UserError(`lab "${spec.name}" has no HAProxy container`, { hint: 'run `etcd-lab up`' });
        if (!haproxy.networks.includes(KIND_NETWORK)) {
          step.update(`attaching ${haproxy.name} to "${KIND_NETWORK}"`);
          await engine.connectNetwork(kindNetwork.id, haproxy.id);
          madeHere.attached = { network: kindNetwork.id, container: haproxy.id };
        }
      });

      await reporter.step(`etcd answers at ${endpoint} from the "${KIND_NETWORK}" network`, async (step) => {
        const networks = await engine.networks();
        const network = networks.some((n) => n.name === KIND_NETWORK) ? KIND_NETWORK : 'bridge';
        step.update(`stand-in node on "${network}": etcdctl endpoint health`);
        // TLS mode: the stand-in gets exactly the node's mounts and presents the API server's certificate.
        const files = spec.tls.enabled ? kindEtcdFiles(runtime.pkiDir) : undefined;
        const probe = await engine.runOnce({
          image: memberImage,
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
                : `is ${runtime.topology.haproxy.container} on the "${KIND_NETWORK}" network? \`docker network inspect ${KIND_NETWORK}\``,
            exitCode: ExitCode.refused,
          });
        }
      });

      await reporter.step(`write ${config}`, () => writeFileAtomic(config, renderKindConfig(spec, { mode, clientPort: lab.local.clientPort, kubeadmApi, hostPkiDir: runtime.pkiDir })));

      await reporter.step(`kind create cluster --name ${cluster}`, async (step) => {
        try {
          madeHere.cluster = true;
          await kindCli.create(cluster, config, (line) => step.update(line.slice(0, 100)), { retain: opts.retain });
        } catch (error) {
          if (error instanceof Interrupted) throw error;
          // kind removes what it made when it fails, unless --retain; then its nodes stay to inspect.
          madeHere.cluster = Boolean(opts.retain);
          const text = `${(error as { stderr?: string }).stderr ?? ''}\n${(error as Error).message}`;
          const image = /failed to pull image "([^"]+)"/.exec(text)?.[1];
          if (image) {
            throw new UserError(`kind could not get its node image ${image}: this machine cannot pull it`, {
              hint:
                `everything before it is verified: kind accepted ${config}, and etcd answered at ${endpoint} from the "${KIND_NETWORK}" network. ` +
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
      });
    } catch (error) {
      const undone = await undo();
      if (error instanceof Interrupted) {
        throw new Interrupted(`kind interrupted${undone.length > 0 ? `; removed ${undone.join(', ')}` : ''}${opts.retain ? '; --retain kept what it made' : ''}`);
      }
      throw error;
    }

    const context = `kind-${cluster}`;
    // From here the cluster exists: a failure says so, and how to remove it.
    try {
      await reporter.step('API server ready', (step) =>
        waitUntil(
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
        }),
      );

      await reporter.step('no stacked etcd in kube-system', async () => {
        const pods = (await kindCli.kubectl(context, ['get', 'pods', '--namespace', 'kube-system', '--output', 'name'])).split('\n').filter(Boolean);
        const stacked = pods.filter((p) => /^pod\/etcd-/.test(p));
        if (stacked.length > 0) {
          throw new UserError(`kube-system runs a stacked etcd (${stacked.join(', ')}): the external etcd patch did not apply`, {
            hint: `check ${config} and \`kubectl --context ${context} -n kube-system get cm kubeadm-config -o yaml\``,
            exitCode: ExitCode.kindFailed,
          });
        }
      });

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
    return { cluster, context, endpoint, endpointMode: mode, etcdPrefix: prefix, kubeadmApi, config, clientEndpoint: runtime.clientEndpoint };
  });
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
