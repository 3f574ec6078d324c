// The CLI run in this process, against source: what `etcd-lab ARGS` prints and returns, from a
// directory and with an environment of the test's choosing, without starting Node again. (A few
// tests in cli.test.ts still run bin/etcd-lab.js as a process, as a user does.)
import { main } from '../../src/cli.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<CliRun> {
  const saved = { env: process.env, cwd: process.cwd(), out: process.stdout.write, err: process.stderr.write };
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The user's own settings must not leak in: each test says which it wants.
  for (const key of Object.keys(env)) if (key.startsWith('ETCD_LAB_')) delete env[key];
  process.env = { ...env, CI: 'true', ...opts.env };
  const out: string[] = [];
  const err: string[] = [];
  const capture = (into: string[]) => ((chunk: string | Uint8Array) => (into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')), true)) as typeof process.stdout.write;
  process.stdout.write = capture(out);
  process.stderr.write = capture(err);
  process.chdir(opts.cwd);
  process.exitCode = undefined;
  try {
    const code = await main(['node', 'etcd-lab', ...args], { signals: false });
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    process.chdir(saved.cwd);
    process.env = saved.env;
    process.exitCode = undefined;
  }
}
