// spec → kind-config.yaml: one control-plane node whose kubeadm uses the lab as external etcd.
import { basename, join } from 'node:path';
import { stringify } from 'yaml';
import { HAPROXY_CLIENT_PORT, labTopology } from '../config/topology.js';
import type { KindEndpointMode, LabSpec } from '../config/types.js';
import { generatedHeader } from './header.js';
import { APISERVER_DIR, CLIENTS } from './pki.js';

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
  const scheme = spec.tls.enabled ? 'https' : 'http';
  return mode === 'host'
    ? `${scheme}://host.docker.internal:${clientPort}`
    : `${scheme}://${labTopology(spec).haproxy.container}:${HAPROXY_CLIENT_PORT}`;
}

/** Where the control-plane node finds the lab's CA and the API server's etcd client certificate (TLS mode). */
export const KIND_NODE_PKI_DIR = '/etc/etcd-lab/pki';

/**
 * TLS mode: the three files kubeadm's external etcd names, in a directory mounted read-only into the
 * node from generated/pki/kube-apiserver/ (`hostPkiDir` is generated/pki, absolute). kubeadm mounts
 * that directory into the API server's static pod by itself.
 */
export function kindEtcdFiles(hostPkiDir: string): { caFile: string; certFile: string; keyFile: string; mounts: { hostPath: string; containerPath: string; readOnly: true }[] } {
  const pair = basename(CLIENTS.apiserver);
  return {
    caFile: `${KIND_NODE_PKI_DIR}/ca.crt`,
    certFile: `${KIND_NODE_PKI_DIR}/${pair}.crt`,
    keyFile: `${KIND_NODE_PKI_DIR}/${pair}.key`,
    // The node's own directory, mounted whole, so a re-issued certificate reaches it.
    mounts: [{ hostPath: join(hostPkiDir, APISERVER_DIR), containerPath: KIND_NODE_PKI_DIR, readOnly: true }],
  };
}

/**
 * Where this KIND cluster's API server keeps its objects in the lab's etcd. One prefix per cluster,
 * so several clusters on one lab never see each other's objects (and `kind delete` leaves them
 * behind: `etcd-lab kind --delete --purge` removes them).
 */
export function kindEtcdPrefix(spec: LabSpec): string {
  return `/kind/${spec.kind.name}/registry`;
}

/**
 * How kube-apiserver reaches the lab's etcd, as kubeadm's external etcd gives it: the endpoint, the
 * prefix and (TLS mode) the three files with the mount that brings them. The KIND config and
 * `etcd-lab apiserver` are both rendered from this, so the two cannot drift apart.
 */
export interface KubeApiServerEtcd {
  endpoint: string;
  prefix: string;
  tls?: ReturnType<typeof kindEtcdFiles>;
}

export function kubeApiServerEtcd(spec: LabSpec, { mode, clientPort, hostPkiDir }: { mode: ResolvedEndpointMode; clientPort: number; hostPkiDir: string }): KubeApiServerEtcd {
  return { endpoint: kindEtcdEndpoint(spec, mode, clientPort), prefix: kindEtcdPrefix(spec), ...(spec.tls.enabled ? { tls: kindEtcdFiles(hostPkiDir) } : {}) };
}

export type KubeadmApi = 'v1beta3' | 'v1beta4';

export interface KindRenderOptions {
  mode: ResolvedEndpointMode;
  /** The host's client port (host mode). */
  clientPort: number;
  kubeadmApi?: KubeadmApi;
  /** Absolute path of generated/pki/ on the host (TLS mode). */
  hostPkiDir: string;
}

export function renderKindConfig(spec: LabSpec, { mode, clientPort, kubeadmApi = 'v1beta3', hostPkiDir }: KindRenderOptions): string {
  const { endpoint, prefix, tls } = kubeApiServerEtcd(spec, { mode, clientPort, hostPkiDir });
  const node = (role: string, mounts: object = {}) => ({ role, ...(spec.kind.nodeImage ? { image: spec.kind.nodeImage } : {}), ...mounts });
  // No apiVersion in the patch: kind matches patches on kind and, only when the patch names one,
  // apiVersion (kind's pkg/internal/patch/resource.go, matches), so it applies to whichever kubeadm
  // API kind writes, as a JSON merge patch. Only apiServer.extraArgs differ: a map in v1beta3, a list
  // of {name, value} in v1beta4 (kind 0.32+ with Kubernetes 1.36+). kind 0.32+ also converts a map
  // from an unversioned patch for v1beta4; the list form makes the file read as kubeadm gets it.
  const extraArgs = kubeadmApi === 'v1beta3' ? { 'etcd-prefix': prefix } : [{ name: 'etcd-prefix', value: prefix }];
  const external = tls ? { endpoints: [endpoint], caFile: tls.caFile, certFile: tls.certFile, keyFile: tls.keyFile } : { endpoints: [endpoint] };
  const patch = stringify({ kind: 'ClusterConfiguration', etcd: { external }, apiServer: { extraArgs } });
  const config = {
    kind: 'Cluster',
    apiVersion: 'kind.x-k8s.io/v1alpha4',
    name: spec.kind.name,
    // One control plane: kind's multi-control-plane path copies stacked-etcd CA files that external etcd lacks.
    nodes: [node('control-plane', tls ? { extraMounts: tls.mounts } : {}), ...Array.from({ length: spec.kind.workers }, () => node('worker'))],
    kubeadmConfigPatches: [patch],
  };
  const note = `# etcd endpoint (${mode} mode): ${endpoint}; objects under ${prefix}; kubeadm ${kubeadmApi} form`;
  return `${generatedHeader('#')}\n${note}\n${stringify(config, { lineWidth: 0 })}`;
}
