// The quorum suite: for 3 and 5 members and each fault kind (kill, pause, partition), with client
// traffic through HAProxy on loopback. Up to ⌊(N−1)/2⌋ members down: writes and linearizable reads
// work once the election settles. One more: writes are refused and status says quorum is lost.
// Back: the cluster converges and every acknowledged write is there with its value.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpResult } from '../../src/lab/up.js';
import { getKey, getPrefix, memberStatus, putKey, type Endpoint } from '../../src/protocol/etcd-http.js';
import type { FaultResult } from '../../src/lab/faults.js';
import type { LabStatus } from '../../src/runtime/status.js';
import { clientOf, createTestLab, skipE2E, type TestLab } from './lab-fixture.js';

const FAULTS = [
  { kind: 'kill', recover: 'start' },
  { kind: 'pause', recover: 'unpause' },
  { kind: 'partition', recover: 'heal' },
] as const;

/** Retry budget for a write or read once an election is under way. */
const SETTLE_MS = 15_000;
/** Per-call deadline: no client-side breaker, just this. */
const CALL_MS = 1_000;

class Client {
  readonly acked = new Map<string, string>();
  private n = 0;
  constructor(
    readonly endpoint: Endpoint,
    readonly prefix: string,
  ) {}

  private nextKey(): string {
    return `${this.prefix}${String(this.n++).padStart(4, '0')}`;
  }

