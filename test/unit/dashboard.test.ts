// `etcd-lab dashboard` against the fake engine and a fake etcd (no Docker, no browser): what a
// request must carry, what the page is told, that its buttons run the CLI's own operations under
// the lab's lock, and that the server stops by itself when the lab goes down.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dashboard, roleOf, type DashboardResult } from '../../src/lab/dashboard.js';
import { silentReporter } from '../../src/progress.js';
import { eventLogPath, parseEvents } from '../../src/runtime/event-log.js';
import { acquireLabLock } from '../../src/runtime/lock.js';
import type { MemberReport } from '../../src/runtime/status.js';
import { FakeEngine } from './fake-engine.js';
import type { FakeCluster } from './fake-etcd.js';
import { startFakeLab } from './fake-lab.js';

let dir: string;
let engine: FakeEngine;
let cluster: FakeCluster;
let stop: AbortController;
let served: Promise<DashboardResult>;
let url: URL;
const savedLockDir = process.env.ETCD_LAB_LOCK_DIR;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'etcd-lab-dashboard-'));
  process.env.ETCD_LAB_LOCK_DIR = join(dir, 'locks');
  engine = new FakeEngine();
  cluster = await startFakeLab(dir, engine, 3);
  stop = new AbortController();
  let listening!: (u: string) => void;
  const ready = new Promise<string>((resolve) => (listening = resolve));
  served = dashboard({ cwd: dir, env: {}, engine, intervalMs: 100, signal: stop.signal, onListening: listening }, silentReporter);
  url = new URL(await Promise.race([ready, served.then(() => 'stopped early')]));
});
afterEach(async () => {
  stop.abort();
  await served.catch(() => {});
  await cluster.close();
  process.env.ETCD_LAB_LOCK_DIR = savedLockDir;
  if (savedLockDir === undefined) delete process.env.ETCD_LAB_LOCK_DIR;
  rmSync(dir, { recursive: true, force: true });
});

