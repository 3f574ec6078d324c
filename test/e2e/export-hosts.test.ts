// `etcd-lab export hosts`, checked with real engines: systemd itself accepts every unit file
// (systemd-analyze verify), and each host folder runs in a container that plays the VM — at the
// address the bundle names, on a network of the test's own — running exactly the unit's ExecStart
// with the folder's files where the unit expects them. The members form a cluster, and etcdctl
// reaches it through the exported HAProxy config with the exported client certificate.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExportHostsResult } from '../../src/lab/export.js';
import { HAPROXY_CONFIG_PATH, LABEL } from '../../src/config/topology.js';
import { demuxedText } from '../../src/engine/docker/containers.js';
import { cliIn, skipE2E, TEST_IMAGES, uniqueLab } from './lab-fixture.js';

/** The unit's ExecStart as an argv: continuation lines joined, split on whitespace (the flags hold none). */
function execStartOf(unit: string): string[] {
  const joined = unit.replace(/\\\n/g, ' ');
  const line = joined.split('\n').find((l) => l.startsWith('ExecStart='))!;
  return line.slice('ExecStart='.length).trim().split(/\s+/);
}

function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) =>
    execFile(command, args, (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}`.trim() })),
  );
}

describe.skipIf(skipE2E)('export hosts', () => {
  const docker = new Docker();
  const { name, subnet } = uniqueLab('exph');
  const base = subnet.replace(/\.0\/24$/, '');
  const hosts = { etcd1: `${base}.21`, etcd2: `${base}.22`, etcd3: `${base}.23` };
  const lb = `${base}.10`;
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const bundle = join(dir, 'generated/export/hosts');
  // Where the units say etcd is: a path of the test's own, so that systemd-analyze finds it here.
  const binDir = join(dir, 'bin');
  const etcdBinary = join(binDir, 'etcd');
  const labels = { [LABEL.lab]: name };
  let network: Docker.Network;
  let result: ExportHostsResult;

  beforeAll(async () => {
    writeFileSync(join(dir, 'etcd-lab.yaml'), `apiVersion: etcd-lab/v1alpha1\nname: ${name}\nmembers: 3\n`);
    mkdirSync(binDir);
    writeFileSync(etcdBinary, '#!/bin/sh\nexit 0\n');
    chmodSync(etcdBinary, 0o755);
    const r = await cliIn(dir)(['export', 'hosts', ...Object.entries(hosts).flatMap(([m, a]) => ['--host', `${m}=${a}`]), '--load-balancer', lb, '--etcd-binary', etcdBinary, '--json']);
    expect(r).toExitWith(0);
    result = JSON.parse(r.stdout) as ExportHostsResult;
    network = await docker.createNetwork({ Name: name, Driver: 'bridge', Labels: labels, IPAM: { Config: [{ Subnet: subnet }] } });
  });
  afterAll(async () => {
    for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABEL.lab}=${name}`] } })) await docker.getContainer(c.Id).remove({ force: true });
    await network?.remove().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a folder per host, the load balancer, the admin pair and a runbook; ca.key stays out of them', () => {
    expect(result.dir).toBe(bundle);
    for (const m of Object.keys(hosts)) {
      for (const f of ['etcd.service', 'etcdctl.env', 'pki/ca.crt', 'pki/server.crt', 'pki/server.key', 'pki/peer.crt', 'pki/peer.key']) expect(result.files, `${m}/${f}`).toContain(`${m}/${f}`);
    }
    for (const f of ['haproxy/haproxy.cfg', 'README.md']) expect(result.files).toContain(f);
    // The CA key is the exporter's: at the top, in no folder that goes to a host.
    expect(result.files.filter((f) => f.endsWith('.key') && !f.includes('/'))).toEqual(['ca.key']);
    expect(result.files.filter((f) => f.endsWith('ca.key'))).toEqual(['ca.key']);
    const runbook = readFileSync(join(bundle, 'README.md'), 'utf8');
    expect(runbook).toMatch(/systemctl daemon-reload && systemctl enable --now etcd/);
    expect(runbook).toMatch(/etcdctl endpoint status --cluster -w table[\s\S]*etcdctl member list -w table/);
  });

  it('systemd-analyze verify accepts every unit, without a word', async () => {
    for (const m of Object.keys(hosts)) {
      const r = await run('systemd-analyze', ['verify', '--man=no', join(bundle, m, 'etcd.service')]);
      expect(r, `${m}: systemd-analyze comes with \`etcd-lab setup-host --clients\``).toEqual({ code: 0, output: '' });
    }
  });

  it('each host folder, run as its unit says in a container at its address, forms a cluster reachable through the exported HAProxy', async () => {
    for (const [member, address] of Object.entries(hosts)) {
      const argv = execStartOf(readFileSync(join(bundle, member, 'etcd.service'), 'utf8'));
      expect(argv[0]).toBe(etcdBinary);
      expect(argv).toContain(`--initial-advertise-peer-urls=https://${address}:2380`);
      const container = await docker.createContainer({
        Image: TEST_IMAGES.etcd,
        name: `${name}-${member}`,
        Labels: labels,
        // The VM's etcd lives where the unit says (the runbook's Debian step: a link to /usr/bin/etcd).
        Entrypoint: ['sh', '-c', 'mkdir -p "$(dirname "$1")" && ln -sf /usr/bin/etcd "$1" && exec "$@"', 'vm'],
        Cmd: argv,
        HostConfig: { NetworkMode: name, Binds: [`${join(bundle, member, 'pki')}:/etc/etcd/pki:ro`] },
        NetworkingConfig: { EndpointsConfig: { [name]: { IPAMConfig: { IPv4Address: address } } } },
      });
      await container.start();
    }
    const stats = Object.fromEntries(
      readFileSync(join(bundle, 'haproxy/etcd-lab-stats.env'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split('=') as [string, string]),
    );
    const haproxy = await docker.createContainer({
      Image: TEST_IMAGES.haproxy,
      name: `${name}-lb`,
      Labels: labels,
      Entrypoint: ['haproxy', '-W', '-db', '-f', HAPROXY_CONFIG_PATH],
      Env: Object.entries(stats).map(([k, v]) => `${k}=${v}`),
      HostConfig: { NetworkMode: name, Binds: [`${join(bundle, 'haproxy/haproxy.cfg')}:${HAPROXY_CONFIG_PATH}:ro`] },
      NetworkingConfig: { EndpointsConfig: { [name]: { IPAMConfig: { IPv4Address: lb } } } },
    });
    await haproxy.start();

    // etcdctl from "your machine" (a container on the network), with the admin/ files, through the load balancer.
    const etcdctl = async (env: string[], binds: string[], args: string[]) => {
      const c = await docker.createContainer({ Image: TEST_IMAGES.etcd, Labels: labels, Entrypoint: ['etcdctl'], Cmd: args, Env: env, HostConfig: { NetworkMode: name, Binds: binds } });
      await c.start();
      const { StatusCode } = (await c.wait()) as { StatusCode: number };
      const output = demuxedText((await c.logs({ stdout: true, stderr: true })) as unknown as Buffer);
      await c.remove({ force: true });
      return { code: StatusCode, output };
    };
    const admin = [`--endpoints=https://${lb}:2379`, '--cacert=/admin/ca.crt', '--cert=/admin/admin.crt', '--key=/admin/admin.key', '--command-timeout=5s'];
    let status = { code: -1, output: '' };
    for (let i = 0; i < 60 && status.code !== 0; i++) {
      status = await etcdctl([], [`${join(bundle, 'admin')}:/admin:ro`], [...admin, 'endpoint', 'status', '--cluster', '-w', 'json']);
      if (status.code !== 0) await new Promise((r) => setTimeout(r, 500));
    }
    expect(status).toExitWith(0);
    const endpoints = JSON.parse(status.output.slice(status.output.indexOf('['))) as { Endpoint: string; Status: { header: { member_id: number }; leader: number } }[];
    expect(endpoints.map((e) => e.Endpoint).sort()).toEqual(Object.values(hosts).map((a) => `https://${a}:2379`).sort());
    expect(new Set(endpoints.map((e) => e.Status.leader)).size).toBe(1);

    // On a member's host, with its etcdctl.env and its pki/ where the env file says.
    const env = readFileSync(join(bundle, 'etcd2/etcdctl.env'), 'utf8')
      .split('\n')
      .filter((l) => /^ETCDCTL_/.test(l));
    const list = await etcdctl(env, [`${join(bundle, 'etcd2/pki')}:/etc/etcd/pki:ro`], ['member', 'list', '-w', 'table']);
    expect(list).toExitWith(0);
    for (const [member, address] of Object.entries(hosts)) expect(list.output).toMatch(new RegExp(`${member}\\s*\\|\\s*https://${address.replace(/\./g, '\\.')}:2380`));
  });
});