  /**
   * Writes until one write is acknowledged, within the budget. Every attempt writes a fresh key:
   * an attempt that timed out may still commit later (a frozen member can deliver it after a later
   * write was acknowledged), so reusing its key would make "its value" ambiguous.
   */
  async writeSettled(): Promise<{ key: string; tries: number }> {
    const deadline = Date.now() + SETTLE_MS;
    for (let tries = 1; ; tries++) {
      const key = this.nextKey();
      const value = `${key}@${Date.now()}`;
      try {
        await putKey(this.endpoint, key, value, CALL_MS);
        this.acked.set(key, value);
        // Linearizable read through HAProxy returns what was just acknowledged.
        expect(await getKey(this.endpoint, key, { timeoutMs: CALL_MS * 3 })).toBe(value);
        return { key, tries };
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`no acknowledged write within ${SETTLE_MS} ms: ${(error as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Tries writes for `ms`; returns how many were acknowledged (each a fresh key, never reused). */
  async tryWritesFor(ms: number): Promise<{ attempts: number; acknowledged: number; slowestMs: number }> {
    const until = Date.now() + ms;
    let attempts = 0;
    let acknowledged = 0;
    let slowestMs = 0;
    while (Date.now() < until) {
      const key = this.nextKey();
      const value = `${key}@${Date.now()}`;
      const started = Date.now();
      attempts++;
      try {
        await putKey(this.endpoint, key, value, CALL_MS);
        this.acked.set(key, value);
        acknowledged++;
      } catch {
        // Refused or timed out. It may still commit later: never asserted absent.
      }
      slowestMs = Math.max(slowestMs, Date.now() - started);
    }
    return { attempts, acknowledged, slowestMs };
  }
}

// Both sizes and both modes (plain HTTP; TLS with client certificates on every hop, HAProxy passing
// TLS through): `make test` runs 3 members plain and 5 members TLS, `make soak` every combination.
const ALL = process.env.ETCD_LAB_QUORUM_ALL === '1';
const LABS = [
  { members: 3, tls: false },
  { members: 5, tls: true },
  ...(ALL ? [
    { members: 5, tls: false },
    { members: 3, tls: true },
  ] : []),
];

describe.skipIf(skipE2E).each(LABS)('quorum with $members members, TLS $tls', ({ members, tls }) => {
  let lab: TestLab;
  let endpoint: Endpoint;
  const tolerated = (members - 1) / 2;

  beforeAll(async () => {
    lab = await createTestLab(`q${members}${tls ? 't' : ''}`, { members, tls: { enabled: tls } });
    const up = await lab.json<UpResult>(['up']);
    expect(up.clientEndpoint.startsWith(tls ? 'https://' : 'http://')).toBe(true);
    endpoint = clientOf(lab, up.clientEndpoint);
  });
  afterAll(async () => lab?.remove());

  const status = () => lab.json<LabStatus>(['status']);
  const act = (action: string, targets: string[]) => lab.json<FaultResult>([action, ...targets]);

  /**
   * HAProxy routes to the leader: status says so, and a member asked through HAProxy is the leader
   * (a connection kept from before the election is closed by HAProxy once the new leader leads).
   */
  const expectRoutedToLeader = async () => {
    let s = await status();
    let answeredBy: string | undefined;
    for (let deadline = Date.now() + 5000; Date.now() < deadline; s = await status()) {
      const leader = s.members.find((m) => m.isLeader);
      answeredBy = await memberStatus(endpoint, CALL_MS).then((a) => a.memberId).catch(() => undefined);
      if (leader && s.haproxy.routesTo?.join() === leader.name && answeredBy === leader.memberId) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    const leader = s.members.find((m) => m.isLeader);
    expect({ routesTo: s.haproxy.routesTo, answeredBy: s.members.find((m) => m.memberId === answeredBy)?.name }).toEqual({ routesTo: [leader?.name], answeredBy: leader?.name });
  };

  it.each(FAULTS)('$kind: tolerates ⌊(N−1)/2⌋, refuses writes one past it, converges with every acknowledged write', async ({ kind, recover }) => {
    const client = new Client(endpoint, `quorum/${kind}/`);
    await client.writeSettled();
    await expectRoutedToLeader();

    // Up to the tolerated number down, the leader first: an election each time it is the leader.
    const victims: string[] = [];
    for (let i = 0; i < tolerated; i++) {
      const r = await act(kind, ['leader']);
      victims.push(...r.members);
      expect(r.state).toMatchObject({ alive: members - victims.length, held: true });
      // The leader went each time: an election followed, and someone else won it.
      expect(r.members).toEqual([r.leaderBefore]);
      expect(r.election?.leader).toBeDefined();
      expect(r.election?.leader).not.toBe(r.leaderBefore);
      await client.writeSettled();
      await client.writeSettled();
      const s = await status();
      expect(s.quorum.held).toBe(true);
      expect(s.members.filter((m) => m.isLeader)).toHaveLength(1);
      expect(s.members.find((m) => m.isLeader)!.name).not.toBe(victims.at(-1));
      await expectRoutedToLeader();
    }

    // One more: quorum is lost. Writes are refused within the client deadline.
    const alive = (await status()).members.filter((m) => !victims.includes(m.name)).map((m) => m.name);
    const last = await act(kind, ['--no-wait', alive[0]!]);
    victims.push(...last.members);
    expect(last.state.held).toBe(false);
    const refused = await client.tryWritesFor(4000);
    expect(refused.attempts).toBeGreaterThan(0);
    expect(refused.acknowledged).toBe(0);
    expect(refused.slowestMs).toBeLessThan(CALL_MS + 500);
    let lost = await status();
    expect(lost.quorum.held).toBe(false);
    expect(lost.summary).toMatch(/quorum LOST/);
    // The survivors still answer HAProxy's checks, but follow no leader: HAProxy takes them out of
    // rotation, so no client is sent to a member that can only make it wait.
    const survivors = () => lost.members.filter((m) => !victims.includes(m.name));
    const outOfRotation = () => survivors().every((m) => m.backend === 'DOWN') && lost.haproxy.routesTo?.length === 0;
    for (let deadline = Date.now() + 10_000; Date.now() < deadline && !outOfRotation(); ) {
      await new Promise((r) => setTimeout(r, 200));
      lost = await status();
    }
    for (const m of survivors()) expect(`${m.name} ${m.reason} ${m.backend}`).toBe(`${m.name} RAFT NO LEADER DOWN`);
    expect(lost.haproxy.routesTo).toEqual([]);

    // Back: every member returns, the cluster converges, nothing acknowledged is missing.
    const back = await act(recover, []);
    expect(back.members.sort()).toEqual([...victims].sort());
    expect(back.state).toMatchObject({ alive: members, held: true });
    const healed = await status();
    expect(healed.members.every((m) => m.healthy && m.backend === 'UP')).toBe(true);
    expect(healed.members.filter((m) => m.isLeader)).toHaveLength(1);
    await expectRoutedToLeader();

    const { values } = await getPrefix(endpoint, client.prefix, { timeoutMs: 5000 });
    for (const [key, value] of client.acked) expect(values.get(key), key).toBe(value);
    // And every member holds them in its own copy (serializable reads, member by member).
    for (const m of healed.members) {
      const deadline = Date.now() + 5000;
      let local = await getPrefix(clientOf(lab, `${tls ? 'https' : 'http'}://127.0.0.1:${m.hostPort}`), client.prefix, { serializable: true });
      while ([...client.acked].some(([k, v]) => local.values.get(k) !== v) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        local = await getPrefix(clientOf(lab, `${tls ? 'https' : 'http'}://127.0.0.1:${m.hostPort}`), client.prefix, { serializable: true });
      }
      for (const [key, value] of client.acked) expect(local.values.get(key), `${m.name} ${key}`).toBe(value);
    }
  });

