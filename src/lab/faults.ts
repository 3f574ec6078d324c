// `etcd-lab kill|stop|start|pause|unpause|partition|loss|blackhole|delay|heal` on a lab this checkout owns, one
// command at a time. Ctrl-C half-way through several members puts back the ones already done;
// Ctrl-C while waiting for the election or for members to serve only stops the wait.
import { guarded } from '../interrupt.js';
import type { Reporter } from '../progress.js';
import { applyFault, membersOut, type FaultAction, type FaultResult } from '../runtime/faults.js';
import type { LoadOptions } from '../config/load.js';
import { withLab } from './session.js';

export interface FaultCommandOptions extends LoadOptions {
  action: FaultAction;
  members: string[];
  wait?: boolean;
  timeoutMs?: number;
  lossPercent?: number;
  delayMs?: number;
}

export async function fault(opts: FaultCommandOptions, reporter: Reporter): Promise<FaultResult> {
  return withLab(opts, { lock: opts.action }, reporter, (runtime) =>
    guarded(
      {
        undoing: 'stopping: members already acted on are put back if the action was half-way, a finished action stays',
        leftovers: () => membersOut(runtime),
      },
      () => applyFault(runtime, opts.action, opts.members, reporter, { wait: opts.wait, timeoutMs: opts.timeoutMs, lossPercent: opts.lossPercent, delayMs: opts.delayMs }),
    ),
  );
}
