// `etcd-lab export swarm` on a three-node Swarm: three Docker engines, each in a container of its
// own (Debian's docker.io on the lab's base image, test/fixtures/swarm-node/), each a swarm manager
// at its own address on the test's network, the lab's images loaded into each (no registry). The
// exported stack is deployed as its README says (members pinned by node label, HAProxy on node1),
// then: quorum through the exported HAProxy; the node holding the leader killed outright (a host
// lost) while check's workload runs — the others serve, nothing acknowledged is lost — and back,
// its member rejoining with its data; a node drained and brought back as the README's recovery says.
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHistory } from '../../src/checker/check.js';
import { longestUnavailable } from '../../src/lab/check.js';
import type { ExportSwarmResult } from '../../src/lab/export.js';
import { getKey, putKey, type Endpoint } from '../../src/protocol/etcd-http.js';
import { readClientTls } from '../../src/runtime/pki.js';
import { Workload } from '../../src/workload/workload.js';
import { cliIn, freePorts, parseEndpointStatus, removeTestCgroups, must, runCommand, skipE2E, type CommandRun, TEST_IMAGES, uniqueLab, until } from './lab-fixture.js';

const NODE_IMAGE = 'etcd-lab-test/swarm-node:trixie';
const NODE_RECIPE = fileURLToPath(new URL('../fixtures/swarm-node/', import.meta.url));
const NODES = ['node1', 'node2', 'node3'] as const;

