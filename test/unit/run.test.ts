// Child processes (docker compose, debootstrap) under a deadline: stopped with their process group,
// named in the error, an inactivity deadline renewed by output. No Docker needed.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../src/engine/child-process.js';
import { DockerEngine } from '../../src/engine/docker.js';
import { failure } from './failure.js';


describe('child processes (docker compose) under a deadline', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'etcd-lab-run-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Gone, or a zombie nobody reaped yet (a container's PID 1 may not reap). */
  const dead = (pid: number) => !existsSync(`/proc/${pid}`) || / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^\d+ \(.*?\)/, ''));

  it.skipIf(process.platform !== 'linux')('a command past its deadline is stopped, its process group with it, and the error names it', async () => {
    const pidFile = join(dir, 'pid');
    const started = Date.now();
    const error = await failure(run('sh', ['-c', `sleep 30 & echo $! > ${pidFile}; wait`], { timeoutMs: 300 }));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error.message).toBe(`\`sh -c sleep 30 & echo $! > ${pidFile}; wait\` did not finish within 0.3 s: stopped`);
    expect(error.exitCode).toBe(4);
    const sleeper = Number(readFileSync(pidFile, 'utf8'));
    await expect.poll(() => dead(sleeper)).toBe(true);
  });

  it('`sleep 30` is stopped at its deadline', async () => {
    await expect(run('sleep', ['30'], { timeoutMs: 300 })).rejects.toThrow('`sleep 30` did not finish within 0.3 s');
  });

  it('docker compose under a caller\'s deadline: a compose that hangs is stopped and named (a fake `docker` on PATH)', async () => {
    writeFileSync(join(dir, 'docker'), '#!/bin/sh\necho "Container demo-etcd1  Creating"\nexec sleep 30\n', { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
    try {
      const error = await failure(new DockerEngine().compose.run('demo', 'docker-compose.yml', ['up', '--detach'], undefined, { timeoutMs: 300 }));
      expect(error.message).toBe('`docker compose --project-name demo --file docker-compose.yml up --detach` did not finish within 0.3 s: stopped');
      expect(error.hint).toMatch(/its last output: "Container demo-etcd1  Creating"/);
    } finally {
      process.env.PATH = path;
    }
  });

  it('an inactivity deadline lets a command that keeps printing run past it', async () => {
    const { stdout } = await run('sh', ['-c', 'for i in 1 2 3 4 5; do echo $i; sleep 0.3; done'], { timeoutMs: 1000, idle: true });
    expect(stdout.trim().split('\n')).toEqual(['1', '2', '3', '4', '5']);
  });
});
