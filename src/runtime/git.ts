// The few questions etcd-lab asks git, about the user's own repository: is this directory in a work
// tree, and would git stage a given file? Without git (or outside a repository) the answers are "no".
import { run } from '../engine/child-process.js';

/** git answers these from the local repository at once. */
const GIT_MS = 10_000;

/** True when `path` is in a git work tree and git would not stage it (ignored). */
export async function gitIgnores(dir: string, path: string): Promise<boolean> {
  try {
    await run('git', ['-C', dir, 'check-ignore', '--quiet', path], { timeoutMs: GIT_MS });
    return true;
  } catch {
    return false;
  }
}

export async function inGitWorkTree(dir: string): Promise<boolean> {
  try {
    return (await run('git', ['-C', dir, 'rev-parse', '--is-inside-work-tree'], { timeoutMs: GIT_MS })).stdout.trim() === 'true';
  } catch {
    return false;
  }
}
