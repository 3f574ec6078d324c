// The Kubernetes-shaped client's own checks, against a small in-memory API server that can be told
// to misbehave: one that loses an acknowledged write, or drops a watch event, must be caught; one
// that compacts under the watch (410 Gone, then a re-list) must not be blamed.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeWorkload, WIDGETS } from '../../src/workload/kube.js';

interface Stored {
  size: number;
  rv: number;
}

/** The few calls KubeWorkload makes, with Kubernetes' answers (201, 409, 404, 410 Gone). */
class FakeApiServer {
  private readonly objects = new Map<string, Stored>();
  private readonly events: { type: string; name: string; size: number; rv: number }[] = [];
  private readonly watchers = new Set<{ res: http.ServerResponse; after: number }>();
  private rv = 100;
  private compactedRv = 0;
  compactAtNextWrite = false;
  loseNextWrite = false;
  dropNextEvent = false;
  /** A create of this name is answered 201 and never stored. */
  loseCreateOf?: string;
  /** Writes answered so far: what the tests' windows wait on. */
  writes = 0;
  readonly server = http.createServer((req, res) => this.handle(req, res));
  readonly base = `/apis/${WIDGETS.group}/${WIDGETS.version}/namespaces/${WIDGETS.namespace}/${WIDGETS.plural}`;

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const w of this.watchers) w.res.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }

  /** Ends every watch and forgets history up to the next write: a watch resumed from before it is told 410 Gone. */
  compact(): void {
    this.compactAtNextWrite = true;
    for (const w of this.watchers) w.res.destroy();
  }

  private object(name: string, s: Stored) {
    return { apiVersion: `${WIDGETS.group}/${WIDGETS.version}`, kind: WIDGETS.kind, metadata: { name, resourceVersion: String(s.rv) }, spec: { size: s.size } };
  }

  private record(type: string, name: string, s: Stored): void {
    this.events.push({ type, name, size: s.size, rv: s.rv });
    if (this.compactAtNextWrite) {
      this.compactAtNextWrite = false;
      this.compactedRv = s.rv;
    }
    if (this.dropNextEvent && type !== 'DELETED') {
      this.dropNextEvent = false;
      return;
    }
    for (const w of this.watchers) w.res.write(`${JSON.stringify({ type, object: this.object(name, s) })}\n`);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://x');
      const name = url.pathname.startsWith(`${this.base}/`) ? url.pathname.slice(this.base.length + 1) : undefined;
      const send = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      const input = body ? (JSON.parse(body) as { metadata?: { name: string; resourceVersion?: string }; spec?: { size: number }; preconditions?: { resourceVersion?: string } }) : {};
      if (req.method === 'GET' && !name && url.searchParams.get('watch')) {
        const after = Number(url.searchParams.get('resourceVersion'));
        if (after < this.compactedRv) return res.writeHead(200).end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410 } })}\n`);
        res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
        for (const e of this.events.filter((e) => e.rv > after)) res.write(`${JSON.stringify({ type: e.type, object: this.object(e.name, e) })}\n`);
        const watcher = { res, after };
        this.watchers.add(watcher);
        res.on('close', () => this.watchers.delete(watcher));
        return;
      }
      if (req.method === 'GET' && !name) return send(200, { metadata: { resourceVersion: String(this.rv) }, items: [...this.objects].map(([n, s]) => this.object(n, s)) });
      const have = name ? this.objects.get(name) : undefined;
      if (req.method === 'GET') return have ? send(200, this.object(name!, have)) : send(404, { message: 'not found' });
      if (req.method === 'POST') {
        const n = input.metadata!.name;
        if (this.objects.has(n)) return send(409, { message: 'already exists' });
        const s = { size: input.spec!.size, rv: ++this.rv };
        this.writes += 1;
        if (this.loseNextWrite) this.loseNextWrite = false;
        else if (this.loseCreateOf === n) this.loseCreateOf = undefined;
        else {
          this.objects.set(n, s);
          this.record('ADDED', n, s);
        }
        return send(201, this.object(n, s));
      }
      if (!have) return send(404, { message: 'not found' });
      const expected = req.method === 'PUT' ? input.metadata?.resourceVersion : input.preconditions?.resourceVersion;
      if (expected !== String(have.rv)) return send(409, { message: 'conflict' });
      this.writes += 1;
      if (req.method === 'PUT') {
        const s = { size: input.spec!.size, rv: ++this.rv };
        this.objects.set(name!, s);
        this.record('MODIFIED', name!, s);
        return send(200, this.object(name!, s));
      }
      this.objects.delete(name!);
      const gone = { size: have.size, rv: ++this.rv };
      this.record('DELETED', name!, gone);
      return send(200, this.object(name!, gone));
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for `done` (polled): the tests' windows follow what the fake saw, not the clock, so a busy machine only makes them longer. */
async function until(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !done(); await sleep(5)) {
    if (Date.now() > deadline) throw new Error(`never happened within ${timeoutMs} ms: ${what}`);
  }
}

describe('KubeWorkload', () => {
  let fake: FakeApiServer;
  afterEach(() => fake?.close());

  /**
   * Starts the workload; once it has written a while, plants a fault; once the workload met the
   * fault (`met`) and wrote on past it, stops and returns what it found.
   */
  async function run(plant: (fake: FakeApiServer) => void, met: (fake: FakeApiServer) => boolean = () => true) {
    fake = new FakeApiServer();
    const api = await fake.listen();
    const workload = await new KubeWorkload({ api, prefix: 'w', objects: 4, callTimeoutMs: 2000, pauseMs: 1 }).start();
    await until('20 writes before the fault', () => fake.writes >= 20);
    plant(fake);
    await until('the workload met the fault', () => met(fake));
    const after = fake.writes;
    await until('20 writes after the fault', () => fake.writes >= after + 20);
    return workload.stop();
  }

  it('a server that keeps its word: no violation, every change watched', async () => {
    const result = await run(() => {});
    expect(result.violations).toEqual([]);
    expect(result.acknowledged).toBeGreaterThan(20);
    expect(result.watchEvents).toBeGreaterThanOrEqual(result.acknowledged);
  });

  it('an acknowledged create that was never stored is caught', async () => {
    const result = await run(
      (f) => (f.loseNextWrite = true),
      (f) => !f.loseNextWrite,
    );
    expect(result.violations.length).toBeGreaterThan(0);
    expect(result.violations.join('\n')).toMatch(/HTTP 404|acknowledged size|expecting size/);
  });

  it("a lost end marker is reported from the list, without waiting out the watch's deadline", { timeout: 10_000 }, async () => {
    const result = await run((f) => (f.loseCreateOf = 'wend'));
    expect(result.violations).toEqual([expect.stringMatching(/^wend: the end marker's create was acknowledged at resourceVersion \d+, but a later list does not have it$/)]);
  });

  it('a watch event that never arrives is caught', async () => {
    const result = await run(
      (f) => (f.dropNextEvent = true),
      (f) => !f.dropNextEvent,
    );
    expect(result.violations.join('\n')).toMatch(/watch: /);
  });

  it('a compaction under the watch: told 410 Gone, it re-lists, and nothing is blamed', async () => {
    const result = await run(
      (f) => f.compact(),
      (f) => !f.compactAtNextWrite,
    );
    expect(result.relists).toBeGreaterThanOrEqual(1);
    expect(result.violations).toEqual([]);
  });
});
