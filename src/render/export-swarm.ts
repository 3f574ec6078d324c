// spec → a stack for `docker stack deploy` on a Docker Swarm: one service per member pinned to a
// node by label, an overlay network, peers and clients by service name (Swarm cannot pin container
// addresses), DNS round robin (the virtual-IP mode does not carry etcd's peer traffic everywhere),
// data in a volume on the member's node, HAProxy finding members through Docker's DNS, certificates
// and the stats credentials as Swarm secrets, ports published in host mode. Always TLS. Pure.
import { stringify } from 'yaml';
import { ETCD_CLIENT_PORT, ETCD_DATA_DIR, ETCD_PEER_PORT, HAPROXY_CLIENT_PORT, HAPROXY_STATS_PORT, LABEL, memberNames, type MemberTopology } from '../config/topology.js';
import { parseIpv4 } from '../config/network.js';
import type { LabSpec } from '../config/types.js';
import { etcdCommand } from './etcd-flags.js';
import { renderHaproxyCfg } from './haproxy.js';
import { MEMBER_FILES, type CertRequest } from './pki.js';

export interface SwarmExportInput {
  spec: LabSpec;
  etcdImage: string;
  haproxyImage: string;
  /** Addresses (or names) clients dial HAProxy's published port on: they go into the server certificates. */
  clientAddresses: string[];
  clientPort: number;
  statsPort: number;
  statsUser: string;
  statsPassword: string;
}

export const SWARM_STACK_FILE = 'stack.yml';
/**
 * The node label that pins a member: `docker node update --label-add etcd-lab.etcd1=true NODE`. A key
 * per member, not one key with the member as value: a node can then carry several (one-node swarms).
 */
export function memberNodeLabel(member: string): string {
  return `etcd-lab.${member}`;
}
/** The node label for HAProxy's node: `docker node update --label-add etcd-lab.haproxy=true NODE`. */
export const HAPROXY_NODE_LABEL = 'etcd-lab.haproxy';
/** Where Swarm puts a service's secrets. */
const SECRETS_DIR = '/run/secrets';
const HAPROXY_SECRET_TARGET = 'haproxy.cfg';

export function swarmTopology(spec: LabSpec): MemberTopology[] {
  return memberNames(spec.members).map((name) => {
    return { name, container: name, volume: `${name}-data`, address: name, peerUrl: `https://${name}:${ETCD_PEER_PORT}`, clientUrl: `https://${name}:${ETCD_CLIENT_PORT}` };
  });
}

const isIp = (s: string) => parseIpv4(s) !== undefined;

export function swarmCertRequests(input: SwarmExportInput): CertRequest[] {
  const extra = { dns: input.clientAddresses.filter((a) => !isIp(a)), ips: input.clientAddresses.filter(isIp) };
  const requests: CertRequest[] = [];
  for (const m of swarmTopology(input.spec)) {
    // Every name a client may reach a member by, straight or through HAProxy (TLS passes through).
    requests.push({ name: `secrets/${m.name}/server`, commonName: m.name, dns: [m.name, `tasks.${m.name}`, 'haproxy', 'localhost', ...extra.dns], ips: ['127.0.0.1', ...extra.ips], server: true, client: true });
    // By name only: a task's address is Swarm's choice; etcd resolves the name to check a peer.
    requests.push({ name: `secrets/${m.name}/peer`, commonName: m.name, dns: [m.name, `tasks.${m.name}`], ips: [], server: true, client: true });
  }
  requests.push({ name: 'admin/admin', commonName: 'etcd-lab-admin', dns: [], ips: [], server: false, client: true });
  return requests;
}

/** Secret names are swarm-wide: the lab's name keeps two labs apart. */
const secretName = (spec: LabSpec, file: string) => `${spec.name}-${file.replace(/\//g, '-')}`;

