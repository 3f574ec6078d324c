// spec → how `etcd-lab apiserver` runs Kubernetes' generic API server on the lab: its flags, its own
// certificates and its kubeconfigs. Pure. Its etcd wiring is kubeApiServerEtcd, the very function the
// KIND config's kubeadm patch is rendered from: the same endpoint, prefix, TLS files and mount paths.
import { parse, stringify } from 'yaml';
import type { LabSpec } from '../config/types.js';
import type { KubeApiServerEtcd } from './kind.js';
import type { CertRequest } from './pki.js';

/** The port it serves on inside its container (kube-apiserver's usual secure port). */
export const APISERVER_PORT = 6443;

/**
 * generated/apiserver/: the API server's own PKI (its CA, serving certificate and an admin client
 * in group system:masters; not the lab's etcd PKI) and two kubeconfigs: `kubeconfig` for the host
 * (what `etcd-lab env` points KUBECONFIG at) and `loopback.kubeconfig`, the server's own.
 */
export const APISERVER_DIR = 'apiserver';
/** Where the container finds generated/apiserver/ (read-only). */
export const APISERVER_MOUNT = '/etc/etcd-lab/apiserver';

export const APISERVER_FILES = {
  kubeconfig: 'kubeconfig',
  loopback: 'loopback.kubeconfig',
  /** Paths in APISERVER_DIR without extension: <name>.crt and <name>.key. */
  ca: 'pki/ca',
  serving: 'pki/serving',
  admin: 'pki/admin',
} as const;

export function apiServerContainer(spec: LabSpec): string {
  return `${spec.name}-apiserver`;
}

/** The context (and cluster and user) name in its kubeconfig. */
export function apiServerContext(spec: LabSpec): string {
  return `etcd-lab-${spec.name}`;
}

/** Its own certificates (issued into generated/apiserver/pki/ by the lab's issuer, with a CA of their own). */
export function apiServerCertRequests(spec: LabSpec): CertRequest[] {
  const name = (path: string) => path.replace(/^pki\//, '');
  return [
    { name: name(APISERVER_FILES.serving), commonName: 'etcd-lab-apiserver', dns: ['localhost', apiServerContainer(spec)], ips: ['127.0.0.1'], server: true, client: false },
    // system:masters: the server lets this group do anything without asking an authorizer (it has no RBAC).
    { name: name(APISERVER_FILES.admin), commonName: 'etcd-lab-admin', organization: 'system:masters', dns: [], ips: [], server: false, client: true },
  ];
}

const inMount = (file: string) => `${APISERVER_MOUNT}/${file}`;

/**
 * apiextensions-apiserver's command line. The etcd flags are kube-apiserver's, filled from what
 * kubeadm's external etcd holds; the rest make the generic server run alone: it authenticates
 * client certificates itself, lets system:masters do everything, and skips what needs core resources
 * (the kube-system authentication config map, namespaces, admission webhooks, priority and fairness).
 */
export function apiServerArgs(etcd: KubeApiServerEtcd): string[] {
  const loopback = inMount(APISERVER_FILES.loopback);
  return [
    `--etcd-servers=${etcd.endpoint}`,
    `--etcd-prefix=${etcd.prefix}`,
    ...(etcd.tls ? [`--etcd-cafile=${etcd.tls.caFile}`, `--etcd-certfile=${etcd.tls.certFile}`, `--etcd-keyfile=${etcd.tls.keyFile}`] : []),
    `--secure-port=${APISERVER_PORT}`,
    `--tls-cert-file=${inMount(`${APISERVER_FILES.serving}.crt`)}`,
    `--tls-private-key-file=${inMount(`${APISERVER_FILES.serving}.key`)}`,
    `--client-ca-file=${inMount(`${APISERVER_FILES.ca}.crt`)}`,
    `--kubeconfig=${loopback}`,
    `--authentication-kubeconfig=${loopback}`,
    `--authorization-kubeconfig=${loopback}`,
    '--authentication-skip-lookup',
    '--enable-priority-and-fairness=false',
    '--disable-admission-plugins=NamespaceLifecycle,MutatingAdmissionPolicy,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook',
  ];
}

/**
 * gRPC's own warnings in the API server's log: a connection to etcd that failed, and why ("error
 * reading server preface"). Without them its log says only that requests found no ready connection.
 */
export const APISERVER_ENV = ['GRPC_GO_LOG_SEVERITY_LEVEL=warning', 'GRPC_GO_LOG_VERBOSITY_LEVEL=2'];

/** Bind mounts: the KIND node's etcd files (TLS mode), at the node's paths, and generated/apiserver/. */
export function apiServerBinds(etcd: KubeApiServerEtcd, hostApiServerDir: string): string[] {
  return [...(etcd.tls?.mounts ?? []).map((m) => `${m.hostPath}:${m.containerPath}:ro`), `${hostApiServerDir}:${APISERVER_MOUNT}:ro`];
}

export interface KubeconfigFiles {
  /** PEM contents, embedded: the host's kubeconfig works from anywhere it is copied. */
  pem?: { ca: string; cert: string; key: string };
  /** Or paths, as the server's own loopback kubeconfig names its mounted files. */
  paths?: { ca: string; cert: string; key: string };
}

export function renderKubeconfig(spec: LabSpec, server: string, files: KubeconfigFiles): string {
  const name = apiServerContext(spec);
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const cluster = files.pem ? { server, 'certificate-authority-data': b64(files.pem.ca) } : { server, 'certificate-authority': files.paths!.ca };
  const user = files.pem
    ? { 'client-certificate-data': b64(files.pem.cert), 'client-key-data': b64(files.pem.key) }
    : { 'client-certificate': files.paths!.cert, 'client-key': files.paths!.key };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster }],
    users: [{ name, user }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
    preferences: {},
  });
}

