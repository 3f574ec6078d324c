// spec → kind-config.yaml: one control-plane node whose kubeadm uses the lab as external etcd.
import { stringify } from 'yaml';
import { HAPROXY_CLIENT_PORT, labTopology } from '../config/topology.js';
import type { KindEndpointMode, LabSpec } from '../config/types.js';
import { generatedHeader } from './header.js';

export type ResolvedEndpointMode = Exclude<KindEndpointMode, 'auto'>;

/**
 * `auto`: Docker Desktop (macOS, Windows) resolves host.docker.internal inside KIND nodes; a plain
 * Linux engine does not, so there the nodes reach HAProxy by name on the shared `kind` network.
 */
export function resolveEndpointMode(mode: KindEndpointMode, dockerDesktop: boolean): ResolvedEndpointMode {
  if (mode !== 'auto') return mode;
  return dockerDesktop ? 'host' : 'network';
}

/** The etcd endpoint as a KIND node must write it. `clientPort` is the host port (host mode only). */
export function kindEtcdEndpoint(spec: LabSpec, mode: ResolvedEndpointMode, clientPort: number): string {
  return mode === 'host'
    ? `http://host.docker.internal:${clientPort}`
    : `http://${labTopology(spec).haproxy.container}:${HAPROXY_CLIENT_PORT}`;
}

/**
 * Where this KIND cluster's API server keeps its objects in the lab's etcd. One prefix per cluster,
 * so several clusters on one lab never see each other's objects (and `kind delete` leaves them
 * behind: `etcd-lab kind --delete --purge` removes them).
 */
export function kindEtcdPrefix(spec: LabSpec): string {
  return `/kind/${spec.kind.name}/registry`;
}

export type KubeadmApi = 'v1beta3' | 'v1beta4';

export function renderKindConfig(spec: LabSpec, mode: ResolvedEndpointMode, clientPort: number, kubeadmApi: KubeadmApi = 'v1beta3'): string {
  const endpoint = kindEtcdEndpoint(spec, mode, clientPort);
  const node = (role: string) => (spec.kind.nodeImage ? { role, image: spec.kind.nodeImage } : { role });
  const prefix = kindEtcdPrefix(spec);
  // No apiVersion in the patch: kind merges it into whichever kubeadm API version it uses. Only
  // apiServer.extraArgs differ: a map in v1beta3 (kind ≤ 0.31), a list of {name, value} in v1beta4.
  const extraArgs = kubeadmApi === 'v1beta3' ? { 'etcd-prefix': prefix } : [{ name: 'etcd-prefix', value: prefix }];
  const patch = stringify({ kind: 'ClusterConfiguration', etcd: { external: { endpoints: [endpoint] } }, apiServer: { extraArgs } });
  const config = {
    kind: 'Cluster',
    apiVersion: 'kind.x-k8s.io/v1alpha4',
    name: spec.kind.name,
    // One control plane: kind's multi-control-plane path copies stacked-etcd CA files that external etcd lacks.
    nodes: [node('control-plane'), ...Array.from({ length: spec.kind.workers }, () => node('worker'))],
    kubeadmConfigPatches: [patch],
  };
  const note = `# etcd endpoint (${mode} mode): ${endpoint}; objects under ${prefix}; kubeadm ${kubeadmApi} form`;
  return `${generatedHeader('#')}\n${note}\n${stringify(config, { lineWidth: 0 })}`;
}
