// `up`'s steps against a fake engine: the order, and what is left after each way it can fail — a
// compose that fails half-way, a member that never becomes healthy, an engine that hangs — with
// and without --retain. No Docker: the fake reads the compose file up generated.
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import { up } from '../../src/lab/up.js';
import { RecordingReporter } from '../../src/progress.js';
import { FakeEngine } from './fake-engine.js';
import { closedPort } from './net.js';

let dir: string;
let engine: FakeEngine;
const servers: http.Server[] = [];

/** A member that answers /health as a healthy etcd does. */
async function healthyMember(): Promise<number> {
  const server = http.createServer((_req, res) => res.end('{"health":"true","reason":""}'));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'etcd-lab-up-'));
  writeFileSync(join(dir, 'etcd-lab.yaml'), 'name: fakelab\nmembers: 3\nnetwork:\n  subnet: 10.250.0.0/24\n');
  writeFileSync(join(dir, '.env'), `ETCD_LAB_CLIENT_PORT=${await closedPort()}\nETCD_LAB_STATS_PORT=${await closedPort()}\n`);
  engine = new FakeEngine();
});
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  rmSync(dir, { recursive: true, force: true });
});

const runUp = (reporter: RecordingReporter, extra: { retain?: boolean; timeoutMs?: number } = {}) =>
  up({ cwd: dir, env: {}, engine, timeoutMs: 1500, ...extra }, reporter).then(
    () => undefined,
    (e: unknown) => e as UserError,
  );
const stepLines = (r: RecordingReporter) => r.events.filter((e) => /^(step|failed|warn):/.test(e)).map((e) => e.replace(/generate \S+\//, 'generate …/'));
const leftInEngine = () => ({ containers: engine.containersById.size, networks: engine.networksByName.size, volumes: engine.volumesByName.size });

describe('up against a fake engine', () => {
  it('a compose that fails half-way: the error is compose\'s own last line, and everything it made is removed', async () => {
    engine.composeFailsAfter = 2;
    const reporter = new RecordingReporter();
    const error = await runUp(reporter);
    expect(error).toBeInstanceOf(UserError);
    expect(error!.message).toBe('docker compose up failed: Error response from daemon: failed to create shim task: OCI runtime create failed (fake)');
    expect(error!.exitCode).toBe(ExitCode.failedPartWay);
    expect(stepLines(reporter)).toEqual([
      'step: preflight',
      'step: generate …/',
      'step: docker compose up (3 members + HAProxy)',
      'failed: docker compose up (3 members + HAProxy)',
      'step: roll back what this run created',
    ]);
    expect(leftInEngine()).toEqual({ containers: 0, networks: 0, volumes: 0 });
    expect(engine.calls.filter((c) => c.startsWith('remove'))).toEqual([
      'remove container fakelab-etcd1',
      'remove container fakelab-etcd2',
      'remove network fakelab',
      'remove volume fakelab-etcd1-data',
      'remove volume fakelab-etcd2-data',
      'remove volume fakelab-etcd3-data',
    ]);
  });

  it('--retain after a half-way failure keeps what compose made, and says how to remove it', async () => {
    engine.composeFailsAfter = 2;
    const reporter = new RecordingReporter();
    const error = await runUp(reporter, { retain: true });
    expect(error!.message).toMatch(/^docker compose up failed/);
    expect(leftInEngine()).toEqual({ containers: 2, networks: 1, volumes: 3 });
    expect(stepLines(reporter).at(-1)).toBe('warn: --retain: leaving what this run made as it is, to inspect (`etcd-lab down --volumes` removes the lab)');
  });

  it('a member that never becomes healthy: the wait ends at the deadline naming it, then the lab is rolled back', async () => {
    const healthy = { etcd1: await healthyMember(), etcd2: await healthyMember(), etcd3: await closedPort() };
    engine.memberPort = (member) => healthy[member as keyof typeof healthy];
    const reporter = new RecordingReporter();
    const started = Date.now();
    const error = await runUp(reporter);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(error!.message).toMatch(/^timed out waiting for every member to be healthy: 2\/3 healthy \(etcd3: /);
    expect(error!.hint).toMatch(/--retain keeps the containers/);
    expect(error!.exitCode).toBe(ExitCode.failedPartWay);
    expect(stepLines(reporter)).toEqual([
      'step: preflight',
      'step: generate …/',
      'step: docker compose up (3 members + HAProxy)',
      'step: members healthy',
      'failed: members healthy',
      'step: roll back what this run created',
    ]);
    expect(leftInEngine()).toEqual({ containers: 0, networks: 0, volumes: 0 });
  });

  it('an engine that hangs during the rollback: the first failure is what is reported, the hang a warning beside it', async () => {
    engine.composeFailsAfter = 1;
    engine.trouble.set('containers.remove', { hangMs: 100 });
    const reporter = new RecordingReporter();
    const error = await runUp(reporter);
    expect(error!.message).toMatch(/^docker compose up failed/);
    expect(stepLines(reporter)).toContain(
      'warn: could not undo "docker compose up (3 members + HAProxy)": the Docker engine did not answer "remove container fake1" within 0.1 s; `etcd-lab status` shows what is left',
    );
  });

  it('an engine that hangs in preflight: nothing is created, and the error names the call', async () => {
    engine.trouble.set('containers.list', { hangMs: 100 });
    const reporter = new RecordingReporter();
    const error = await runUp(reporter);
    expect(error!.message).toBe('the Docker engine did not answer "list containers" within 0.1 s');
    expect(engine.calls).toEqual([]);
    // The first call is the ownership check every command makes before its steps.
    expect(stepLines(reporter)).toEqual([]);
  });
});
