// The per-lab lock (who holds it, stale locks, waiting) and Docker's refusals explained.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { dockerRefusal } from '../../src/engine/engine.js';
import { acquireLabLock, holderAlive, lockPath } from '../../src/runtime/lock.js';

describe('the per-lab lock', () => {
  let dir: string;
  let fileWide: string | undefined;
  beforeEach(() => {
    fileWide = process.env.ETCD_LAB_LOCK_DIR;
    dir = mkdtempSync(join(tmpdir(), 'etcd-lab-lock-'));
    process.env.ETCD_LAB_LOCK_DIR = dir;
  });
  afterEach(() => {
    process.env.ETCD_LAB_LOCK_DIR = fileWide;
    if (fileWide === undefined) delete process.env.ETCD_LAB_LOCK_DIR;
    rmSync(dir, { recursive: true, force: true });
  });

  it('records who holds it, and is gone once released', async () => {
    const lock = await acquireLabLock('lab-a', 'up');
    const holder = JSON.parse(readFileSync(lockPath('lab-a'), 'utf8')) as { pid: number; command: string };
    expect(holder).toMatchObject({ pid: process.pid, command: 'up' });
    lock.release();
    expect(() => readFileSync(lockPath('lab-a'))).toThrow(/ENOENT/);
  });

  it('a live holder is waited for, then refused with its name; other labs are not blocked', async () => {
    const held = await acquireLabLock('lab-b', 'check');
    const waits: string[] = [];
    const started = Date.now();
    const second = acquireLabLock('lab-b', 'kill', { waitMs: 600, onWait: (t) => waits.push(t) });
    await expect(second).rejects.toThrow(UserError);
    await expect(second).rejects.toThrow(/lab "lab-b" is busy: `etcd-lab check` \(pid \d+, started \d+s ago/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    expect(waits[0]).toMatch(/waiting for `etcd-lab check`/);
    const other = await acquireLabLock('lab-c', 'up');
    other.release();
    held.release();
    (await acquireLabLock('lab-b', 'kill', { waitMs: 0 })).release();
  });

  it('a lock whose process died is stale and taken over at once', async () => {
    writeFileSync(lockPath('lab-d'), JSON.stringify({ pid: 2 ** 22 + 11, command: 'up', cwd: '/x', startedAt: new Date().toISOString() }));
    const lock = await acquireLabLock('lab-d', 'down', { waitMs: 0 });
    expect(JSON.parse(readFileSync(lockPath('lab-d'), 'utf8'))).toMatchObject({ pid: process.pid, command: 'down' });
    lock.release();
  });

  it('a pid reused by a later process is not mistaken for the holder', () => {
    expect(holderAlive({ pid: process.pid, command: 'up', cwd: '/', startedAt: '' })).toBe(true);
    expect(holderAlive({ pid: process.pid, started: '1', command: 'up', cwd: '/', startedAt: '' })).toBe(false);
  });

  it('of 8 commands that find the same dead holder at once, exactly one takes the lock over', async () => {
    // Real processes, as commands run: the built lock module (npm run build). 8 racers go through
    // labs whose locks name a dead process, released together at each: a "go" line on every
    // racer's stdin once all 8 wait for it (they block reading, so none burns a core meanwhile).
    // Every winner holds its lock until all are done. Each lab must have exactly one winner.
    const lockModule = new URL('../../dist/runtime/lock.js', import.meta.url).href;
    const rounds = 12;
    for (let r = 0; r < rounds; r++) {
      writeFileSync(lockPath(`race-${r}`), JSON.stringify({ pid: 2 ** 22 + 11, command: 'up', cwd: '/x', startedAt: new Date().toISOString() }));
    }
    const script = `
      import { createInterface } from 'node:readline';
      const { acquireLabLock } = await import(${JSON.stringify(lockModule)});
      const go = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
      const won = [];
      for (let r = 0; r <= ${rounds}; r++) {
        process.stdout.write('at ' + r + '\\n');
        await go.next();
        if (r === ${rounds}) break; // the last barrier: nobody exits (letting its locks go stale) before all are done
        try {
          await acquireLabLock('race-' + r, 'racer', { waitMs: 0 });
          won.push(r);
        } catch (e) {
          if (!/is busy/.test(e.message)) won.push('error ' + e.message);
        }
      }
      process.stdout.write('won ' + JSON.stringify(won) + '\\n');
      process.exit(0);`;
    const arrived = new Map<number, number>();
    const children: ReturnType<typeof spawn>[] = [];
    const racers = Array.from({ length: 8 }, () => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ETCD_LAB_LOCK_DIR: dir }, stdio: ['pipe', 'pipe', 'inherit'] });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        for (const m of chunk.toString().matchAll(/^at (\d+)$/gm)) {
          const r = Number(m[1]);
          arrived.set(r, (arrived.get(r) ?? 0) + 1);
          if (arrived.get(r) === 8) for (const c of children) c.stdin!.write('go\n');
        }
      });
      return new Promise<unknown[]>((resolve) => child.on('close', () => resolve(JSON.parse(/won (.*)/.exec(out)?.[1] ?? '["no answer"]') as unknown[])));
    });
    const won = (await Promise.all(racers)).flat();
    expect(won.filter((w) => typeof w !== 'number')).toEqual([]);
    const winners = Array.from({ length: rounds }, (_, r) => won.filter((w) => w === r).length);
    expect(winners).toEqual(Array.from({ length: rounds }, () => 1));
    expect(readdirSync(dir).filter((f) => f.includes('takeover'))).toEqual([]);
  }, 60_000);

  it('a half-written lock (its writer died mid-write) is taken over', async () => {
    writeFileSync(lockPath('lab-e'), '{"pid": 12');
    (await acquireLabLock('lab-e', 'up', { waitMs: 0 })).release();
  });
});

describe("Docker's refusals", () => {
  it('a 404 from the engine is explained as what it is, with what to do', () => {
    const error = Object.assign(new Error('(HTTP code 404) no such container - No such image: gcr.io/etcd-development/etcd:v3.5.33'), {
      statusCode: 404,
      json: { message: 'No such image: gcr.io/etcd-development/etcd:v3.5.33' },
    });
    const refusal = dockerRefusal(error)!;
    expect(refusal).toBeInstanceOf(UserError);
    expect(refusal.describe()).toMatch(/^the Docker engine refused a request \(HTTP 404\): No such image: gcr\.io/);
    expect(refusal.describe()).toMatch(/etcd-lab status/);
    expect(refusal.exitCode).toBe(3);
  });

  it('anything that is not an engine answer is left alone', () => {
    expect(dockerRefusal(new Error('boom'))).toBeUndefined();
    expect(dockerRefusal(Object.assign(new Error('x'), { statusCode: 500 }))).toBeUndefined();
    expect(dockerRefusal(undefined)).toBeUndefined();
  });
});
