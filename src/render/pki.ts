// spec → the certificates a TLS lab needs, each with the names it must carry. Pure: issuing and
// keeping them is runtime/pki.ts's. Like kubeadm's etcd PKI: one CA, per member a server and a peer
// certificate, and client certificates for the admin, the KIND API server and the healthcheck.
import { dirname, join } from 'node:path';
import type { LocalSettings } from '../config/local.js';
import { labTopology } from '../config/topology.js';
import type { LabSpec } from '../config/types.js';

/**
 * generated/pki/: certificates 0644, keys 0600, gitignored with the rest of generated/. Whatever runs
 * in a container gets a directory of its own, mounted whole: a file re-issued by rename shows in a
 * mounted directory, while a single mounted file would stay the old one.
 *   ca.crt ca.key admin.crt admin.key     the CA; etcdctl's and etcd-lab's client pair
 *   etcdN/                                a member: ca.crt, server.*, peer.*, healthcheck-client.*
 *   kube-apiserver/                       the KIND node: ca.crt, kube-apiserver-etcd-client.*
 *   haproxy/                              HAProxy's health checks: ca.crt, haproxy-check-client.*
 */
export const PKI_DIR = 'pki';

/** generated/pki/ of a lab, absolute. */
export function pkiDirOf(outDir: string): string {
  return join(outDir, PKI_DIR);
}

export interface CertRequest {
  /** Path in generated/pki/ without extension: <name>.crt and <name>.key ("etcd1/server"). */
  name: string;
  commonName: string;
  organization?: string;
  dns: string[];
  ips: string[];
  server: boolean;
  client: boolean;
}

/** Files a member finds in its own directory, mounted at /etc/etcd/pki. */
export const MEMBER_FILES = {
  ca: 'ca.crt',
  serverCert: 'server.crt',
  serverKey: 'server.key',
  peerCert: 'peer.crt',
  peerKey: 'peer.key',
  healthcheckCert: 'healthcheck-client.crt',
  healthcheckKey: 'healthcheck-client.key',
} as const;

/** The client pairs etcd-lab issues, by what uses them. */
export const CLIENTS = {
  /** etcdctl and etcd-lab itself (status, waits, check): `etcd-lab env` points at it. */
  admin: 'admin',
  /** The identity kubeadm gives kube-apiserver for etcd, in the KIND node's own directory. */
  apiserver: 'kube-apiserver/kube-apiserver-etcd-client',
  /** HAProxy's health checks ask each member's status on its TLS client port (traffic itself passes through). */
  haproxyCheck: 'haproxy/haproxy-check-client',
} as const;

/** The directory HAProxy mounts (TLS mode), and where it finds it. */
export const HAPROXY_PKI_DIR = dirname(CLIENTS.haproxyCheck);
export const HAPROXY_PKI_MOUNT = '/etc/etcd-lab/pki';

/** The directory the KIND control-plane node mounts. */
export const APISERVER_DIR = 'kube-apiserver';

const LOOPBACK = { dns: ['localhost'], ips: ['127.0.0.1'] };

export function certRequests(spec: LabSpec, local: Pick<LocalSettings, 'bindAddress'>): CertRequest[] {
  const topo = labTopology(spec);
  // HAProxy passes TLS through: whoever dials HAProxy (by any of these names) ends at some member,
  // and checks that member's certificate. So every member's server certificate carries them all —
  // and the bind address, when clients dial something other than 127.0.0.1 (0.0.0.0 is no name).
  const bind = local.bindAddress === '127.0.0.1' || local.bindAddress === '0.0.0.0' ? [] : [local.bindAddress];
  const viaHaproxy = { dns: [topo.haproxy.container, 'host.docker.internal'], ips: [topo.haproxy.address, ...bind] };
  const requests: CertRequest[] = [];
  for (const m of topo.members) {
    requests.push({
      name: `${m.name}/server`,
      commonName: m.name,
      dns: [m.name, m.container, ...LOOPBACK.dns, ...viaHaproxy.dns],
      ips: [m.address, ...LOOPBACK.ips, ...viaHaproxy.ips],
      server: true,
      // etcd's own HTTP gateway dials the member's gRPC port with this certificate: with
      // --client-cert-auth it must be good for client auth too, or /v3/* answers "bad certificate".
      client: true,
    });
    // Peers dial each other by address; each side checks the other's certificate.
    requests.push({ name: `${m.name}/peer`, commonName: m.name, dns: [m.name, m.container], ips: [m.address], server: true, client: true });
    // The member's own compose healthcheck (etcdctl endpoint health over TLS), as kubeadm names it.
    requests.push({ name: `${m.name}/healthcheck-client`, commonName: 'kube-etcd-healthcheck-client', dns: [], ips: [], server: false, client: true });
  }
  requests.push({ name: CLIENTS.admin, commonName: 'etcd-lab-admin', dns: [], ips: [], server: false, client: true });
  requests.push({ name: CLIENTS.apiserver, commonName: 'kube-apiserver-etcd-client', organization: 'system:masters', dns: [], ips: [], server: false, client: true });
  requests.push({ name: CLIENTS.haproxyCheck, commonName: 'etcd-lab-haproxy-check', dns: [], ips: [], server: false, client: true });
  return requests;
}
