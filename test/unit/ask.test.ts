// How etcd-lab asks the cluster right after a failure: a member that answers and follows the
// leader, never a dead one; transient failures asked again (idempotent calls only); the error
// names who did not answer. Fake members are HTTP servers on 127.0.0.1 behind a fake engine.
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadLab } from '../../src/config/load.js';
import { LABEL } from '../../src/config/topology.js';
import { UserError } from '../../src/errors.js';
import type { ContainerInfo, Engine } from '../../src/engine/engine.js';
import { listMembers, putKey } from '../../src/protocol/etcd-http.js';
import { LabRuntime } from '../../src/runtime/lab.js';
import { closedPort } from './net.js';

/** What a fake member answers: its raft view, and how it treats the other calls. */
interface FakeMember {
  id: string;
  leader: string;
  term: number;
  /** "ok": answers; "hang": never answers calls other than status; "leader-changed": etcd's 503. */
  calls: 'ok' | 'hang' | 'leader-changed';
  served: number;
}

const dir = mkdtempSync(join(tmpdir(), 'etcd-lab-ask-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(m: FakeMember): Promise<number> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url === '/v3/maintenance/status') {
        res.end(JSON.stringify({ header: { member_id: m.id }, leader: m.leader, raftTerm: String(m.term), raftIndex: '10', dbSize: '1', version: '3.5.16' }));
        return;
      }
      if (m.calls === 'hang') return; // a frozen member: the connection stays open, nothing comes back
      if (m.calls === 'leader-changed') {
        res.statusCode = 503;
        res.end(JSON.stringify({ code: 14, message: 'etcdserver: leader changed' }));
        return;
      }
      m.served += 1;
      res.end(JSON.stringify({ header: { member_id: m.id, revision: '5' }, members: [{ ID: m.id, name: `from-${m.id}` }] }));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

function container(member: string, port: number, state = 'running'): ContainerInfo {
  return { id: member, name: `lab-${member}`, labels: { [LABEL.member]: member }, image: 'x', state, status: '', hostPorts: { 2379: port }, networks: ['lab-net'] };
}

function runtimeWith(containers: ContainerInfo[]): LabRuntime {
  const lab = loadLab({ cwd: dir, overrides: [{ path: 'name', value: 'lab', source: 'test' }] });
  const engine = { containers: { list: async () => containers } } as unknown as Engine;
  const runtime = new LabRuntime(lab, engine);
  // The fake containers sit on the lab network, as real ones do.
  (runtime.topology as { network: string }).network = 'lab-net';
  return runtime;
}

const member = (id: string, leader: string, term: number, calls: FakeMember['calls'] = 'ok'): FakeMember => ({ id, leader, term, calls, served: 0 });

describe('LabRuntime.ask', () => {
  it('never asks a dead member or one cut off in an old term; asks one that follows the leader', async () => {
    const m = { etcd2: member('2', '3', 5), etcd3: member('3', '3', 5), etcd1: member('1', '1', 4) };
    const runtime = runtimeWith([container('etcd1', await serve(m.etcd1)), container('etcd2', await serve(m.etcd2)), container('etcd3', await serve(m.etcd3))]);
    for (let i = 0; i < 6; i++) await runtime.ask('member list', (e) => listMembers(e, 500), { idempotent: true });
    expect(m.etcd1.served).toBe(0);
    expect(m.etcd2.served + m.etcd3.served).toBe(6);
  });

  it('a leader just killed: waits for the others to elect a new one, then asks them', async () => {
    const etcd2 = member('2', '1', 4);
    const etcd3 = member('3', '1', 4);
    const runtime = runtimeWith([container('etcd1', await closedPort()), container('etcd2', await serve(etcd2)), container('etcd3', await serve(etcd3))]);
    setTimeout(() => Object.assign(etcd2, { leader: '3', term: 5 }) && Object.assign(etcd3, { leader: '3', term: 5 }), 400);
    const started = Date.now();
    await runtime.ask('member list', (e) => listMembers(e, 500), { idempotent: true, deadline: Date.now() + 5000 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(etcd2.served + etcd3.served).toBe(1);
  });

  it('an idempotent call that hangs on one member is asked of the next', async () => {
    const etcd1 = member('1', '1', 4, 'hang');
    const etcd2 = member('2', '1', 4);
    const etcd3 = member('3', '1', 4, 'leader-changed');
    const runtime = runtimeWith([container('etcd1', await serve(etcd1)), container('etcd2', await serve(etcd2)), container('etcd3', await serve(etcd3))]);
    await runtime.ask('member list', (e) => listMembers(e, 300), { idempotent: true, deadline: Date.now() + 5000 });
    expect(etcd2.served).toBe(1);
  });

  it('a call that is not idempotent is not sent again after a member did not answer: the outcome is unknown, and it says so', async () => {
    const etcd1 = member('1', '1', 4, 'hang');
    const etcd2 = member('2', '1', 4);
    const runtime = runtimeWith([container('etcd1', await serve(etcd1)), container('etcd2', await serve(etcd2))]);
    const error = await runtime
      .ask('put', (e) => putKey(e, 'k', 'v', 300), { idempotent: false, prefer: 'leader', deadline: Date.now() + 5000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toMatch(/put: etcd1 did not answer \(no answer in time\), so whether it was done is unknown/);
    expect(etcd2.served).toBe(0);
  });

  it('no quorum: gives up at the deadline naming each member and why', async () => {
    const etcd2 = member('2', '0', 6);
    const runtime = runtimeWith([container('etcd1', await closedPort()), container('etcd2', await serve(etcd2)), container('etcd3', 1, 'exited')]);
    const error = await runtime.ask('member list', (e) => listMembers(e, 300), { idempotent: true, deadline: Date.now() + 600 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(3);
    expect((error as UserError).message).toMatch(/etcd1: connection refused, etcd2: no leader \(term 6\), etcd3: container exited/);
  });

  it('fewer members running than a quorum: refuses at once, with no wait for an election that cannot end', async () => {
    const runtime = runtimeWith([container('etcd1', 1, 'exited'), container('etcd2', 1, 'exited'), container('etcd3', await serve(member('3', '0', 6)))]);
    const started = Date.now();
    const error = await runtime.awaitLeader(Date.now() + 10_000).catch((e: unknown) => e);
    expect((error as UserError).message).toMatch(/has no leader that a quorum \(2 of 3\) follows: etcd1: container exited, etcd2: container exited, etcd3: no leader/);
    expect(Date.now() - started).toBeLessThan(2000);
    const asked = await runtime.ask('member list', (e) => listMembers(e, 300), { idempotent: true, deadline: Date.now() + 10_000 }).catch((e: unknown) => e);
    expect(asked).toBeInstanceOf(UserError);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('an answer that is not transient (etcd refused the request itself) is not retried', async () => {
    const etcd1 = member('1', '1', 4);
    const runtime = runtimeWith([container('etcd1', await serve(etcd1)), container('etcd2', await serve(member('2', '1', 4)))]);
    let calls = 0;
    const error = await runtime
      .ask(
        'promote',
        async () => {
          calls += 1;
          throw new Error('/v3/cluster/member/promote: HTTP 400 {"code":9,"message":"etcdserver: can only promote a learner member which is in sync with leader"}');
        },
        { idempotent: true, deadline: Date.now() + 2000 },
      )
      .catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/in sync with leader/);
    expect(calls).toBe(1);
  });
});