/** A raw request, so that Host, headers and method are exactly what a browser or an attacker would send. */
function send(path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: url.port, path, method: opts.method ?? 'GET', headers: { Host: url.host, ...opts.headers } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const token = () => url.searchParams.get('token')!;
const act = (action: string, member: string, headers: Record<string, string> = { 'X-Etcd-Lab-Token': token(), 'Content-Type': 'application/json' }) =>
  send('/api/action', { method: 'POST', headers, body: JSON.stringify({ action, member }) });

describe('etcd-lab dashboard', () => {
  it('listens on 127.0.0.1 with a token of its own in the URL it prints', () => {
    expect(url.hostname).toBe('127.0.0.1');
    expect(token()).toMatch(/^[A-Za-z0-9_-]{24}$/);
  });

  it('refuses every GET without the token, and with a wrong one', async () => {
    for (const path of ['/', '/dashboard.js', '/events', '/api/state', `/?token=${token().slice(1)}x`]) expect((await send(path)).status, path).toBe(403);
  });

  it('serves the page with the token, a strict CSP, no Referer and no CORS grant', async () => {
    const page = await send(`/?token=${token()}`, { headers: { Origin: 'https://evil.example' } });
    expect(page.status).toBe(200);
    expect(page.body).toContain(`content="${token()}"`);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['access-control-allow-origin']).toBeUndefined();
    expect((await send(`/dashboard.js?token=${token()}`)).body).toContain('EventSource');
  });

  it('refuses a Host that is not its own (DNS rebinding), even with the token', async () => {
    expect((await send(`/?token=${token()}`, { headers: { Host: `evil.example:${url.port}` } })).status).toBe(403);
  });

  it('changes nothing for a POST without the token header, or one that is not JSON, or for a preflight', async () => {
    expect((await act('kill', 'etcd2', { 'Content-Type': 'application/json' })).status).toBe(403);
    expect((await send(`/api/action?token=${token()}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"action":"kill","member":"etcd2"}' })).status).toBe(403);
    expect((await act('kill', 'etcd2', { 'X-Etcd-Lab-Token': token(), 'Content-Type': 'text/plain' })).status).toBe(415);
    const preflight = await send('/api/action', { method: 'OPTIONS', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' } });
    expect(preflight.status).toBe(405);
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    expect(engine.calls.filter((c) => c.startsWith('kill container'))).toEqual([]);
    expect([...engine.containersById.values()].every((c) => c.state === 'running')).toBe(true);
  });

  it('refuses an unknown action or member with what it takes', async () => {
    const bad = JSON.parse((await act('rm -rf', 'etcd2')).body);
    expect(bad.error).toContain('unknown action');
    expect(bad.hint).toContain('kill');
    expect(JSON.parse((await act('kill', 'etcd9')).body).hint).toContain('etcd1, etcd2, etcd3, leader');
  });

  it('a button runs the CLI\'s own fault: the member is killed, and the event log says so', async () => {
    const res = await act('kill', 'etcd3');
    expect(res.status, res.body).toBe(200);
    expect(JSON.parse(res.body).message).toContain('etcd3: SIGKILL');
    const container = [...engine.containersById.values()].find((c) => c.name === 'fakelab-etcd3')!;
    expect(container.state).toBe('exited');
    const { events } = parseEvents(readFileSync(eventLogPath(join(dir, 'generated')), 'utf8'));
    expect(events.map((e) => `${e.phase} ${e.op} ${e.detail ?? ''}`.trim())).toEqual(['start kill etcd3', 'point kill etcd3', 'end kill']);
  });

  it('refuses a button at once, with the holder named, while another command holds the lab\'s lock', async () => {
    const lock = await acquireLabLock('fakelab', 'scale');
    try {
      const asked = Date.now();
      const res = await act('kill', 'etcd2');
      expect(res.status).toBe(409);
      // At once, not after the 10 s a command waits for the lock.
      expect(Date.now() - asked).toBeLessThan(2000);
      expect(JSON.parse(res.body).error).toMatch(/busy: .*scale/);
    } finally {
      lock.release();
    }
    expect([...engine.containersById.values()].every((c) => c.state === 'running')).toBe(true);
  });

  it('tells a page everything so far, then a tick a read, with the events other commands append', async () => {
    const stream = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: url.port, path: `/events?token=${token()}`, headers: { Host: url.host } }, (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
          if ((text.match(/event: tick/g) ?? []).length >= 2) {
            req.destroy();
            resolve(text);
          }
        });
      });
      req.on('error', reject);
      req.end();
    });
    const hello = JSON.parse(/event: hello\ndata: (.*)\n/.exec(stream)![1]!);
    expect(hello.lab).toBe('fakelab');
    const tick = JSON.parse(/event: tick\ndata: (.*)\n/.exec(stream)![1]!);
    expect(tick.sample.leader).toBe('etcd1');
    expect(tick.sample.members.map((m: { name: string; role: string }) => `${m.name} ${m.role}`)).toEqual(['etcd1 leader', 'etcd2 follower', 'etcd3 follower']);
  });

  it('stops by itself when the lab goes down', async () => {
    for (const c of [...engine.containersById.values()]) await engine.containers.remove(c.id);
    expect((await served).stopped).toBe('the lab went down');
  });

  it('goes on while a command that holds the lock has the members down (a snapshot restore), and stops once it is done', async () => {
    const lock = await acquireLabLock('fakelab', 'snapshot restore');
    let settled = false;
    void served.then(() => (settled = true));
    try {
      for (const c of [...engine.containersById.values()]) await engine.containers.remove(c.id);
      await new Promise((r) => setTimeout(r, 4000)); // past the 3 s a lab without members is given
      expect(settled).toBe(false);
    } finally {
      lock.release();
    }
    expect((await served).stopped).toBe('the lab went down');
  });
});

describe('etcd-lab dashboard refuses', () => {
  it('a --bind that is not an IPv4 address, before it listens', async () => {
    const dir2 = mkdtempSync(join(tmpdir(), 'etcd-lab-dashboard-'));
    const engine2 = new FakeEngine();
    const cluster2 = await startFakeLab(dir2, engine2, 1);
    try {
      await expect(dashboard({ cwd: dir2, env: {}, engine: engine2, bind: '::1' }, silentReporter)).rejects.toThrow('--bind takes an IPv4 address');
    } finally {
      await cluster2.close();
      rmSync(dir2, { recursive: true, force: true });
    }
  });
});

describe('a member\'s role as the page draws it', () => {
  const m = (over: Partial<MemberReport>): MemberReport => ({ name: 'etcd2', address: '', container: '', state: 'running', partitioned: false, healthy: true, reason: '', isLeader: false, alarms: [], backend: 'UP', raftTerm: 3, leaderId: '1', ...over });
  it('says what a person needs to know first', () => {
    expect(roleOf(m({ state: 'exited' }), 'etcd1')).toBe('down');
    expect(roleOf(m({ state: 'paused' }), 'etcd1')).toBe('paused');
    expect(roleOf(m({ partitioned: true }), 'etcd1')).toBe('cut off');
    expect(roleOf(m({ raftTerm: undefined }), 'etcd1')).toBe('unreachable');
    expect(roleOf(m({ learner: true }), 'etcd1')).toBe('learner');
    expect(roleOf(m({}), 'etcd2')).toBe('leader');
    expect(roleOf(m({ leaderId: '0' }), undefined)).toBe('no leader');
    expect(roleOf(m({}), 'etcd1')).toBe('follower');
  });
});