export function renderSwarmStack(input: SwarmExportInput): string {
  const { spec } = input;
  const members = swarmTopology(spec);
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const tlsSpec = { ...spec, tls: { ...spec.tls, enabled: true } };
  const services: Record<string, unknown> = {};
  const secrets: Record<string, unknown> = {};
  const volumes: Record<string, unknown> = {};
  const secret = (file: string, target: string) => {
    const name = secretName(spec, file);
    secrets[name] = { file: `./${file}` };
    return { source: name, target };
  };
  for (const m of members) {
    services[m.name] = {
      image: input.etcdImage,
      hostname: m.name,
      entrypoint: ['etcd'],
      command: etcdCommand(tlsSpec, m, initialCluster, { joinable: false, pkiDir: SECRETS_DIR }),
      networks: ['etcd'],
      volumes: [`${m.volume}:${ETCD_DATA_DIR}`],
      secrets: [
        secret('ca.crt', MEMBER_FILES.ca),
        secret(`secrets/${m.name}/server.crt`, MEMBER_FILES.serverCert),
        secret(`secrets/${m.name}/server.key`, MEMBER_FILES.serverKey),
        secret(`secrets/${m.name}/peer.crt`, MEMBER_FILES.peerCert),
        secret(`secrets/${m.name}/peer.key`, MEMBER_FILES.peerKey),
      ],
      deploy: {
        // Names resolve to the task itself, not to a virtual IP in front of it.
        endpoint_mode: 'dnsrr',
        replicas: 1,
        placement: { constraints: [`node.labels.${memberNodeLabel(m.name)} == true`] },
        restart_policy: { condition: 'any', delay: '2s' },
      },
      labels: { [LABEL.lab]: spec.name, [LABEL.member]: m.name },
    };
    // On the node the member is pinned to: the task Swarm starts anew there finds its data.
    volumes[m.volume] = { labels: { [LABEL.lab]: spec.name, [LABEL.member]: m.name } };
  }
  services.haproxy = {
    image: input.haproxyImage,
    hostname: 'haproxy',
    entrypoint: ['haproxy', '-W', '-db', '-f', `${SECRETS_DIR}/${HAPROXY_SECRET_TARGET}`],
    networks: ['etcd'],
    // Host mode: the node's own port, no routing mesh in between (its virtual IPs are what fail here).
    ports: [
      { target: HAPROXY_CLIENT_PORT, published: input.clientPort, protocol: 'tcp', mode: 'host' },
      { target: HAPROXY_STATS_PORT, published: input.statsPort, protocol: 'tcp', mode: 'host' },
    ],
    secrets: [secret('secrets/haproxy.cfg', HAPROXY_SECRET_TARGET)],
    deploy: {
      endpoint_mode: 'dnsrr',
      replicas: 1,
      placement: { constraints: [`node.labels.${HAPROXY_NODE_LABEL} == true`] },
      restart_policy: { condition: 'any', delay: '2s' },
    },
    labels: { [LABEL.lab]: spec.name },
  };
  const stack = {
    version: '3.8',
    services,
    networks: { etcd: { driver: 'overlay', attachable: true, labels: { [LABEL.lab]: spec.name } } },
    volumes,
    secrets,
  };
  const header = [
    `# Generated by etcd-lab from etcd-lab.yaml: lab "${spec.name}" (${spec.members} members) for a Docker Swarm.`,
    `# Label the nodes (docker node update --label-add ${memberNodeLabel('etcd1')}=true NODE …, --label-add ${HAPROXY_NODE_LABEL}=true NODE),`,
    `# then from this folder: docker stack deploy -c ${SWARM_STACK_FILE} ${spec.name}   (see README.md)`,
  ].join('\n');
  return `${header}\n${stringify(stack, { lineWidth: 0 })}`;
}

export function renderSwarmHaproxyCfg(input: SwarmExportInput): string {
  const spec = { ...input.spec, tls: { ...input.spec.tls, enabled: true } };
  return renderHaproxyCfg(spec, {
    servers: swarmTopology(spec),
    header: `# Generated by etcd-lab from etcd-lab.yaml: HAProxy of lab ${spec.name} on a Docker Swarm (a Swarm secret).`,
    bindNote: 'the published port of the node HAProxy runs on; firewall it',
    dns: true,
    statsAuth: `${input.statsUser}:${input.statsPassword}`,
  });
}

