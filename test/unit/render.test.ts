import { readdirSync, readFileSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { COMPOSE_FILE, ENV_FILE, HAPROXY_FILE, KIND_FILE, renderLab } from '../../src/render/index.js';
import { kubeApiServerEtcd, renderKindConfig, resolveEndpointMode } from '../../src/render/kind.js';
import { apiServerArgs, apiServerBinds, mergeKubeconfig, renderKubeconfig, renderLoopbackKubeconfig, unmergeKubeconfig } from '../../src/render/apiserver.js';
import { personalKubeconfig } from '../../src/lab/apiserver.js';
import { checkHosts, hostsCertRequests, renderHostsExport } from '../../src/render/export-hosts.js';
import { renderSwarmHaproxyCfg, renderSwarmRunbook, renderSwarmStack, swarmCertRequests } from '../../src/render/export-swarm.js';
import { kindCreateArgs, kubeadmApiFor, parseKindVersion } from '../../src/runtime/kind-cli.js';
import { resolveLocalSettings } from '../../src/config/local.js';
import { parseSubnet, subnetContains, parseIpv4 } from '../../src/config/network.js';
import { readSpec } from '../../src/config/read.js';
import { labTopology } from '../../src/config/topology.js';
import type { LabSpec } from '../../src/config/types.js';
import { expectGolden } from './golden.js';
import { documentedExampleSpec } from './documented-example.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/specs/', import.meta.url));
const GOLDEN = fileURLToPath(new URL('../golden/', import.meta.url));
const PASSWORD = 'golden-test-password';

interface Fixture {
  name: string;
  yaml: string;
}

const fixtures: Fixture[] = [
  ...readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => ({ name: basename(f, '.yaml'), yaml: readFileSync(join(FIXTURES, f), 'utf8') })),
  { name: 'readme-example', yaml: documentedExampleSpec() },
];

function render(yaml: string, env: Record<string, string> = {}) {
  const { spec, problems } = readSpec(parse(yaml));
  expect(problems).toEqual([]);
  const { settings, problems: localProblems } = resolveLocalSettings(spec, { env }, () => PASSWORD);
  expect(localProblems).toEqual([]);
  const files = renderLab({ spec, local: settings, endpointMode: resolveEndpointMode(spec.kind.endpoint, false), owner: '/work/team/etcd-lab.yaml', hostPkiDir: '/work/team/generated/pki' });
  return { spec, local: settings, files };
}

interface ComposeService {
  image: string;
  container_name: string;
  entrypoint: string[];
  command?: string[];
  ports: string[];
  networks: { lab: { ipv4_address: string } };
  labels: Record<string, string>;
  healthcheck?: { test: string[] };
  volumes: string[];
  environment?: Record<string, string>;
}