  if (members === 3) {
    it('stop leader hands over gracefully (an election without a quorum gap); start brings it back', async () => {
      const client = new Client(endpoint, 'quorum/stop/');
      const stopped = await act('stop', ['leader']);
      expect(stopped.members).toEqual([stopped.leaderBefore]);
      expect(stopped.election?.leader).toBeDefined();
      expect(stopped.election!.leader).not.toBe(stopped.leaderBefore);
      expect(stopped.state).toMatchObject({ alive: 2, held: true, tolerates: 0 });
      await client.writeSettled();
      const started = await act('start', []);
      expect(started.members).toEqual(stopped.members);
      expect(started.state).toMatchObject({ alive: 3, held: true });
      const { values } = await getPrefix(endpoint, client.prefix);
      for (const [key, value] of client.acked) expect(values.get(key), key).toBe(value);
    });
  }

  if (members === 5) {
    it('a 3:2 split: the majority serves through HAProxy; the minority has no leader and HAProxy marks it DOWN, then UP after heal', async () => {
      const client = new Client(endpoint, 'quorum/split/');
      const cut = await act('partition', ['leader', (await status()).members.find((m) => !m.isLeader)!.name]);
      expect(cut.members).toHaveLength(2);
      expect(cut.state).toMatchObject({ alive: 3, held: true });
      await client.writeSettled();

      // The minority answers on its own API — it just has no leader — and HAProxy stops routing to
      // it; the majority, once its election settles, is healthy and UP.
      const deadline = Date.now() + SETTLE_MS;
      let s = await status();
      const minority = () => s.members.filter((m) => cut.members.includes(m.name));
      const majority = () => s.members.filter((m) => !cut.members.includes(m.name));
      const settled = () =>
        minority().every((m) => m.backend === 'DOWN' && m.reason === 'RAFT NO LEADER') && majority().every((m) => m.healthy && m.backend === 'UP');
      while (!settled() && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        s = await status();
      }
      for (const m of minority()) {
        expect(m.partitioned, m.name).toBe(true);
        expect(m.healthy, m.name).toBe(false);
        expect(m.reason, m.name).toBe('RAFT NO LEADER');
        expect(m.backend, m.name).toBe('DOWN');
      }
      for (const m of majority()) expect(m.healthy && m.backend === 'UP', `${m.name}: ${m.reason} ${m.backend}`).toBe(true);
      expect(majority().filter((m) => m.isLeader)).toHaveLength(1);
      for (let i = 0; i < 5; i++) await client.writeSettled();

      await act('heal', []);
      s = await status();
      expect(s.members.every((m) => m.healthy && m.backend === 'UP' && !m.partitioned)).toBe(true);
      const { values } = await getPrefix(endpoint, client.prefix);
      for (const [key, value] of client.acked) expect(values.get(key), key).toBe(value);
    });
  }
});