export function renderSwarmRunbook(input: SwarmExportInput): string {
  const { spec } = input;
  const members = swarmTopology(spec);
  return `# Lab "${spec.name}" on a Docker Swarm

Generated by \`etcd-lab export swarm\` from etcd-lab.yaml: \`${SWARM_STACK_FILE}\` for \`docker stack deploy\`, the
certificates it turns into Swarm secrets (\`secrets/\`, with \`haproxy.cfg\`, which holds the stats
password), and your client pair (\`admin/\`). The CA key (\`ca.key\`) stays in this folder.

## 1. Label the nodes

One node per member (a member's data lives in a volume on its node), and one for HAProxy. A node
may carry several labels (a one-node swarm carries them all; it then has nothing to fail over to):

\`\`\`sh
${members.map((m, i) => `docker node update --label-add ${memberNodeLabel(m.name)}=true NODE${i + 1}`).join('\n')}
docker node update --label-add ${HAPROXY_NODE_LABEL}=true NODE1
\`\`\`

## 2. Deploy

The images must be on every node (\`${input.etcdImage}\`, \`${input.haproxyImage}\`): pulled from a registry,
or \`docker save | docker load\`ed.

\`\`\`sh
docker stack deploy -c ${SWARM_STACK_FILE} ${spec.name}
docker stack services ${spec.name}          # every service 1/1
\`\`\`

## 3. Check quorum

Through HAProxy on its node (port ${input.clientPort}, host mode), with your client pair:

\`\`\`sh
etcdctl --endpoints=https://HAPROXY_NODE:${input.clientPort} --cacert=admin/ca.crt --cert=admin/admin.crt --key=admin/admin.key \\
  endpoint status --cluster -w table
\`\`\`

\`--cluster\` dials each member by its service name, which only resolves on the overlay network: run
it from a container attached to it (\`docker run --rm --network ${spec.name}_etcd …\`), or leave out
\`--cluster\` to ask through HAProxy only. The certificates name ${input.clientAddresses.length ? input.clientAddresses.join(', ') : 'no client address'} for clients
outside (\`--client-address\` adds more).

## 4. A node down, drained, or back

Each member is pinned to the node that holds its data: Swarm never starts it anywhere else.

- **A node down** (crashed, powered off, its engine stopped): its member is gone; the others keep
  quorum while a majority of the ${members.length} members runs (${members.length} tolerate ${Math.floor((members.length - 1) / 2)} down), and HAProxy sends clients
  to the members that serve (HAProxy's own node down: clients have no way in until it is back). When the node is back, Swarm starts the member's task again on its
  volume: it rejoins with its data and catches up. Check: \`docker stack services ${spec.name}\` (every
  service 1/1 again), then \`endpoint status --cluster\` (every member, the same raft index).
- **A node drained** (\`docker node update --availability drain NODE\`, for maintenance on it): its
  member stops and its task stays pending, as no other node carries its label. Drain one node at
  a time, and only while every other member is up. When the work is done:
  \`docker node update --availability active NODE\` starts the member on that node again, on its
  volume, as above.
- **A node that will not come back**: its member's data went with it, and this runbook does not
  cover replacing it: the stack starts every member with \`--initial-cluster-state=new\`, and a member
  moved to another node must join the running cluster instead (\`etcdctl member remove\`, then
  \`member add\`, then its service started with \`existing\` on an empty volume). The cluster serves
  meanwhile, one failure closer to losing quorum.

## 5. Tear down

\`\`\`sh
docker stack rm ${spec.name}
# the data volumes stay on their nodes: docker volume rm ${spec.name}_etcd1-data … on each node
\`\`\`

Secrets cannot change in place: after \`etcd-lab export swarm\` issues new certificates, remove the
stack before deploying it again.
`;
}
