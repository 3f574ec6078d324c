// The kind and kubectl binaries, run as child processes (found on PATH, so tests can put
// recording fakes there). Nothing else in etcd-lab spawns them.
import { UserError } from '../errors.js';
import { run } from '../engine/child-process.js';

import type { KubeadmApi } from '../render/kind.js';
import { ExitCode } from '../exit-codes.js';

function missing(tool: string, error: unknown): UserError {
  const hints: Record<string, string> = {
    kind:
      'install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation (Debian trixie: `apt-get install kind`; on Debian as root: `etcd-lab setup-host --kind`)',
    kubectl: 'install kubectl: https://kubernetes.io/docs/tasks/tools/ (Debian trixie: `apt-get install kubernetes-client`)',
  };
  return new UserError(`${tool} is not installed (or not on PATH)`, { hint: hints[tool], cause: error, exitCode: ExitCode.refused });
}

/**
 * Deadlines: quick questions get QUICK_MS; `kind create cluster` prints a line per stage, but its
 * first pulls the node image (hundreds of MB) in silence, so it gets a long inactivity deadline.
 */
const QUICK_MS = 30_000;
const KUBECTL_MS = 15_000;
const DELETE_MS = 120_000;
const CREATE_IDLE_MS = 600_000;

async function tool(
  name: string,
  args: string[],
  opts: { onLine?: (line: string) => void; cleanup?: boolean; timeoutMs: number; idle?: boolean },
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(name, args, opts);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw missing(name, error);
    throw error;
  }
}

/**
 * The docker network kind puts its nodes on: `kind`, or what KIND_EXPERIMENTAL_DOCKER_NETWORK
 * names (kind honours it, so we do too). kind reuses an existing network of that name as it is.
 */
export function kindNetworkName(env: NodeJS.ProcessEnv = process.env): string {
  return env.KIND_EXPERIMENTAL_DOCKER_NETWORK || 'kind';
}

/** "kind v0.27.0 go1.24.4 linux/amd64" → [0, 27, 0]. */
export function parseKindVersion(text: string): [number, number, number] | undefined {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/**
 * The kubeadm API kind will write, whose apiServer.extraArgs shape our patch is printed in. kind
 * picks it from the node image's Kubernetes version (kubernetes-sigs/kind v0.32.0,
 * pkg/cluster/internal/kubeadm/config.go lines 673-679): v1beta3 for 1.23 to 1.35, v1beta4 from
 * 1.36; kind 0.31 and older have no v1beta4 template and write v1beta3. With no node image set,
 * kind's own default applies: kindest/node:v1.36.1 in kind 0.32.0 (pkg/apis/config/defaults/image.go),
 * so v1beta4 there. Either form works with kind 0.32+: for a v1beta4 target it converts a map-form
 * extraArgs from a patch without apiVersion (pkg/internal/patch/kubeadm_merge.go, mergeExtraArgs).
 */
export function kubeadmApiFor(kindVersion: [number, number, number] | undefined, nodeImage: string): KubeadmApi {
  if (!kindVersion) return 'v1beta3';
  const [major, minor] = kindVersion;
  const kindWritesV1beta4 = major > 0 || minor >= 32;
  const k8s = /:v(\d+)\.(\d+)/.exec(nodeImage);
  // No image: kind 0.32's default node image is 1.36.
  const k8sAtLeast136 = k8s === null ? nodeImage === '' : Number(k8s[1]) > 1 || Number(k8s[2]) >= 36;
  return kindWritesV1beta4 && k8sAtLeast136 ? 'v1beta4' : 'v1beta3';
}

/**
 * `kind create cluster` arguments. `--retain` keeps kind's node containers when creation fails
 * (without it kind deletes them, so a failed `kubeadm init` leaves nothing to inspect).
 */
export function kindCreateArgs(name: string, config: string, opts: { retain?: boolean } = {}): string[] {
  return ['create', 'cluster', '--name', name, '--config', config, ...(opts.retain ? ['--retain'] : [])];
}

export const kindCli = {
  async version(): Promise<string> {
    return (await tool('kind', ['version'], { timeoutMs: QUICK_MS })).stdout.trim();
  },
  async kubectlVersion(): Promise<string> {
    return (await tool('kubectl', ['version', '--client'], { timeoutMs: QUICK_MS })).stdout.trim().split('\n')[0] ?? '';
  },
  async clusters(): Promise<string[]> {
    const { stdout } = await tool('kind', ['get', 'clusters'], { timeoutMs: QUICK_MS });
    // "No kind clusters found." goes to stderr; stdout lists one name per line.
    return stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  },
  async create(name: string, config: string, onLine: (line: string) => void, opts: { retain?: boolean } = {}): Promise<void> {
    await tool('kind', kindCreateArgs(name, config, opts), { onLine, timeoutMs: CREATE_IDLE_MS, idle: true });
  },
  async delete(name: string, onLine?: (line: string) => void, opts: { cleanup?: boolean } = {}): Promise<void> {
    await tool('kind', ['delete', 'cluster', '--name', name], { onLine, cleanup: opts.cleanup, timeoutMs: DELETE_MS });
  },
  async kubectl(context: string, args: string[]): Promise<string> {
    return (await tool('kubectl', ['--context', context, ...args], { timeoutMs: KUBECTL_MS })).stdout;
  },
};
