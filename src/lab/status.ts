// `etcd-lab status`: one read of the lab over etcd's API and HAProxy's stats.
import { UserError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { collectStatus, type LabStatus } from '../runtime/status.js';
import type { LoadOptions } from '../config/load.js';
import { silentReporter } from '../progress.js';
import { withLab } from './session.js';
import { ExitCode } from '../exit-codes.js';

export async function status(opts: LoadOptions & { engine?: Engine }): Promise<LabStatus> {
  return withLab(opts, {}, silentReporter, async (runtime) => {
    const containers = await runtime.containers();
    if (containers.length === 0) {
      throw new UserError(`lab "${runtime.name}" is not running (no containers)`, { hint: 'start it with `etcd-lab up`', exitCode: ExitCode.nothingDone });
    }
    return collectStatus(runtime);
  });
}

/** For `--watch`: a fresh runtime once, then a read per tick. */
export async function statusWatcher(opts: LoadOptions): Promise<() => Promise<LabStatus>> {
  return withLab(opts, {}, silentReporter, async (runtime) => () => collectStatus(runtime));
}
