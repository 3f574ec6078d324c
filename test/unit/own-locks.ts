// Each unit test file takes its labs' locks in a directory of its own. The fake labs of different
// files share a name ("fakelab"), and files run side by side: with the per-user lock directory, one
// file's upgrade held the lock another file's `up` then waited 10 s for and was refused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const before = process.env.ETCD_LAB_LOCK_DIR;
const dir = mkdtempSync(join(tmpdir(), 'etcd-lab-unit-locks-'));
process.env.ETCD_LAB_LOCK_DIR = dir;

afterAll(() => {
  if (before === undefined) delete process.env.ETCD_LAB_LOCK_DIR;
  else process.env.ETCD_LAB_LOCK_DIR = before;
  rmSync(dir, { recursive: true, force: true });
});
