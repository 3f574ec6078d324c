// `etcd-lab loss`, `blackhole` and `delay`: peer traffic impaired with iptables (and for delay a
// forwarder) in a member's own network namespace (no netem on this kernel), undone by `heal`. What they must do to raft, to
// HAProxy and to clients, and that nothing of them is left behind.
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABEL } from '../../src/config/topology.js';
import type { UpResult } from '../../src/lab/up.js';
import { getKey, putKey, type Endpoint } from '../../src/protocol/etcd-http.js';
import type { FaultResult } from '../../src/lab/faults.js';
import type { LabStatus } from '../../src/runtime/status.js';
import { clientOf, createTestLab, skipE2E, type TestLab } from './lab-fixture.js';

const docker = new Docker();

/** Writes through HAProxy until one is acknowledged (a new key each try), within `ms`. */
async function writeWithin(endpoint: Endpoint, key: string, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (let i = 0; ; i++) {
    const value = `${key}#${i}`;
    try {
      await putKey(endpoint, `${key}/${i}`, value, 1000);
      expect(await getKey(endpoint, `${key}/${i}`, { timeoutMs: 3000 })).toBe(value);
      return `${key}/${i}`;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`no acknowledged write within ${ms} ms: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Packets the helper's rules dropped so far, coming in and going out (iptables' own counters). */
async function droppedPackets(helperId: string): Promise<{ in: number; out: number }> {
  const count = async (chain: string) => {
    const exec = await docker.getContainer(helperId).exec({ Cmd: ['iptables', '-L', chain, '-v', '-n', '-x'], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({});
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    // Rule lines start with their packet count; the multiplexed stream's 8-byte frame headers are dropped first.
    const text = Buffer.concat(chunks).toString('latin1').replace(/[\x00-\x08]/g, '');
    return text.split('\n').filter((l) => /DROP/.test(l)).reduce((n, l) => n + Number(l.trim().split(/\s+/)[0]), 0);
  };
  return { in: await count('ETCD_LAB_IN'), out: await count('ETCD_LAB_OUT') };
}

describe.skipIf(skipE2E)('network faults: loss, blackhole and delay', () => {
  let lab: TestLab;
  let endpoint: Endpoint;
  const status = () => lab.json<LabStatus>(['status']);
  const helpers = async () => docker.listContainers({ all: true, filters: { label: [`${LABEL.lab}=${lab.name}`, `${LABEL.role}=impairment`] } });

  beforeAll(async () => {
    lab = await createTestLab('netf');
    const up = await lab.json<UpResult>(['up']);
    endpoint = clientOf(lab, up.clientEndpoint);
  });
  afterAll(async () => lab?.remove());

  it('blackhole leader: the others elect a leader, HAProxy takes the deaf member out, writes go on; heal brings it back whole', async () => {
    const before = await status();
    const oldLeader = before.members.find((m) => m.isLeader)!.name;
    const r = await lab.json<FaultResult>(['blackhole', 'leader']);
    expect(r.members).toEqual([oldLeader]);
    expect(r.done[0]).toMatch(/hears nothing from its peers, one way/);
    // Deaf, the old leader is out of the quorum: an election among the other two.
    expect(r.state).toMatchObject({ alive: 2, held: true });
    expect(r.election?.leader).toBeDefined();
    expect(r.election?.leader).not.toBe(oldLeader);
    expect((await helpers()).map((h) => h.State)).toEqual(['running']);

    const key = await writeWithin(endpoint, 'netf/blackhole', 10_000);
    // The deaf member still answers on its client port, but follows no leader it can hear: HAProxy
    // takes it out of rotation (it would only make clients wait).
    let s = await status();
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && s.members.find((m) => m.name === oldLeader)!.backend !== 'DOWN'; ) {
      await new Promise((res) => setTimeout(res, 200));
      s = await status();
    }
    const deaf = s.members.find((m) => m.name === oldLeader)!;
    expect(`${deaf.name} ${deaf.backend} ${deaf.state}`).toBe(`${oldLeader} DOWN running`);
    expect(s.haproxy.routesTo).toEqual([r.election!.leader]);

    const healed = await lab.json<FaultResult>(['heal']);
    expect(healed.members).toEqual([oldLeader]);
    expect(healed.done[0]).toMatch(/hears its peers again/);
    expect(await helpers()).toEqual([]);
    const after = await status();
    expect(after.members.every((m) => m.healthy && m.backend === 'UP')).toBe(true);
    // It caught up: the write made while it was deaf is in its own copy.
    const own = clientOf(lab, `http://127.0.0.1:${after.members.find((m) => m.name === oldLeader)!.hostPort}`);
    for (const deadline = Date.now() + 5000; ; await new Promise((res) => setTimeout(res, 100))) {
      const value = await getKey(own, key, { serializable: true, timeoutMs: 1000 }).catch(() => undefined);
      if (value !== undefined || Date.now() > deadline) {
        expect(value).toBe(`netf/blackhole#${key.split('/').at(-1)}`);
        break;
      }
    }
  });

  it('loss on a follower, 50%: said as such, writes still acknowledged; heal takes the rules out', async () => {
    const follower = (await status()).members.find((m) => !m.isLeader)!.name;
    const r = await lab.json<FaultResult>(['loss', follower, '--percent', '50']);
    expect(r.done).toEqual([`${follower}: 50% of its peer packets dropped, both ways (clients still reach it)`]);
    expect(r.state).toMatchObject({ alive: 3, held: true });
    const [helper] = await helpers();
    expect(helper?.Labels['io.etcd-lab.impairment']).toBe('loss');
    await writeWithin(endpoint, 'netf/loss', 10_000);
    // The rules are really there, in the member's own namespace, and really drop its peer traffic.
    const dropped = await droppedPackets(helper!.Id);
    expect(dropped.in).toBeGreaterThan(0);
    expect(dropped.out).toBeGreaterThan(0);
    // The status says so, and a second impairment of the same member is refused in words, not stacked.
    expect((await status()).members.find((m) => m.name === follower)?.impaired).toBe('loss');
    const again = await lab.cli(['blackhole', follower, '--no-wait']);
    expect(again).toExitWith(3);
    expect(again.stderr).toMatch(new RegExp(`${follower} is already impaired \\(loss\\)`));
    expect(await helpers()).toHaveLength(1);
    // check will not start under a fault it did not make.
    const check = await lab.cli(['check', '--faults', '0']);
    expect(check).toExitWith(3);
    expect(check.stderr).toMatch(/check needs every member's network whole first: etcd\d \(loss\) impaired/);
    await lab.json<FaultResult>(['heal', follower]);
    expect(await helpers()).toEqual([]);
    expect((await status()).members.every((m) => m.healthy && m.backend === 'UP')).toBe(true);
    // On the leader: it may well stay leader, so no election is waited for (it once waited 15 s for one).
    const onLeader = await lab.json<FaultResult>(['loss', 'leader', '--percent', '10']);
    expect(onLeader.election).toBeUndefined();
    expect(onLeader.state).toMatchObject({ alive: 3, held: true });
    await lab.json<FaultResult>(['heal']);
    expect(await helpers()).toEqual([]);
  });

  it("delay leader, 300 ms: every acknowledged write waits for the followers' answers, now 300 ms late; heal takes it away", async () => {
    const latencies = async (tag: string) => {
      const ms: number[] = [];
      for (let i = 0; i < 12; i++) {
        const started = Date.now();
        await putKey(endpoint, `netf/delay/${tag}/${i}`, 'v', 5000);
        ms.push(Date.now() - started);
      }
      return ms.sort((a, b) => a - b)[6]!;
    };
    const before = await latencies('before');
    const r = await lab.json<FaultResult>(['delay', 'leader', '--ms', '300']);
    expect(r.done[0]).toMatch(/its own connections to its peers held 300 ms each way/);
    expect(r.state).toMatchObject({ alive: 3, held: true });
    // The leader hears its followers' acknowledgements on the streams it dialled: through the forwarder.
    let during = await latencies('during');
    for (let i = 0; i < 20 && during < 300; i++) during = await latencies(`during-${i}`);
    expect(before).toBeLessThan(150);
    expect(during).toBeGreaterThanOrEqual(300);
    expect((await status()).members.find((m) => m.name === r.members[0])?.impaired).toBe('delay');
    await lab.json<FaultResult>(['heal']);
    expect(await helpers()).toEqual([]);
    let after = await latencies('after');
    for (let i = 0; i < 20 && after >= 150; i++) after = await latencies(`after-${i}`);
    expect(after).toBeLessThan(150);
  });

  it('odd input: --percent outside 1–99 is refused with exit 2 and nothing started', async () => {
    for (const percent of ['0', '100', '2.5', 'x']) {
      const r = await lab.cli(['loss', 'etcd1', '--percent', percent]);
      expect(r).toExitWith(2);
      expect(r.stderr).toMatch(/--percent takes a whole number from 1 to 99/);
    }
    for (const ms of ['0', '10001', '1.5']) {
      const r = await lab.cli(['delay', 'etcd1', '--ms', ms]);
      expect(r).toExitWith(2);
      expect(r.stderr).toMatch(/--ms takes a whole number from 1 to 10000/);
    }
    expect(await helpers()).toEqual([]);
  });

  it('a member killed while impaired loses the rules with its namespace: the helper goes, start finds it whole', async () => {
    await lab.json<FaultResult>(['loss', 'etcd2']);
    expect(await helpers()).toHaveLength(1);
    await lab.json<FaultResult>(['kill', 'etcd2']);
    expect(await helpers()).toEqual([]);
    await lab.json<FaultResult>(['start']);
    const s = await status();
    expect(s.members.every((m) => m.healthy && !m.impaired)).toBe(true);
  });

  it('a helper still there at the end goes with the lab: down removes it', async () => {
    await lab.json<FaultResult>(['loss', 'etcd3', '--no-wait']);
    expect(await helpers()).toHaveLength(1);
    const down = await lab.json<{ removed: { containers: string[] } }>(['down']);
    expect(down.removed.containers.some((c) => c.endsWith('-etcd3-loss'))).toBe(true);
    expect(await helpers()).toEqual([]);
  });
});