describe.skipIf(skipE2E)('export swarm on a three-node Swarm', () => {
  const { name, subnet } = uniqueLab('swn');
  const prefix = subnet.replace(/\.0\/24$/, '');
  const address = (node: string) => `${prefix}.${11 + NODES.indexOf(node as (typeof NODES)[number])}`;
  const container = (node: string) => `${name}-${node}`;
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  let result: ExportSwarmResult;
  let client: Endpoint;
  /** The Docker CLI on one node's engine (the swarm's managers answer alike). */
  const on = (node: string, args: string[], opts: { cwd?: string; input?: NodeJS.ReadableStream } = {}) => runCommand('docker', ['-H', `tcp://${address(node)}:2375`, ...args], opts);

  /** etcdctl from a container on the stack's overlay network (through node1's engine), with the exported admin pair. */
  const etcdctl = async (args: string[]): Promise<CommandRun> => {
    const tar = spawn('tar', ['-C', result.dir, '-c', 'admin'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const script = 'mkdir /a && tar -x -C /a && exec etcdctl --cacert=/a/admin/ca.crt --cert=/a/admin/admin.crt --key=/a/admin/admin.key --command-timeout=5s "$@"';
    return on('node1', ['run', '-i', '--rm', '--network', `${name}_etcd`, '--entrypoint', 'sh', TEST_IMAGES.etcd, '-c', script, 'etcdctl', ...args], { input: tar.stdout });
  };
  /** The output of a member's current task container on its node (etcd logs to stderr). */
  const etcdLogOn = async (node: string, member: string) => {
    const id = (await must(on(node, ['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${name}_${member}`]))).split('\n')[0]!;
    return (await on(node, ['logs', id])).output;
  };
  const ALL = `--endpoints=${['etcd1', 'etcd2', 'etcd3'].map((m) => `https://${m}:2379`).join(',')}`;
  const statuses = async () => {
    const r = await etcdctl([ALL, 'endpoint', 'status', '-w', 'json']);
    return r.code === 0 ? parseEndpointStatus(r.output) : undefined;
  };
  const memberOf = (s: { Endpoint: string }) => /https:\/\/(etcd\d):/.exec(s.Endpoint)![1]!;
  /** A service's tasks as Swarm has them: the node (empty while none is chosen), and the state each is in now. */
  const tasks = async (service: string): Promise<{ node: string; current: string }[]> => {
    const r = await on('node1', ['service', 'ps', `${name}_${service}`, '--format', '{{.Node}}|{{.CurrentState}}']);
    if (r.code !== 0) return [];
    return r.output.split('\n').filter(Boolean).map((l) => {
      const [node = '', current = ''] = l.split('|');
      return { node, current: current.split(' ')[0]! };
    });
  };
  /** The node a service's task runs on now, if one runs. */
  const runningOn = async (service: string): Promise<string | undefined> => (await tasks(service)).find((t) => t.current === 'Running')?.node;

  beforeAll(async () => {
    // The node image: Debian's docker.io on the base image `make images` built (a cached build after the first).
    await must(runCommand('docker', ['build', '-q', '-t', NODE_IMAGE, '--label', 'io.etcd-lab.test=swarm-node', NODE_RECIPE]));
    await must(runCommand('docker', ['network', 'create', '--subnet', subnet, '--label', `io.etcd-lab.lab=${name}`, name]));
    for (const node of NODES) {
      // Docker-in-Docker as this machine allows it (no --privileged): the capabilities, the host's
      // cgroups writable under a parent of the node's own, /run fresh at each start (a rebooted host's
      // is), /var/lib/docker a volume of its own (images, the swarm's state, the member's data).
      await must(
        runCommand('docker', [
          'run', '-d', '--name', container(node), '--hostname', node, '--label', `io.etcd-lab.lab=${name}`,
          '--network', name, '--ip', address(node),
          '--cap-add', 'ALL', '--cap-drop', 'SYS_RESOURCE', '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined',
          '--tmpfs', '/run', '-v', '/var/lib/docker', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw',
          NODE_IMAGE,
          'dockerd', '--host=unix:///var/run/docker.sock', '--host=tcp://0.0.0.0:2375', '--tls=false', `--cgroup-parent=/${container(node)}`,
        ]),
      );
    }
    await Promise.all(NODES.map((node) => until(`${node}'s engine`, 60_000, async () => ((await on(node, ['version', '--format', '{{.Server.Version}}'])).code === 0 ? true : undefined))));
    // No registry: the images go to every node as `docker save | docker load`, as the README says.
    const images = join(dir, 'images.tar');
    await must(runCommand('docker', ['save', '-o', images, TEST_IMAGES.etcd, TEST_IMAGES.haproxy]));
    await Promise.all(NODES.map((node) => must(on(node, ['load', '-q'], { input: createReadStream(images) }))));
    rmSync(images);
    // Three managers: the swarm itself survives one node lost.
    await must(on('node1', ['swarm', 'init', '--advertise-addr', address('node1')]));
    const token = await must(on('node1', ['swarm', 'join-token', '-q', 'manager']));
    for (const node of NODES.slice(1)) await must(on(node, ['swarm', 'join', '--token', token, '--advertise-addr', address(node), `${address('node1')}:2377`]));

    const [clientPort, statsPort] = await freePorts(2);
    writeFileSync(join(dir, 'etcd-lab.yaml'), `apiVersion: etcd-lab/v1alpha1\nname: ${name}\nmembers: 3\n`);
    writeFileSync(join(dir, '.env'), `ETCD_LAB_CLIENT_PORT=${clientPort}\nETCD_LAB_STATS_PORT=${statsPort}\nETCD_LAB_ETCD_IMAGE=${TEST_IMAGES.etcd}\nETCD_LAB_HAPROXY_IMAGE=${TEST_IMAGES.haproxy}\n`);
    const exported = await cliIn(dir)(['export', 'swarm', '--client-address', address('node1'), '--json']);
    expect(exported).toExitWith(0);
    result = JSON.parse(exported.stdout) as ExportSwarmResult;
    client = { url: `https://${address('node1')}:${clientPort}`, tls: readClientTls(result.dir, 'admin/admin') };
    // The README's step 1: a node per member, HAProxy with etcd1 on node1.
    for (const [i, node] of NODES.entries()) {
      await must(on('node1', ['node', 'update', '--label-add', `etcd-lab.etcd${i + 1}=true`, ...(i === 0 ? ['--label-add', 'etcd-lab.haproxy=true'] : []), node]));
    }
    await must(on('node1', ['stack', 'deploy', '-c', 'stack.yml', name], { cwd: result.dir }));
    await until('a write through the exported HAProxy', 180_000, async () => ((await putKey(client, 'swarm/deployed', 'yes', 2000)).revision > 0 ? true : undefined));
  }, 600_000);

  afterAll(async () => {
    for (const node of NODES) await runCommand('docker', ['rm', '-f', '-v', container(node)]);
    await runCommand('docker', ['network', 'rm', name]);
    // The nodes' containers ran in cgroups under a parent named for each node: empty now, removed.
    await removeTestCgroups(name);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('spreads the members one to a node as labelled, HAProxy beside etcd1; one leader, every member in `endpoint status`', async () => {
    const placed = async () => Promise.all(['etcd1', 'etcd2', 'etcd3', 'haproxy'].map(runningOn));
    await until('every service running', 120_000, async () => ((await placed()).every(Boolean) ? true : undefined));
    expect(await placed()).toEqual(['node1', 'node2', 'node3', 'node1']);
    const all = await until('every member answering on the overlay network', 60_000, statuses);
    expect(all.map(memberOf).sort()).toEqual(['etcd1', 'etcd2', 'etcd3']);
    expect(new Set(all.map((s) => s.Status.leader)).size).toBe(1);
    expect(await getKey(client, 'swarm/deployed')).toBe('yes');
  }, 120_000);

  it('a host lost: node3, holding the leader, killed outright under check\'s workload — the others serve, nothing acknowledged is lost; back, etcd3 rejoins with its data', async () => {
    const before = await until('every member answering', 60_000, statuses);
    const idOf = (member: string) => before.find((s) => memberOf(s) === member)!.Status.header.member_id;
    // The harder case: the leader's host. Leadership goes to etcd3 first (node1 keeps HAProxy, the way in).
    const leader = before[0]!.Status.leader;
    if (leader !== idOf('etcd3')) {
      const leaderMember = memberOf(before.find((s) => s.Status.header.member_id === leader)!);
      await must(etcdctl([`--endpoints=https://${leaderMember}:2379`, 'move-leader', BigInt(idOf('etcd3')).toString(16)]));
    }
    await until('etcd3 leading', 30_000, async () => ((await statuses())?.every((s) => s.Status.leader === idOf('etcd3')) ? true : undefined));
    const haproxy = { via: 'haproxy', endpoint: () => client };
    const workload = new Workload({ prefix: `${name}/check/`, keys: 10, clients: Array(6).fill(haproxy), watchers: [[haproxy], [haproxy]], rate: 150, callTimeoutMs: 2000, reads: 'linearizable', control: client, lab: name });
    await workload.start();
    let history;
    let restartedAt = 0;
    let rejoinedAt = 0;
    try {
      await until('the workload under way', 30_000, async () => (workload.operations.length >= 50 ? true : undefined));
      await must(runCommand('docker', ['kill', container('node3')]));
      const lostAt = workload.now();
      // The two left elect a leader and serve: acknowledged operations again, called well after the loss.
      await until('the cluster serving without node3', 60_000, async () => (workload.operations.filter((o) => o.outcome === 'ok' && o.callMs > lostAt + 3000).length >= 50 ? true : undefined));
      await putKey(client, 'swarm/while-node3-was-down', 'written', 5000);
      restartedAt = Date.now();
      await must(runCommand('docker', ['start', container('node3')]));
      const back = await until('etcd3 running on node3 again', 180_000, async () => ((await runningOn('etcd3')) === 'node3' ? true : undefined));
      expect(back).toBe(true);
      await until('etcd3 answering again', 120_000, async () => ((await statuses())?.length === 3 ? true : undefined));
      rejoinedAt = Date.now();
      const resumed = workload.operations.length;
      await until('the workload going on', 30_000, async () => (workload.operations.length >= resumed + 50 ? true : undefined));
    } finally {
      history = await workload.stop();
    }
    const checked = checkHistory(history);
    expect(checked.violations, JSON.stringify(checked.violations.slice(0, 3))).toEqual([]);
    expect(checked.ok).toBe(true);
    expect(checked.counts.ok).toBeGreaterThan(150);
    const c = checked.counts;
    console.log(
      `swarm, node3 (the leader's host) killed and back: ${c.operations} operations (ok ${c.ok}, failed ${c.failed}, unknown ${c.unknown}), ` +
        `longest unavailability through HAProxy ${longestUnavailable(history)} ms, etcd3 back in ${((rejoinedAt - restartedAt) / 1000).toFixed(1)} s after its node's start`,
    );
    // The same member (its ID: its data, not a new member), caught up to the others, holding what was written while it was gone.
    const after = await until('the three at the same applied index', 60_000, async () => {
      const all = await statuses();
      return all?.length === 3 && new Set(all.map((s) => s.Status.raftAppliedIndex)).size === 1 ? all : undefined;
    });
    expect(after.find((s) => memberOf(s) === 'etcd3')!.Status.header.member_id).toBe(idOf('etcd3'));
    // An ID alone would also fit a member bootstrapped anew on an empty volume: etcd says it restarted from its data.
    expect(await etcdLogOn('node3', 'etcd3')).toContain('restarting local member');
    const own = await etcdctl(['--endpoints=https://etcd3:2379', 'get', 'swarm/while-node3-was-down', '--print-value-only', '--consistency=s']);
    expect(own.output.split('\n').at(-1)).toBe('written');
  }, 600_000);

  it('a node drained: its member stops and waits, the others serve; active again (the README\'s recovery), it returns with its data', async () => {
    const before = await until('every member answering', 60_000, statuses);
    const etcd2 = before.find((s) => memberOf(s) === 'etcd2')!.Status.header.member_id;
    await must(on('node1', ['node', 'update', '--availability', 'drain', 'node2']));
    // Stopped, and its replacement pending on no node, not moved: no other node carries its label.
    const drained = await until('etcd2 stopped by the drain, its new task pending', 120_000, async () => {
      const list = await tasks('etcd2');
      return !list.some((t) => t.current === 'Running' || t.current === 'Starting') && list.some((t) => t.current === 'Pending' && t.node === '') ? list : undefined;
    });
    expect(drained.filter((t) => t.current === 'Running')).toEqual([]);
    expect((await etcdctl(['--endpoints=https://etcd2:2379', '--dial-timeout=2s', 'endpoint', 'health'])).code).not.toBe(0);
    await until('a write through HAProxy with etcd2 drained', 60_000, async () => ((await putKey(client, 'swarm/while-node2-drained', 'written', 2000)).revision > 0 ? true : undefined));
    await must(on('node1', ['node', 'update', '--availability', 'active', 'node2']));
    await until('etcd2 running on node2 again', 180_000, async () => ((await runningOn('etcd2')) === 'node2' ? true : undefined));
    const after = await until('the three at the same applied index', 120_000, async () => {
      const all = await statuses();
      return all?.length === 3 && new Set(all.map((s) => s.Status.raftAppliedIndex)).size === 1 ? all : undefined;
    });
    expect(after.find((s) => memberOf(s) === 'etcd2')!.Status.header.member_id).toBe(etcd2);
    expect(await etcdLogOn('node2', 'etcd2')).toContain('restarting local member');
    const own = await etcdctl(['--endpoints=https://etcd2:2379', 'get', 'swarm/while-node2-drained', '--print-value-only', '--consistency=s']);
    expect(own.output.split('\n').at(-1)).toBe('written');
  }, 600_000);
});