/** The server's own kubeconfig: itself on the loopback address, with the admin's mounted files. */
export function renderLoopbackKubeconfig(spec: LabSpec): string {
  return renderKubeconfig(spec, `https://127.0.0.1:${APISERVER_PORT}`, {
    paths: { ca: inMount(`${APISERVER_FILES.ca}.crt`), cert: inMount(`${APISERVER_FILES.admin}.crt`), key: inMount(`${APISERVER_FILES.admin}.key`) },
  });
}

interface NamedEntry {
  name: string;
}
interface KubeconfigDoc {
  clusters?: NamedEntry[];
  users?: NamedEntry[];
  contexts?: NamedEntry[];
  'current-context'?: string;
  [key: string]: unknown;
}
const SECTIONS = ['clusters', 'users', 'contexts'] as const;

function parseKubeconfig(text: string | undefined, where: string): KubeconfigDoc {
  if (!text?.trim()) return { apiVersion: 'v1', kind: 'Config', preferences: {} };
  const doc = parse(text) as unknown;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error(`${where} is not a kubeconfig (not a YAML mapping)`);
  for (const section of SECTIONS) {
    const list = (doc as KubeconfigDoc)[section];
    if (list !== undefined && list !== null && !Array.isArray(list)) throw new Error(`${where}: "${section}" is not a list`);
  }
  return doc as KubeconfigDoc;
}

/**
 * A person's kubeconfig with the lab's cluster, user and context merged in (replacing entries of the
 * same name) and made current, as `kind export kubeconfig` does; everything else in it is kept.
 */
export function mergeKubeconfig(existing: string | undefined, ours: string, where: string): string {
  const doc = parseKubeconfig(existing, where);
  const add = parseKubeconfig(ours, 'our kubeconfig');
  for (const section of SECTIONS) {
    const names = new Set((add[section] ?? []).map((e) => e.name));
    doc[section] = [...(doc[section] ?? []).filter((e) => !names.has(e.name)), ...(add[section] ?? [])];
  }
  doc['current-context'] = add['current-context'];
  return stringify(doc);
}

/** The same kubeconfig without the lab's entries (`--delete`); undefined when it had none of them. */
export function unmergeKubeconfig(existing: string, name: string, where: string): string | undefined {
  const doc = parseKubeconfig(existing, where);
  if (!SECTIONS.some((s) => (doc[s] ?? []).some((e) => e.name === name))) return undefined;
  for (const section of SECTIONS) doc[section] = (doc[section] ?? []).filter((e) => e.name !== name);
  if (doc['current-context'] === name) doc['current-context'] = '';
  return stringify(doc);
}
