// The runtime boundary's deadlines and error reports, against a tiny fake engine on a unix socket:
// a hung engine, its refusals, no engine at all. No Docker needed. (Child processes: run.test.ts.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DockerEngine } from '../../src/engine/docker.js';
import { UserError } from '../../src/errors.js';
import { failure } from './failure.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** An engine that answers every request with `handler`, on a socket of its own. */
async function fakeEngine(
  dir: string,
  handler: Handler,
  deadlines: { engineMs: number; changeMs: number; idleMs: number } = { engineMs: 300, changeMs: 600, idleMs: 300 },
): Promise<{ engine: DockerEngine; server: Server; sockets: Set<Socket>; closed: string[] }> {
  const socketPath = join(dir, 'docker.sock');
  const sockets = new Set<Socket>();
  const closed: string[] = [];
  const server = createServer((req, res) => {
    req.socket.on('close', () => closed.push(`${req.method} ${req.url}`));
    handler(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const engine = new DockerEngine(new Docker({ socketPath }), deadlines);
  return { engine, server, sockets, closed };
}

const answer = (status: number, message: string): Handler => (_req, res) => {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ message }));
};


describe('the Docker engine, as etcd-lab reports it', () => {
  let dir: string;
  let fake: Awaited<ReturnType<typeof fakeEngine>> | undefined;
  const dockerHost = process.env.DOCKER_HOST;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'etcd-lab-engine-'));
    delete process.env.DOCKER_HOST;
  });
  afterEach(async () => {
    if (fake) {
      for (const s of fake.sockets) s.destroy();
      await new Promise((resolve) => fake!.server.close(resolve));
      fake = undefined;
    }
    if (dockerHost !== undefined) process.env.DOCKER_HOST = dockerHost;
    rmSync(dir, { recursive: true, force: true });
  });

  it('a hung engine: the error names the call that hung, at its deadline, and the request is given up', async () => {
    fake = await fakeEngine(dir, () => {}); // never answers
    const started = Date.now();
    const error = await failure(fake.engine.containers.list(['io.etcd-lab.lab=demo']));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error.message).toBe('the Docker engine did not answer "list containers" within 0.3 s');
    expect(error.hint).toMatch(/docker info/);
    expect(error.exitCode).toBe(3);
    expect(error.message).not.toMatch(/not running/);
    await expect.poll(() => fake!.closed.some((c) => c.startsWith('GET /containers/json')), { timeout: 5000 }).toBe(true);
  });

  it('every kind of call has its deadline: a change (kill, pause, create) the longer one, since a busy engine is slow to make them', async () => {
    fake = await fakeEngine(dir, () => {});
    await Promise.all([
      expect(fake.engine.containers.kill('etcd1')).rejects.toThrow('the Docker engine did not answer "kill container etcd1" within 0.6 s'),
      expect(fake.engine.containers.pause('etcd2')).rejects.toThrow('"pause container etcd2" within 0.6 s'),
      expect(fake.engine.volumes.create('demo-etcd1-data', {})).rejects.toThrow('"create volume demo-etcd1-data" within 0.6 s'),
      expect(fake.engine.networks.list()).rejects.toThrow('"list networks" within 0.3 s'),
    ]);
  });

  it('a start the engine answers after the question deadline, but within the change deadline, succeeds', async () => {
    // Margins wide enough for a machine busy with other tests: 0.2 s < 1 s answer < 10 s.
    const slowStart: Handler = (_req, res) => {
      setTimeout(() => {
        res.writeHead(204);
        res.end();
      }, 1000);
    };
    fake = await fakeEngine(dir, slowStart, { engineMs: 200, changeMs: 10_000, idleMs: 200 });
    await fake.engine.containers.start('etcd1');
  });

  it('a pull that stops making progress ends an inactivity deadline after its last line, not at a fixed time', async () => {
    // Lines 0.2 s apart against a 1 s inactivity deadline: a margin a busy machine does not eat.
    const pull: Handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      let n = 0;
      const tick = setInterval(() => {
        res.write(`${JSON.stringify({ status: `layer ${++n}`, progress: 'Downloading' })}\n`);
        if (n === 4) clearInterval(tick); // then silence
      }, 200);
    };
    fake = await fakeEngine(dir, pull, { engineMs: 300, changeMs: 600, idleMs: 1000 });
    const lines: string[] = [];
    const started = Date.now();
    await expect(fake.engine.images.pull('gcr.io/etcd-development/etcd:v3.5.33', (line) => lines.push(line))).rejects.toThrow(
      'the Docker engine stopped making progress on "pull gcr.io/etcd-development/etcd:v3.5.33" (nothing for 1 s)',
    );
    expect(lines).toHaveLength(4);
    expect(Date.now() - started).toBeGreaterThan(1500); // four lines 0.2 s apart kept it alive past a fixed 1 s
  });

  it('a 400 (an image reference with capitals) is shown in the engine\'s words, not as "Docker is not running"', async () => {
    fake = await fakeEngine(dir, answer(400, 'invalid reference format: repository name must be lowercase'));
    const error = await failure(fake.engine.images.exists('gcr.io/Etcd-Development/etcd:v3.5.33'));
    expect(error.message).toBe(
      'the Docker engine refused "inspect image gcr.io/Etcd-Development/etcd:v3.5.33" (HTTP 400): invalid reference format: repository name must be lowercase',
    );
    expect(error.message).not.toMatch(/not running/);
    expect(error.hint).toMatch(/lowercase/);
    expect(error.exitCode).toBe(3);
  });

  it('a 409 is shown in the engine\'s words and keeps its status for the callers that expect one', async () => {
    fake = await fakeEngine(dir, answer(409, 'error while removing network: network demo has active endpoints'));
    const error = await failure(fake.engine.networks.remove('demo'));
    expect(error.message).toBe('the Docker engine refused "remove network demo" (HTTP 409): error while removing network: network demo has active endpoints');
    expect((error as UserError & { statusCode?: number }).statusCode).toBe(409);
    expect(error.hint).toMatch(/etcd-lab status/);
  });

  it('a 500 on a list is the engine failing, not "Docker is not running"', async () => {
    fake = await fakeEngine(dir, answer(500, 'layer does not exist'));
    const error = await failure(fake.engine.volumes.list(['io.etcd-lab.lab=demo']));
    expect(error.message).toBe('the Docker engine refused "list volumes" (HTTP 500): layer does not exist');
    expect(error.hint).toMatch(/log/);
  });

  it('a 404 the caller expects is still an answer: no such image, no such volume', async () => {
    fake = await fakeEngine(dir, answer(404, 'No such image'));
    expect(await fake.engine.images.exists('etcd-lab/etcd:3.5')).toBe(false);
    expect(await fake.engine.volumes.labels('demo-etcd1-data')).toBeUndefined();
    await fake.engine.volumes.remove('demo-etcd1-data');
  });

  it('no socket at all is "Docker is not running"', async () => {
    const engine = new DockerEngine(new Docker({ socketPath: join(dir, 'missing.sock') }), { engineMs: 300 });
    const error = await failure(engine.containers.list(['io.etcd-lab.lab=demo']));
    expect(error.message).toBe('Docker is not running (no engine answers on its socket)');
    expect(error.exitCode).toBe(3);
  });

  it('a socket nobody listens on is "Docker is not running"', async () => {
    const socketPath = join(dir, 'stale.sock');
    writeFileSync(socketPath, ''); // left behind by an engine that is gone
    const engine = new DockerEngine(new Docker({ socketPath }), { engineMs: 300 });
    await expect(engine.ping()).rejects.toThrow('Docker is not running (no engine answers on its socket)');
  });
});
