// `etcd-lab export hosts` on hosts that run systemd as their init, as VMs would: three member hosts
// and a load balancer (test/fixtures/systemd-host/: Debian's systemd and etcd; HAProxy 3.2 on the
// load balancer), each at the address the bundle names on the test's own network. Everything on the
// hosts is done with the bundle's runbook, its commands as written: install, copy, `systemctl
// enable --now etcd`, check, the load balancer. Then, under check's workload through the exported
// HAProxy: a member's etcd killed (systemd starts it again), a host powered off (quorum holds) and
// on again (its member rejoins with its data); and the runbook's member replace onto a fresh host.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHistory } from '../../src/checker/check.js';
import { longestUnavailable } from '../../src/lab/check.js';
import type { ExportHostsResult } from '../../src/lab/export.js';
import { getKey, putKey, type Endpoint } from '../../src/protocol/etcd-http.js';
import { readClientTls } from '../../src/runtime/pki.js';
import { aptMirror } from '../../src/runtime/images.js';
import { parseDotenv } from '../../src/config/local.js';
import { fetchStats } from '../../src/protocol/haproxy-stats.js';
import { Workload } from '../../src/workload/workload.js';
import { cliIn, parseEndpointStatus, must, runCommand, skipE2E, uniqueLab, until } from './lab-fixture.js';

const RECIPE = fileURLToPath(new URL('../fixtures/systemd-host/', import.meta.url));
const IMAGES = { member: 'etcd-lab-test/systemd-host:member', lb: 'etcd-lab-test/systemd-host:lb' };

/** The lines of the runbook's code block that follows `heading`, with etcdN (and NEW_ADDRESS) filled in. */
function runbookBlock(readme: string, heading: string, fill: Record<string, string> = {}): string {
  const section = readme.slice(readme.indexOf(heading));
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
  return Object.entries(fill).reduce((text, [from, to]) => text.replaceAll(from, to), block.replace(/^ {3}/gm, ''));
}

