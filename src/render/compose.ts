// spec → docker-compose.yml. Built as a plain object, serialised with `yaml`, so the output
// is valid YAML by construction and byte-for-byte stable.
import { stringify } from 'yaml';
import { formatSize } from '../config/fields.js';
import { ENV_VARS } from '../config/local.js';
import {
  ETCD_CLIENT_PORT,
  ETCD_DATA_DIR,
  ETCD_PKI_DIR,
  HAPROXY_CLIENT_PORT,
  HAPROXY_CONFIG_DIR,
  HAPROXY_CONFIG_PATH,
  HAPROXY_STATS_PORT,
  LABEL,
  labLabels,
  labTopology,
  OWNER_VAR,
  type Role,
  type MemberTopology,
} from '../config/topology.js';
import type { LabSpec } from '../config/types.js';
import { generatedHeader } from './header.js';
import { HAPROXY_PKI_DIR, HAPROXY_PKI_MOUNT, PKI_DIR } from './pki.js';
import { HAPROXY_DIR } from './haproxy.js';
import { etcdCommand, filesIn, interpolate, memberImageVar } from './etcd-flags.js';

const IN_MEMBER = filesIn(ETCD_PKI_DIR);

/** The lab's labels plus its owner, a per-machine path that only the generated .env holds. */
function labels(spec: LabSpec, role: Role, member?: string): Record<string, string> {
  return { ...labLabels(spec, role, member), [LABEL.owner]: `\${${OWNER_VAR}:?run etcd-lab generate to create .env}` };
}

/**
 * The member's own certificate directory, read-only. A directory, not single files: a certificate
 * re-issued (by rename) while the lab runs then reaches the member, which reads its files anew for
 * each connection.
 */
function tlsMounts(member: MemberTopology): string[] {
  return [`./${PKI_DIR}/${member.name}:${ETCD_PKI_DIR}:ro`];
}

/** `etcdctl endpoint health` inside the member, over TLS with the healthcheck client certificate in TLS mode. */
function healthcheckTest(spec: LabSpec): string[] {
  const tls = spec.tls.enabled ? [`--cacert=${IN_MEMBER.ca}`, `--cert=${IN_MEMBER.healthcheckCert}`, `--key=${IN_MEMBER.healthcheckKey}`] : [];
  return ['CMD', 'etcdctl', `--endpoints=${spec.tls.enabled ? 'https' : 'http'}://127.0.0.1:${ETCD_CLIENT_PORT}`, ...tls, '--command-timeout=2s', 'endpoint', 'health'];
}

export function renderCompose(spec: LabSpec): string {
  const topo = labTopology(spec);
  const bind = interpolate(ENV_VARS.bindAddress, spec.haproxy.bindAddress);
  const services: Record<string, unknown> = {};

  for (const member of topo.members) {
    services[member.name] = {
      // A member's own image only while `etcd-lab upgrade` moves the members over one at a time.
      image: interpolate(memberImageVar(member.name), interpolate(ENV_VARS.etcdImage, spec.etcd.image)),
      container_name: member.container,
      hostname: member.name,
      // Exec form with the binary named: the official image has no shell and the local one no CMD to inherit.
      entrypoint: ['etcd'],
      command: etcdCommand(spec, member, topo.initialCluster),
      // Each member's client port on a host port Docker picks: etcd-lab finds it by label.
      ports: [`${bind}::${ETCD_CLIENT_PORT}`],
      volumes: [`${member.name}-data:${ETCD_DATA_DIR}`, ...(spec.tls.enabled ? tlsMounts(member) : [])],
      networks: { lab: { ipv4_address: member.address } },
      healthcheck: {
        test: healthcheckTest(spec),
        interval: '2s',
        timeout: '3s',
        retries: 3,
        start_period: '10s',
      },
      labels: labels(spec, 'etcd', member.name),
    };
  }

  services[topo.haproxy.service] = {
    image: interpolate(ENV_VARS.haproxyImage, spec.haproxy.image),
    container_name: topo.haproxy.container,
    hostname: 'haproxy',
    entrypoint: ['haproxy', '-W', '-db', '-f', HAPROXY_CONFIG_PATH],
    ports: [
      `${bind}:${interpolate(ENV_VARS.clientPort, spec.haproxy.clientPort)}:${HAPROXY_CLIENT_PORT}`,
      `${bind}:${interpolate(ENV_VARS.statsPort, spec.haproxy.statsPort)}:${HAPROXY_STATS_PORT}`,
    ],
    // The folder, not the file: haproxy.cfg is replaced by rename, which a bind-mounted file never
    // shows the container; in a mounted folder HAProxy sees the new file when etcd-lab reloads it
    // (SIGUSR2: its listening sockets pass to the new process, so no client is refused).
    volumes: [`./${HAPROXY_DIR}:${HAPROXY_CONFIG_DIR}:ro`, ...(spec.tls.enabled ? [`./${PKI_DIR}/${HAPROXY_PKI_DIR}:${HAPROXY_PKI_MOUNT}:ro`] : [])],
    // TLS mode: started as root to read its check key (0600, like every key in generated/pki); its
    // workers then run as the image's haproxy user (`user haproxy` in haproxy.cfg).
    ...(spec.tls.enabled ? { user: '0:0' } : {}),
    // The stats page credentials come from the generated, gitignored .env, never from a committed file.
    environment: {
      [ENV_VARS.statsUser]: `\${${ENV_VARS.statsUser}:?run etcd-lab generate to create .env}`,
      [ENV_VARS.statsPassword]: `\${${ENV_VARS.statsPassword}:?run etcd-lab generate to create .env}`,
    },
    networks: { lab: { ipv4_address: topo.haproxy.address } },
    labels: labels(spec, 'haproxy'),
  };

  const volumes: Record<string, unknown> = {};
  for (const member of topo.members) {
    volumes[`${member.name}-data`] = { name: member.volume, labels: labels(spec, 'data', member.name) };
  }

  const compose = {
    name: topo.project,
    services,
    networks: {
      lab: {
        name: topo.network,
        driver: 'bridge',
        ipam: { config: [{ subnet: spec.network.subnet, gateway: topo.gateway }] },
        labels: labels(spec, 'network'),
      },
    },
    volumes,
  };
  const summary = `# ${spec.members} etcd members (quota ${formatSize(spec.etcd.quotaBackendBytes)}) behind HAProxy on ${spec.network.subnet}.`;
  return `${generatedHeader('#')}\n${summary}\n${stringify(compose, { lineWidth: 0 })}`;
}
