// `etcd-lab status`: one read of the lab over etcd's API and HAProxy's stats.
import { UserError } from '../errors.js';
import { DockerEngine } from '../runtime/docker.js';
import { LabRuntime } from '../runtime/lab.js';
import { collectStatus, type LabStatus } from '../runtime/status.js';
import { loadLab, type LoadOptions } from '../config/load.js';

export async function status(opts: LoadOptions & { engine?: DockerEngine }): Promise<LabStatus> {
  const lab = loadLab(opts);
  const engine = opts.engine ?? new DockerEngine();
  await engine.ping();
  const runtime = new LabRuntime(lab, engine);
  const containers = await runtime.containers();
  if (containers.length === 0) {
    throw new UserError(`lab "${lab.spec.name}" is not running (no containers)`, { hint: 'start it with `etcd-lab up`', exitCode: 1 });
  }
  return collectStatus(runtime);
}

/** For `--watch`: a fresh runtime once, then a read per tick. */
export async function statusWatcher(opts: LoadOptions): Promise<() => Promise<LabStatus>> {
  const lab = loadLab(opts);
  const runtime = new LabRuntime(lab);
  await runtime.engine.ping();
  return () => collectStatus(runtime);
}
