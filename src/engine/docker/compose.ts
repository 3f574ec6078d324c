// `docker compose` as a child process: its version, and a run on the lab's project and file.
import { UserError } from '../../errors.js';
import type { ComposeClient, ComposeOptions } from '../engine.js';
import { run } from '../child-process.js';
import { DEADLINES } from '../deadlines.js';

export class DockerCompose implements ComposeClient {
  /** `docker compose version`: compose v2 answers as a docker plugin. */
  async version(): Promise<string | undefined> {
    try {
      const { stdout } = await run('docker', ['compose', 'version', '--short'], { timeoutMs: DEADLINES.engineMs });
      return stdout.trim();
    } catch (error) {
      // Ctrl-C, or a docker CLI that hangs: not "compose is missing".
      if (error instanceof UserError) throw error;
      return undefined;
    }
  }

  /**
   * Runs `docker compose -p <project> -f <file> <args>`. ETCD_LAB_* variables are removed from the
   * child's environment so the generated .env (already resolved from flags, env and .env) decides.
   * It is stopped after `timeoutMs` (a caller with a deadline passes what is left of it), else
   * after DEADLINES.composeMs.
   */
  async run(
    project: string,
    file: string,
    args: string[],
    onLine?: (line: string) => void,
    opts: ComposeOptions = {},
  ): Promise<string> {
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_LAB_'))), ...opts.env };
    const { stdout } = await run('docker', ['compose', '--project-name', project, '--file', file, ...args], {
      env,
      onLine,
      cleanup: opts.cleanup,
      timeoutMs: opts.timeoutMs ?? DEADLINES.composeMs,
    });
    return stdout;
  }
}