/** The meaning of the generated files, checked on the parsed YAML rather than on bytes. */
function checkMeaning(spec: LabSpec, files: Map<string, string>) {
  const compose = parse(files.get(COMPOSE_FILE)!) as {
    name: string;
    services: Record<string, ComposeService>;
    networks: { lab: { name: string; ipam: { config: { subnet: string; gateway: string }[] }; labels: Record<string, string> } };
    volumes: Record<string, { name: string; labels: Record<string, string> }>;
  };
  const topo = labTopology(spec);
  const subnet = parseSubnet(spec.network.subnet);
  if (typeof subnet === 'string') throw new Error(subnet);
  const inSubnet = (ip: string) => subnetContains(subnet, { base: parseIpv4(ip)!, prefix: 32, size: 1 });

  expect(compose.name).toBe(spec.name);
  const members = Object.entries(compose.services).filter(([, s]) => s.labels['io.etcd-lab.role'] === 'etcd');
  expect(members).toHaveLength(spec.members);

  const addresses = Object.values(compose.services).map((s) => s.networks.lab.ipv4_address);
  expect(new Set(addresses).size).toBe(addresses.length);
  for (const a of [...addresses, compose.networks.lab.ipam.config[0]!.gateway]) expect(inSubnet(a), a).toBe(true);
  expect(addresses).not.toContain(compose.networks.lab.ipam.config[0]!.gateway);

  for (const [name, service] of members) {
    // As compose reads it with no join variable set: "${VAR:-value}" is value.
    const flag = (f: string) =>
      service.command!.find((c) => c.startsWith(`--${f}=`))?.split('=').slice(1).join('=').replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1');
    const cluster = flag('initial-cluster')!.split(',');
    // A joining member (replace, scale) gets its own state and membership for one start, from etcd-lab only.
    const upper = name.toUpperCase();
    expect(service.command).toContain(`--initial-cluster-state=\${ETCD_LAB_${upper}_INITIAL_CLUSTER_STATE:-new}`);
    expect(service.command!.find((c) => c.startsWith('--initial-cluster='))).toMatch(new RegExp(`^--initial-cluster=\\$\\{ETCD_LAB_${upper}_INITIAL_CLUSTER:-`));
    // Every member appears in every member's --initial-cluster, at the address it really has.
    expect(cluster).toHaveLength(spec.members);
    const scheme = spec.tls.enabled ? 'https' : 'http';
    for (const [other, otherService] of members) {
      expect(cluster).toContain(`${other}=${scheme}://${otherService.networks.lab.ipv4_address}:2380`);
    }
    expect(flag('name')).toBe(name);
    expect(flag('initial-advertise-peer-urls')).toBe(`${scheme}://${service.networks.lab.ipv4_address}:2380`);
    expect(flag('listen-client-urls')).toBe(`${scheme}://0.0.0.0:2379`);
    if (spec.tls.enabled) {
      // The member's own directory in pki/, mounted whole and read-only where every TLS flag looks.
      expect(service.volumes.slice(1)).toEqual([`./pki/${name}:/etc/etcd/pki:ro`]);
      for (const f of ['cert-file', 'key-file', 'trusted-ca-file', 'peer-cert-file', 'peer-key-file', 'peer-trusted-ca-file']) {
        expect(flag(f), f).toMatch(/^\/etc\/etcd\/pki\/(ca\.crt|(server|peer)\.(crt|key))$/);
      }
      expect(service.command).toEqual(expect.arrayContaining(['--client-cert-auth', '--peer-client-cert-auth']));
    }
    expect(flag('election-timeout')).toBe(String(spec.etcd.electionTimeoutMs));
    expect(flag('heartbeat-interval')).toBe(String(spec.etcd.heartbeatIntervalMs));
    // Exec-form health check: the official etcd image has no shell.
    expect(service.healthcheck!.test[0]).toBe('CMD');
    expect(service.entrypoint).toEqual(['etcd']);
    expect(service.volumes[0]).toMatch(/^etcd\d-data:\/var\/lib\/etcd$/);
  }

  const haproxy = compose.services.haproxy!;
  expect(haproxy.ports).toEqual([
    `\${ETCD_LAB_BIND_ADDRESS:-${spec.haproxy.bindAddress}}:\${ETCD_LAB_CLIENT_PORT:-${spec.haproxy.clientPort}}:2379`,
    `\${ETCD_LAB_BIND_ADDRESS:-${spec.haproxy.bindAddress}}:\${ETCD_LAB_STATS_PORT:-${spec.haproxy.statsPort}}:8404`,
  ]);
  // TLS mode: HAProxy's own check certificate, from its directory of generated/pki.
  expect(haproxy.volumes).toEqual(['./haproxy:/usr/local/etc/haproxy:ro', ...(spec.tls.enabled ? ['./pki/haproxy:/etc/etcd-lab/pki:ro'] : [])]);

  // Labels on every service, network and volume.
  for (const labels of [...Object.values(compose.services).map((s) => s.labels), compose.networks.lab.labels, ...Object.values(compose.volumes).map((v) => v.labels)]) {
    expect(labels['io.etcd-lab.lab']).toBe(spec.name);
  }
  expect(Object.values(compose.volumes).map((v) => v.name).sort()).toEqual(topo.members.map((m) => m.volume).sort());

  // HAProxy lists every member, at its address, with /health checks.
  const cfg = files.get(HAPROXY_FILE)!;
  const servers = [...cfg.matchAll(/^\s+server (\S+) (\S+):2379$/gm)].map((m) => [m[1], m[2]]);
  expect(servers).toEqual(members.map(([name, s]) => [name, s.networks.lab.ipv4_address]));
  // A member serves while it has a leader: its status, over TLS with HAProxy's check certificate.
  expect(cfg).toMatch(/http-check send meth POST uri \/v3\/maintenance\/status[\s\S]*http-check expect rstring "\\"leader\\":\\"\[1-9\]"/);
  if (spec.tls.enabled) expect(cfg).toMatch(/ check-ssl verify required ca-file \/etc\/etcd-lab\/pki\/ca.crt crt \/etc\/etcd-lab\/pki\/haproxy-check-client.crt /);
  else expect(cfg).not.toMatch(/check-ssl/);
  expect(cfg).not.toMatch(/^\s*option httpchk.*serializable=true/m);
  expect(cfg).toMatch(/observe layer4 error-limit 1 on-error mark-down/);
  expect(cfg).toMatch(/on-marked-down shutdown-sessions/);
  expect(cfg).toMatch(/option redispatch/);
  expect(cfg).toMatch(/timeout tunnel 1h/);
  expect(cfg).toContain(`balance ${spec.haproxy.balance}`);
  expect(cfg).toContain(`inter ${spec.haproxy.healthCheck.intervalMs}ms`);
  expect(cfg).toContain(`rise ${spec.haproxy.healthCheck.rise} fall ${spec.haproxy.healthCheck.fall}`);

  // KIND: one control plane, external etcd pointing at the lab, no apiVersion in the patch.
  const kind = parse(files.get(KIND_FILE)!) as { name: string; nodes: { role: string; image?: string }[]; kubeadmConfigPatches: string[] };
  expect(kind.name).toBe(spec.kind.name);
  expect(kind.nodes.filter((n) => n.role === 'control-plane')).toHaveLength(1);
  expect(kind.nodes.filter((n) => n.role === 'worker')).toHaveLength(spec.kind.workers);
  expect(kind.kubeadmConfigPatches).toHaveLength(1);
  const patch = parse(kind.kubeadmConfigPatches[0]!) as Record<string, unknown> & { etcd: { external: { endpoints: string[] } } };
  expect(patch.kind).toBe('ClusterConfiguration');
  expect(patch.apiVersion).toBeUndefined();
  expect(patch.etcd.external.endpoints).toHaveLength(1);
}

describe.each(fixtures)('fixture $name', ({ name, yaml }) => {
  it('matches the golden files', () => {
    const { files } = render(yaml);
    for (const file of [COMPOSE_FILE, HAPROXY_FILE, KIND_FILE]) {
      expectGolden(join(GOLDEN, name, file), files.get(file)!);
    }
  });

  it('means what the spec says', () => {
    const { spec, files } = render(yaml);
    checkMeaning(spec, files);
  });

  it('is deterministic, generated-by headed, and free of secrets, user and host names', () => {
    const first = render(yaml).files;
    const second = render(yaml).files;
    expect(second).toEqual(first);
    const secrets = [PASSWORD, userInfo().username === 'root' ? undefined : userInfo().username, hostname()].filter(Boolean) as string[];
    for (const file of [COMPOSE_FILE, HAPROXY_FILE, KIND_FILE]) {
      const content = first.get(file)!;
      expect(content.split('\n')[0]).toMatch(/^# Generated by etcd-lab from etcd-lab\.yaml\./);
      for (const secret of secrets) expect(content).not.toContain(secret);
    }
    // The password lives only in the per-person .env.
    expect(first.get(ENV_FILE)).toContain(`ETCD_LAB_STATS_PASSWORD=${PASSWORD}`);
  });
});

describe('per-person values', () => {
  it('host ports from the environment change only .env and the KIND host endpoint', () => {
    const yaml = 'kind:\n  endpoint: host\n';
    const plain = render(yaml).files;
    const custom = render(yaml, { ETCD_LAB_CLIENT_PORT: '32379', ETCD_LAB_STATS_PORT: '38404' }).files;
    expect(custom.get(COMPOSE_FILE)).toBe(plain.get(COMPOSE_FILE));
    expect(custom.get(HAPROXY_FILE)).toBe(plain.get(HAPROXY_FILE));
    expect(custom.get(KIND_FILE)).toContain('http://host.docker.internal:32379');
    expect(custom.get(ENV_FILE)).toContain('ETCD_LAB_CLIENT_PORT=32379');
    expect(custom.get(ENV_FILE)).toContain('ETCD_LAB_STATS_PORT=38404');
  });

  it('every container, the network and every volume carry the owner, whose value only the per-person .env holds', () => {
    const { files } = render('members: 3\n');
    const compose = parse(files.get(COMPOSE_FILE)!) as {
      services: Record<string, { labels: Record<string, string> }>;
      networks: Record<string, { labels: Record<string, string> }>;
      volumes: Record<string, { labels: Record<string, string> }>;
    };
    const labelled = [...Object.values(compose.services), ...Object.values(compose.networks), ...Object.values(compose.volumes)];
    expect(labelled).toHaveLength(4 + 1 + 3);
    for (const { labels } of labelled) expect(labels['io.etcd-lab.owner']).toMatch(/^\$\{ETCD_LAB_OWNER:\?/);
    expect(files.get(COMPOSE_FILE)).not.toContain('/work/team');
    expect(files.get(ENV_FILE)).toMatch(/^ETCD_LAB_OWNER=\/work\/team\/etcd-lab\.yaml$/m);
  });

  it('TLS in host mode (Docker Desktop): https to host.docker.internal, with the same certificate files and mounts', () => {
    const { files } = render('tls:\n  enabled: true\nkind:\n  endpoint: host\n', { ETCD_LAB_CLIENT_PORT: '32379' });
    const kind = parse(files.get(KIND_FILE)!) as { nodes: { extraMounts?: { hostPath: string; containerPath: string }[] }[]; kubeadmConfigPatches: string[] };
    const external = (parse(kind.kubeadmConfigPatches[0]!) as { etcd: { external: Record<string, unknown> } }).etcd.external;
    expect(external).toEqual({
      endpoints: ['https://host.docker.internal:32379'],
      caFile: '/etc/etcd-lab/pki/ca.crt',
      certFile: '/etc/etcd-lab/pki/kube-apiserver-etcd-client.crt',
      keyFile: '/etc/etcd-lab/pki/kube-apiserver-etcd-client.key',
    });
    expect(kind.nodes[0]!.extraMounts).toEqual([{ hostPath: '/work/team/generated/pki/kube-apiserver', containerPath: '/etc/etcd-lab/pki', readOnly: true }]);
  });

  it('network endpoint mode points KIND at HAProxy by container name', () => {
    const kind = render('name: demo\nkind:\n  endpoint: network\n').files.get(KIND_FILE)!;
    expect(kind).toContain('http://demo-haproxy:2379');
  });
});

describe('the API server `etcd-lab apiserver` runs', () => {
  it('gets the etcd endpoint, prefix and TLS files of the KIND config, at the same paths', () => {
    for (const tls of [false, true]) {
      const { spec } = readSpec({ name: 'demo', tls: { enabled: tls } });
      const options = { mode: 'network' as const, clientPort: 2379, hostPkiDir: '/work/team/generated/pki' };
      const etcd = kubeApiServerEtcd(spec, options);
      const args = apiServerArgs(etcd);
      const binds = apiServerBinds(etcd, '/work/team/generated/apiserver');
      const dir = join(GOLDEN, tls ? 'apiserver-tls' : 'apiserver');
      expectGolden(join(dir, 'args.txt'), `${[...args, '', ...binds].join('\n')}\n`);
      expectGolden(join(dir, 'loopback.kubeconfig'), renderLoopbackKubeconfig(spec));
      // What kubeadm gets in the KIND config is what this server gets as flags.
      const kind = parse(renderKindConfig(spec, options)) as { kubeadmConfigPatches: string[]; nodes: { extraMounts?: { hostPath: string; containerPath: string }[] }[] };
      const patch = parse(kind.kubeadmConfigPatches[0]!) as { etcd: { external: { endpoints: string[]; caFile?: string; certFile?: string; keyFile?: string } }; apiServer: { extraArgs: Record<string, string> } };
      const ext = patch.etcd.external;
      expect(args).toContain(`--etcd-servers=${ext.endpoints[0]}`);
      expect(args).toContain(`--etcd-prefix=${patch.apiServer.extraArgs['etcd-prefix']}`);
      const files = [`--etcd-cafile=${ext.caFile}`, `--etcd-certfile=${ext.certFile}`, `--etcd-keyfile=${ext.keyFile}`];
      if (tls) {
        expect(args).toEqual(expect.arrayContaining(files));
        const mount = kind.nodes[0]!.extraMounts![0]!;
        expect(binds).toContain(`${mount.hostPath}:${mount.containerPath}:ro`);
      } else {
        expect(args.filter((a) => a.startsWith('--etcd-') && a.includes('file'))).toEqual([]);
      }
    }
  });
});

describe('KIND config across kubeadm API versions', () => {
  it('v1beta3 (kind ≤ 0.31) gets apiServer.extraArgs as a map, v1beta4 as a list; both merge without apiVersion', () => {
    const { spec } = readSpec({ name: 'demo' });
    for (const api of ['v1beta3', 'v1beta4'] as const) {
      const text = renderKindConfig(spec, { mode: 'network', clientPort: 2379, kubeadmApi: api, hostPkiDir: '/work/team/generated/pki' });
      expectGolden(join(GOLDEN, `kind-${api}`, KIND_FILE), text);
      const patch = parse((parse(text) as { kubeadmConfigPatches: string[] }).kubeadmConfigPatches[0]!) as {
        apiVersion?: string;
        apiServer: { extraArgs: unknown };
      };
      expect(patch.apiVersion).toBeUndefined();
      expect(patch.apiServer.extraArgs).toEqual(
        api === 'v1beta3' ? { 'etcd-prefix': '/kind/demo/registry' } : [{ name: 'etcd-prefix', value: '/kind/demo/registry' }],
      );
    }
  });

  it('picks the form kind will write: v1beta4 only from kind 0.32 with Kubernetes 1.36+', () => {
    expect(kubeadmApiFor([0, 27, 0], '')).toBe('v1beta3');
    expect(kubeadmApiFor([0, 31, 0], 'kindest/node:v1.36.0')).toBe('v1beta3');
    // No node image: kind 0.32.0's default is kindest/node:v1.36.1.
    expect(kubeadmApiFor([0, 32, 0], '')).toBe('v1beta4');
    expect(kubeadmApiFor([0, 32, 0], 'registry.local/node:latest')).toBe('v1beta3');
    expect(kubeadmApiFor([0, 32, 0], 'kindest/node:v1.35.1')).toBe('v1beta3');
    expect(kubeadmApiFor([0, 32, 0], 'kindest/node:v1.36.0@sha256:abc')).toBe('v1beta4');
    expect(kubeadmApiFor(undefined, 'kindest/node:v1.36.0')).toBe('v1beta3');
    expect(parseKindVersion('kind v0.27.0 go1.24.4 linux/amd64')).toEqual([0, 27, 0]);
  });

  it('passes --retain on to kind create cluster only when asked', () => {
    expect(kindCreateArgs('demo', '/w/generated/kind-config.yaml')).toEqual(['create', 'cluster', '--name', 'demo', '--config', '/w/generated/kind-config.yaml']);
    expect(kindCreateArgs('demo', '/w/generated/kind-config.yaml', { retain: false })).not.toContain('--retain');
    expect(kindCreateArgs('demo', '/w/generated/kind-config.yaml', { retain: true })).toEqual([
      'create',
      'cluster',
      '--name',
      'demo',
      '--config',
      '/w/generated/kind-config.yaml',
      '--retain',
    ]);
  });
});

describe('export hosts', () => {
  const { spec } = readSpec(parse('apiVersion: etcd-lab/v1alpha1\nname: far\nmembers: 3\n'));
  const hosts = { etcd1: '192.168.50.11', etcd2: '192.168.50.12', etcd3: '192.168.50.13' };
  const input = { spec, hosts, loadBalancer: '192.168.50.10', etcdBinary: '/usr/local/bin/etcd', statsUser: 'etcd-lab', statsPassword: 'not-a-real-password' };

  it('matches the golden files (unit, etcdctl env, HAProxy, runbook)', () => {
    const files = renderHostsExport(input);
    for (const name of ['README.md', 'etcd1/etcd.service', 'etcd1/etcdctl.env', 'haproxy/haproxy.cfg', 'haproxy/haproxy.service.d/etcd-lab.conf']) {
      expectGolden(join(GOLDEN, 'export-hosts', name), files.get(name)!.content);
    }
    expect(files.get('haproxy/etcd-lab-stats.env')!.mode).toBe(0o600);
  });

  it('each unit is for its own host, always TLS, and every member names every peer', () => {
    const files = renderHostsExport({ ...input, spec: { ...spec, tls: { ...spec.tls, enabled: false } } });
    for (const [member, address] of Object.entries(hosts)) {
      const unit = files.get(`${member}/etcd.service`)!.content;
      expect(unit).toContain(`--name=${member}`);
      expect(unit).toContain(`--initial-advertise-peer-urls=https://${address}:2380`);
      expect(unit).toContain('--initial-cluster=etcd1=https://192.168.50.11:2380,etcd2=https://192.168.50.12:2380,etcd3=https://192.168.50.13:2380');
      expect(unit).toContain('--client-cert-auth');
      expect(unit).not.toMatch(/\$\{/);
    }
    const certs = hostsCertRequests(input);
    expect(certs.find((c) => c.name === 'etcd2/pki/server')!.ips).toEqual(['192.168.50.12', '127.0.0.1', '192.168.50.10']);
  });

  it('a joining member (the runbook\'s member replace) starts into the running cluster; the others bootstrap as before', () => {
    const files = renderHostsExport({ ...input, hosts: { ...hosts, etcd3: '192.168.50.14' }, joining: ['etcd3'] });
    expect(files.get('etcd3/etcd.service')!.content).toContain('--initial-cluster-state=existing');
    expect(files.get('etcd3/etcd.service')!.content).toContain('etcd3=https://192.168.50.14:2380');
    for (const m of ['etcd1', 'etcd2']) expect(files.get(`${m}/etcd.service`)!.content).toContain('--initial-cluster-state=new');
    expect(files.get('haproxy/haproxy.cfg')!.content).toContain('192.168.50.14');
  });

  it('names every problem with the host list', () => {
    expect(checkHosts(spec, { etcd1: '10.0.0.1', etcd2: '10.0.0.1', etcd9: 'x' })).toEqual([
      'etcd3 has no host: add --host etcd3=ADDRESS',
      'the lab has no member "etcd9" (it has etcd1, etcd2, etcd3)',
      'etcd9=x: give the host\'s IPv4 address',
      '10.0.0.1 named twice: each member needs a host of its own (and the load balancer one more)',
    ]);
  });
});

describe('export swarm', () => {
  const { spec } = readSpec(parse('apiVersion: etcd-lab/v1alpha1\nname: far\nmembers: 3\n'));
  const input = {
    spec,
    etcdImage: 'gcr.io/etcd-development/etcd:v3.5.33',
    haproxyImage: 'haproxy:3.2-alpine',
    clientAddresses: ['192.168.50.10', 'lb.example.internal'],
    clientPort: 2379,
    statsPort: 8404,
    statsUser: 'etcd-lab',
    statsPassword: 'not-a-real-password',
  };

  it('matches the golden files (stack, HAProxy, runbook)', () => {
    expectGolden(join(GOLDEN, 'export-swarm', 'stack.yml'), renderSwarmStack(input));
    expectGolden(join(GOLDEN, 'export-swarm', 'haproxy.cfg'), renderSwarmHaproxyCfg(input));
    expectGolden(join(GOLDEN, 'export-swarm', 'README.md'), renderSwarmRunbook(input));
  });

  it('means what the issue asks: pinned, DNS round robin, by service name, secrets not environment, host-mode ports', () => {
    const stack = parse(renderSwarmStack(input)) as {
      services: Record<string, { command?: string[]; environment?: unknown; volumes?: string[]; secrets: { source: string; target: string }[]; ports?: { mode: string }[]; deploy: { endpoint_mode: string; placement: { constraints: string[] } } }>;
      networks: Record<string, { driver: string }>;
      secrets: Record<string, { file: string }>;
    };
    expect(stack.networks.etcd!.driver).toBe('overlay');
    for (const m of ['etcd1', 'etcd2', 'etcd3']) {
      const s = stack.services[m]!;
      expect(s.deploy).toMatchObject({ endpoint_mode: 'dnsrr', placement: { constraints: [`node.labels.etcd-lab.${m} == true`] } });
      expect(s.command).toContain(`--initial-advertise-peer-urls=https://${m}:2380`);
      expect(s.command).toContain('--initial-cluster=etcd1=https://etcd1:2380,etcd2=https://etcd2:2380,etcd3=https://etcd3:2380');
      expect(s.command).toContain('--cert-file=/run/secrets/server.crt');
      expect(s.volumes).toEqual([`${m}-data:/var/lib/etcd`]);
      expect(s.secrets.map((x) => x.target).sort()).toEqual(['ca.crt', 'peer.crt', 'peer.key', 'server.crt', 'server.key']);
      expect(s.environment).toBeUndefined();
    }
    expect(stack.services.haproxy!.ports!.every((p) => p.mode === 'host')).toBe(true);
    expect(stack.services.haproxy!.environment).toBeUndefined();
    // The stats password is only in the HAProxy secret, never in the stack file.
    expect(renderSwarmStack(input)).not.toContain(input.statsPassword);
    expect(renderSwarmHaproxyCfg(input)).toContain(`stats auth "etcd-lab:${input.statsPassword}"`);
    expect(renderSwarmHaproxyCfg(input)).toMatch(/server etcd2 etcd2:2379\n/);
    const server = swarmCertRequests(input).find((c) => c.name === 'secrets/etcd2/server')!;
    expect(server.dns).toEqual(expect.arrayContaining(['etcd2', 'haproxy', 'lb.example.internal']));
    expect(server.ips).toEqual(['127.0.0.1', '192.168.50.10']);
  });

  it('merges its context into a person kubeconfig as kind does, keeping theirs, and takes it out again', () => {
    const { spec } = readSpec({ name: 'demo' });
    const ours = renderKubeconfig(spec, 'https://127.0.0.1:40001', { pem: { ca: 'CA', cert: 'CERT', key: 'KEY' } });
    const theirs = stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'prod', cluster: { server: 'https://prod' } }, { name: 'etcd-lab-demo', cluster: { server: 'https://127.0.0.1:1' } }],
      users: [{ name: 'me', user: { token: 't' } }],
      contexts: [{ name: 'prod', context: { cluster: 'prod', user: 'me' } }],
      'current-context': 'prod',
      preferences: { colors: true },
    });
    const merged = parse(mergeKubeconfig(theirs, ours, '~/.kube/config')) as Record<string, { name: string; cluster?: { server: string } }[] | string | object>;
    const names = (section: string) => (merged[section] as { name: string }[]).map((e) => e.name);
    expect(names('clusters')).toEqual(['prod', 'etcd-lab-demo']);
    expect((merged.clusters as { name: string; cluster: { server: string } }[])[1]!.cluster.server).toBe('https://127.0.0.1:40001');
    expect(names('users')).toEqual(['me', 'etcd-lab-demo']);
    expect(names('contexts')).toEqual(['prod', 'etcd-lab-demo']);
    expect(merged['current-context']).toBe('etcd-lab-demo');
    expect(merged.preferences).toEqual({ colors: true });
    // Into nothing: a whole kubeconfig.
    expect(parse(mergeKubeconfig(undefined, ours, 'x'))).toMatchObject({ 'current-context': 'etcd-lab-demo', kind: 'Config' });
    expect(() => mergeKubeconfig('- a list', ours, '/tmp/k')).toThrow(/\/tmp\/k is not a kubeconfig/);

    const back = parse(unmergeKubeconfig(mergeKubeconfig(theirs, ours, 'x'), 'etcd-lab-demo', 'x')!) as Record<string, { name: string }[]>;
    expect(back.clusters!.map((e) => e.name)).toEqual(['prod']);
    expect(back.contexts!.map((e) => e.name)).toEqual(['prod']);
    expect(back['current-context']).toBe('');
    expect(unmergeKubeconfig(stringify({ contexts: [{ name: 'prod' }] }), 'etcd-lab-demo', 'x')).toBeUndefined();
  });

  it("merges into $KUBECONFIG's first file, else ~/.kube/config, never into the lab's own", () => {
    expect(personalKubeconfig(undefined, { KUBECONFIG: `/a/one${delimiter}/b/two` })).toBe('/a/one');
    expect(personalKubeconfig(undefined, {})).toBe(join(homedir(), '.kube', 'config'));
    expect(personalKubeconfig(undefined, { KUBECONFIG: '/work/team/generated/apiserver/kubeconfig' })).toBe(join(homedir(), '.kube', 'config'));
    expect(personalKubeconfig('/c/mine', { KUBECONFIG: '/a/one' })).toBe('/c/mine');
  });
});