describe.skipIf(skipE2E)('export hosts on hosts that run systemd', () => {
  const { name, subnet } = uniqueLab('sdh');
  const prefix = subnet.replace(/\.0\/24$/, '');
  const addresses = { etcd1: `${prefix}.11`, etcd2: `${prefix}.12`, etcd3: `${prefix}.13` };
  const fresh = `${prefix}.14`;
  const lb = `${prefix}.10`;
  const host = (h: string) => `${name}-${h}`;
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  let bundle: ExportHostsResult;
  let client: Endpoint;
  let readme: string;
  const exec = (h: string, script: string) => runCommand('docker', ['exec', host(h), 'sh', '-ec', script]);
  const exportHosts = async (hosts: Record<string, string>, extra: string[] = []) => {
    const r = await cliIn(dir)(['export', 'hosts', ...Object.entries(hosts).flatMap(([m, a]) => ['--host', `${m}=${a}`]), '--load-balancer', lb, ...extra, '--json']);
    expect(r).toExitWith(0);
    bundle = JSON.parse(r.stdout) as ExportHostsResult;
    readme = readFileSync(join(bundle.dir, 'README.md'), 'utf8');
  };
  /** A host as a VM: systemd as init, at its address; its disk (the container's) survives a power cycle. */
  const boot = async (h: string, address: string, image: string) => {
    await must(
      runCommand('docker', [
        'run', '-d', '--name', host(h), '--hostname', h, '--label', `io.etcd-lab.lab=${name}`, '--network', name, '--ip', address,
        '--cap-add', 'ALL', '--cap-drop', 'SYS_RESOURCE', '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined',
        '--tmpfs', '/run', '--tmpfs', '/run/lock', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:ro',
        image,
      ]),
    );
    await until(`${h} booted`, 60_000, async () => (/^(running|degraded)$/.test((await exec(h, 'systemctl is-system-running || true')).output) ? true : undefined));
  };
  /** The runbook's steps 1–3 on a member host, its commands as written. */
  const installMember = async (h: string, member: string) => {
    await must(runCommand('docker', ['cp', join(bundle.dir, member), `${host(h)}:/root/${member}`]));
    // Step 1, the Debian way (etcd-server and etcd-client are in the host's image, as apt-get would leave them).
    const install = readme.slice(readme.indexOf('## 1.'), readme.indexOf('## 2.'));
    expect(install).toContain('`systemctl disable --now etcd`');
    await must(exec(h, 'systemctl disable --now etcd; ln -sf /usr/bin/etcd /usr/local/bin/etcd'));
    await must(exec(h, `cd /root\n${runbookBlock(readme, '## 2.', { etcdN: member })}`));
  };
  const statusOn = async (h: string) => {
    const r = await exec(h, `set -a; . /etc/etcd/etcdctl.env; set +a\netcdctl endpoint status --cluster -w json`);
    return r.code === 0 ? parseEndpointStatus(r.output) : undefined;
  };

  beforeAll(async () => {
    // The mirror the lab's own images are built from (ETCD_LAB_APT_MIRROR, else Debian's).
    const mirror = ['--build-arg', `MIRROR=${aptMirror() ?? 'http://deb.debian.org/debian'}`];
    for (const target of ['member', 'lb'] as const) await must(runCommand('docker', ['build', '-q', ...mirror, '--target', target, '-t', IMAGES[target], '--label', 'io.etcd-lab.test=systemd-host', RECIPE]));
    await must(runCommand('docker', ['network', 'create', '--subnet', subnet, '--label', `io.etcd-lab.lab=${name}`, name]));
    writeFileSync(join(dir, 'etcd-lab.yaml'), `apiVersion: etcd-lab/v1alpha1\nname: ${name}\nmembers: 3\n`);
    await exportHosts(addresses);
    client = { url: `https://${lb}:2379`, tls: readClientTls(bundle.dir, 'admin/admin') };
    await Promise.all([...Object.entries(addresses).map(([m, a]) => boot(m, a, IMAGES.member)), boot('lb', lb, IMAGES.lb)]);
    for (const member of Object.keys(addresses)) await installMember(member, member);
    // Step 3: every member host at about the same time; each `enable --now` returns once its etcd serves.
    const start = runbookBlock(readme, '## 3.');
    await Promise.all(Object.keys(addresses).map((m) => must(exec(m, start))));
    // Step 5, the load balancer.
    await must(runCommand('docker', ['cp', join(bundle.dir, 'haproxy'), `${host('lb')}:/root/haproxy`]));
    await must(exec('lb', `cd /root\n${runbookBlock(readme, '## 5.')}`));
  }, 600_000);

  afterAll(async () => {
    for (const h of [...Object.keys(addresses), 'fresh', 'lb']) await runCommand('docker', ['rm', '-f', '-v', host(h)]);
    await runCommand('docker', ['network', 'rm', name]);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('forms by the runbook: every member active under systemd, one leader, and the exported HAProxy serves', async () => {
    for (const m of Object.keys(addresses)) {
      const state = (await exec(m, 'systemctl is-active etcd')).output;
      expect(state, `${m}: ${(await exec(m, 'journalctl -u etcd --no-pager -n 15')).output}`).toBe('active');
    }
    // Step 4, on a member host.
    const all = await until('every member in endpoint status --cluster', 60_000, () => statusOn('etcd1'));
    expect(all.map((s) => s.Endpoint).sort()).toEqual(Object.values(addresses).map((a) => `https://${a}:2379`).sort());
    expect(new Set(all.map((s) => s.Status.leader)).size).toBe(1);
    expect((await exec('lb', 'systemctl is-active haproxy')).output).toBe('active');
    await until('a write through the load balancer', 30_000, async () => ((await putKey(client, 'hosts/formed', 'yes', 2000)).revision > 0 ? true : undefined));
    expect(await getKey(client, 'hosts/formed')).toBe('yes');
  }, 120_000);

  it("under check's workload: a member's etcd killed is started again by systemd; the leader's host powered off keeps quorum, and on again its member rejoins with its data", async () => {
    const before = await until('every member answering', 60_000, () => statusOn('etcd1'));
    const idOf = (address: string) => before.find((s) => s.Endpoint.includes(address))!.Status.header.member_id;
    const haproxy = { via: 'haproxy', endpoint: () => client };
    const workload = new Workload({ prefix: `${name}/check/`, keys: 10, clients: Array(6).fill(haproxy), watchers: [[haproxy], [haproxy]], rate: 150, callTimeoutMs: 2000, reads: 'linearizable', control: client, lab: name });
    await workload.start();
    let history;
    let restartedInMs = 0;
    let off = '';
    try {
      const served = async (count: number) => {
        const from = workload.now();
        await until(`${count} acknowledged operations`, 60_000, async () => (workload.operations.filter((o) => o.outcome === 'ok' && o.callMs > from).length >= count ? true : undefined));
      };
      await served(50);
      // etcd2's process killed outright: the unit's Restart=on-failure brings it back.
      const pid = (await must(exec('etcd2', 'systemctl show -p MainPID --value etcd'))).trim();
      const killedAt = Date.now();
      await must(exec('etcd2', `kill -9 ${pid}`));
      await until('systemd to start etcd2 again', 60_000, async () => {
        const now = (await exec('etcd2', 'systemctl show -p MainPID --value etcd; systemctl is-active etcd')).output.split('\n');
        return now[0] !== pid && now[0] !== '0' && now[1] === 'active' ? true : undefined;
      });
      restartedInMs = Date.now() - killedAt;
      expect(Number((await must(exec('etcd2', 'systemctl show -p NRestarts --value etcd'))).trim())).toBeGreaterThanOrEqual(1);
      await served(50);
      // The leader's host powered off: the two others elect a leader and keep quorum.
      const now = await until('every member answering after the restart', 60_000, async () => ((await statusOn('etcd1'))?.length === 3 ? statusOn('etcd1') : undefined));
      const leaderAddress = now!.find((s) => s.Status.header.member_id === s.Status.leader)!.Endpoint.replace(/^https:\/\/|:2379$/g, '');
      off = Object.entries(addresses).find(([, a]) => a === leaderAddress)![0];
      await must(runCommand('docker', ['kill', host(off)]));
      await served(50);
      await putKey(client, 'hosts/while-a-host-was-off', 'written', 5000);
      // On again: systemd starts the enabled unit at boot, on the data it had.
      await must(runCommand('docker', ['start', host(off)]));
      await until(`${off} active again after the power cycle`, 120_000, async () => ((await exec(off, 'systemctl is-active etcd')).output === 'active' ? true : undefined));
      await served(50);
    } finally {
      history = await workload.stop();
    }
    const checked = checkHistory(history);
    expect(checked.violations, JSON.stringify(checked.violations.slice(0, 3))).toEqual([]);
    expect(checked.ok).toBe(true);
    const c = checked.counts;
    console.log(
      `systemd hosts, etcd2's process killed then the leader's host (${off}) powered off and on: ${c.operations} operations (ok ${c.ok}, failed ${c.failed}, unknown ${c.unknown}), ` +
        `longest unavailability through HAProxy ${longestUnavailable(history)} ms, systemd had etcd2 active again ${restartedInMs} ms after the kill`,
    );
    const after = await until('the three at the same applied index', 60_000, async () => {
      const all = await statusOn('etcd1');
      return all?.length === 3 && new Set(all.map((s) => s.Status.raftAppliedIndex)).size === 1 ? all : undefined;
    });
    // The same member (its data, not a new member), holding what was written while its host was off.
    const offAddress = addresses[off as keyof typeof addresses];
    expect(after.find((s) => s.Endpoint.includes(offAddress))!.Status.header.member_id).toBe(idOf(offAddress));
    // An ID alone would also fit a member bootstrapped anew on an empty disk: etcd says it restarted from its data.
    expect((await exec(off, 'journalctl -u etcd -b --no-pager')).output).toContain('restarting local member');
    const own = await exec(off, 'set -a; . /etc/etcd/etcdctl.env; set +a\netcdctl get hosts/while-a-host-was-off --print-value-only --consistency=s');
    expect(own.output.split('\n').at(-1)).toBe('written');
  }, 600_000);

  it("member replace by the runbook's own steps: etcd3's host gone for good, the member moved to a fresh host", async () => {
    await must(runCommand('docker', ['kill', host('etcd3')]));
    await boot('fresh', fresh, IMAGES.member);
    // 1. On your machine: export again, etcd3 at its new address, joining.
    const step1 = readme.slice(readme.indexOf("Replace a member's host"));
    expect(step1).toContain('--joining etcdN');
    await exportHosts({ ...addresses, etcd3: fresh }, ['--joining', 'etcd3']);
    expect(readFileSync(join(bundle.dir, 'etcd3', 'etcd.service'), 'utf8')).toContain('--initial-cluster-state=existing');
    // 2. On a healthy member's host: the old member out, the new one in.
    await must(exec('etcd1', runbookBlock(readme, "## 7. Replace a member's host", { etcdN: 'etcd3', NEW_ADDRESS: fresh })));
    // 3. On the new host: steps 1 to 3 with the new folder.
    await installMember('fresh', 'etcd3');
    await must(exec('fresh', runbookBlock(readme, '## 3.')));
    // 4. The load balancer: step 5 again.
    await must(exec('lb', 'rm -rf /root/haproxy'));
    await must(runCommand('docker', ['cp', join(bundle.dir, 'haproxy'), `${host('lb')}:/root/haproxy`]));
    await must(exec('lb', `cd /root\n${runbookBlock(readme, '## 5.')}`));
    // 5. Check: every member, one leader, etcd3 at its new address, and the data all there.
    const all = await until('every member, etcd3 at its new address', 120_000, async () => {
      const s = await statusOn('etcd1');
      return s?.length === 3 && s.some((x) => x.Endpoint.includes(fresh)) && new Set(s.map((x) => x.Status.leader)).size === 1 ? s : undefined;
    });
    expect(all.map((s) => s.Endpoint).sort()).toEqual([addresses.etcd1, addresses.etcd2, fresh].map((a) => `https://${a}:2379`).sort());
    const own = await exec('fresh', 'set -a; . /etc/etcd/etcdctl.env; set +a\netcdctl get hosts/formed --print-value-only --consistency=s');
    expect(own.output.split('\n').at(-1)).toBe('yes');
    await until('a write through the load balancer after the replace', 30_000, async () => ((await putKey(client, 'hosts/replaced', 'yes', 2000)).revision > 0 ? true : undefined));
    // The load balancer runs the new config: etcd3 at its new address, and its health check finds it UP.
    expect((await must(exec('lb', 'cat /etc/haproxy/haproxy.cfg'))).match(/server etcd3 (\S+):/)?.[1]).toBe(fresh);
    const credentials = parseDotenv(readFileSync(join(bundle.dir, 'haproxy', 'etcd-lab-stats.env'), 'utf8'));
    await until('HAProxy to find etcd3 UP at its new address', 60_000, async () => {
      const stats = await fetchStats(`http://${lb}:8404/stats`, { user: credentials.ETCD_LAB_STATS_USER!, password: credentials.ETCD_LAB_STATS_PASSWORD! });
      return stats.backends.find((b) => b.name === 'etcd3')?.status === 'UP' ? true : undefined;
    });
  }, 600_000);
});
