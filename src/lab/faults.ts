// `etcd-lab kill|stop|start|pause|unpause|partition|heal` on a lab this checkout owns.
import type { Reporter } from '../progress.js';
import { applyFault, type FaultAction, type FaultResult } from '../runtime/faults.js';
import { LabRuntime } from '../runtime/lab.js';
import { loadLab, type LoadOptions } from '../config/load.js';

export interface FaultCommandOptions extends LoadOptions {
  action: FaultAction;
  members: string[];
  wait?: boolean;
  timeoutMs?: number;
}

export async function fault(opts: FaultCommandOptions, reporter: Reporter): Promise<FaultResult> {
  const runtime = new LabRuntime(loadLab(opts));
  return applyFault(runtime, opts.action, opts.members, reporter, { wait: opts.wait, timeoutMs: opts.timeoutMs });
}
