// spec → the certificates a TLS lab needs, each with the names it must carry. Pure: issuing and
// keeping them is runtime/pki.ts's. Like kubeadm's etcd PKI: one CA, per member a server and a peer
// certificate, and client certificates for the admin, the KIND API server and the healthcheck.
import type { LocalSettings } from '../config/local.js';
import { labTopology } from '../config/topology.js';
import type { LabSpec } from '../config/types.js';

/** generated/pki/: certificates 0644, keys 0600, gitignored with the rest of generated/. */
export const PKI_DIR = 'pki';

export interface CertRequest {
  /** File stem in generated/pki/: <name>.crt and <name>.key. */
  name: string;
  commonName: string;
  organization?: string;
  dns: string[];
  ips: string[];
  server: boolean;
  client: boolean;
}

/** The client certificates etcd-lab issues, by what uses them. */
export const CLIENTS = {
  /** etcdctl and etcd-lab itself (status, waits, check): `etcd-lab env` points at it. */
  admin: 'admin',
  /** The identity kubeadm gives kube-apiserver for etcd. */
  apiserver: 'kube-apiserver-etcd-client',
  /** The members' own compose healthcheck (etcdctl endpoint health). */
  healthcheck: 'healthcheck-client',
} as const;

const LOOPBACK = { dns: ['localhost'], ips: ['127.0.0.1'] };

export function certRequests(spec: LabSpec, local: Pick<LocalSettings, 'bindAddress'>): CertRequest[] {
  const topo = labTopology(spec);
  // HAProxy passes TLS through: whoever dials HAProxy (by any of these names) ends at some member,
  // and checks that member's certificate. So every member's server certificate carries them all.
  const viaHaproxy = {
    dns: [topo.haproxy.container, 'host.docker.internal'],
    ips: [topo.haproxy.address, ...(local.bindAddress.startsWith('127.') || local.bindAddress === '0.0.0.0' ? [] : [local.bindAddress])],
  };
  const requests: CertRequest[] = [];
  for (const m of topo.members) {
    requests.push({
      name: `${m.name}-server`,
      commonName: m.name,
      dns: [m.name, m.container, ...LOOPBACK.dns, ...viaHaproxy.dns],
      ips: [m.address, ...LOOPBACK.ips, ...viaHaproxy.ips],
      server: true,
      // etcd's own HTTP gateway dials the member's gRPC port with this certificate: with
      // --client-cert-auth it must be good for client auth too, or /v3/* answers "bad certificate".
      client: true,
    });
    // Peers dial each other by address; each side checks the other's certificate.
    requests.push({ name: `${m.name}-peer`, commonName: m.name, dns: [m.name, m.container], ips: [m.address], server: true, client: true });
  }
  requests.push({ name: CLIENTS.admin, commonName: 'etcd-lab-admin', dns: [], ips: [], server: false, client: true });
  requests.push({ name: CLIENTS.apiserver, commonName: 'kube-apiserver-etcd-client', organization: 'system:masters', dns: [], ips: [], server: false, client: true });
  requests.push({ name: CLIENTS.healthcheck, commonName: 'kube-etcd-healthcheck-client', dns: [], ips: [], server: false, client: true });
  return requests;
}
