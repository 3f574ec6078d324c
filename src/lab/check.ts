// `etcd-lab check`: a bounded write workload through HAProxy while faults are injected, then a
// verdict: every acknowledged write readable with its value, revisions never going backwards.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileError, UserError } from '../errors.js';
import type { Reporter } from '../progress.js';
import { getPrefix } from '../runtime/etcd-http.js';
import { applyFault, membersOut, restoreLab } from '../runtime/faults.js';
import { verifyHistory, type Verdict, type WriteOp } from '../runtime/history.js';
import type { LabRuntime } from '../runtime/lab.js';
import { guarded, Interrupted, sleep } from '../interrupt.js';
import { withLab } from './session.js';
import { collectStatus } from '../runtime/status.js';
import { Writer } from '../runtime/workload.js';
import type { LoadOptions } from '../config/load.js';
import { toleratedFailures } from '../config/topology.js';
import { ExitCode } from '../exit-codes.js';

export interface CheckOptions extends LoadOptions {
  /** How many faults to inject (alternating leader kill and minority partition). */
  faults?: number;
  /** Upper bound on the workload's duration. */
  maxDurationMs?: number;
  /** Steady writing before and during each fault. */
  holdMs?: number;
  /** Re-verify a saved history against the lab instead of running a new one. */
  verify?: string;
}

export interface CheckResult {
  verdict: Verdict;
  faults: string[];
  prefix: string;
  historyFile: string;
  durationMs: number;
}

interface SavedHistory {
  lab: string;
  prefix: string;
  faults: string[];
  writes: WriteOp[];
}


/** Reads back everything the workload wrote, from a member that follows the leader, while the cluster settles. */
async function readBack(runtime: LabRuntime, prefix: string): Promise<Map<string, string>> {
  const { values } = await runtime.ask(`read back ${prefix}`, (endpoint) => getPrefix(endpoint, prefix, { timeoutMs: 5000 }), { idempotent: true, deadline: Date.now() + 30_000 });
  return values;
}

export async function check(opts: CheckOptions, reporter: Reporter): Promise<CheckResult> {
  return withLab(opts, { lock: 'check' }, reporter, (runtime) => checkLab(runtime, opts, reporter));
}

async function checkLab(runtime: LabRuntime, opts: CheckOptions, reporter: Reporter): Promise<CheckResult> {
  const { lab } = runtime;
  const started = Date.now();

  if (opts.verify) {
    const saved = await readFile(opts.verify, 'utf8')
      .then((text) => JSON.parse(text) as SavedHistory)
      .catch((error: unknown) => {
        if (error instanceof SyntaxError) throw new UserError(`${opts.verify} is not a history etcd-lab check saved (not JSON)`, { exitCode: ExitCode.badInput });
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`${opts.verify} does not exist`, { hint: 'check prints where it saved the history: generated/check-….json', exitCode: ExitCode.badInput });
        throw fileError(error, opts.verify!, 'the history file', 'point --verify at a readable file');
      });
    if (!Array.isArray(saved.writes) || typeof saved.prefix !== 'string') throw new UserError(`${opts.verify} is not a history etcd-lab check saved`, { exitCode: ExitCode.badInput });
    const values = await reporter.step(`read back ${saved.prefix}`, () => readBack(runtime, saved.prefix));
    return { verdict: verifyHistory(saved.writes, values), faults: saved.faults, prefix: saved.prefix, historyFile: opts.verify, durationMs: Date.now() - started };
  }

  const members = lab.spec.members;
  if (toleratedFailures(members) < 1) {
    throw new UserError(`a ${members}-member lab tolerates no failure, so there is nothing to check`, { hint: 'use 3 or more members', exitCode: ExitCode.badInput });
  }
  // Right after a failure an election may still run: wait for it, so that only a member really down stops the check.
  await reporter.step('find the leader', (step) => runtime.awaitLeader(Date.now() + runtime.electionWaitMs, step)).catch(() => undefined);
  const status = await collectStatus(runtime);
  if (status.quorum.healthy !== members) {
    const down = status.members.filter((m) => !m.healthy).map((m) => `${m.name} (${m.reason})`);
    throw new UserError(`check needs every member healthy first: ${down.join(', ')} not healthy; ${status.summary}`, {
      hint: 'run `etcd-lab up`, or `etcd-lab start` / `unpause` / `heal`, then check again',
      exitCode: ExitCode.refused,
    });
  }

  const faultCount = opts.faults ?? 3;
  const hold = opts.holdMs ?? 1000;
  const prefix = `etcd-lab/check/${new Date().toISOString().replace(/[:.]/g, '-')}/`;
  const writer = new Writer({
    endpoint: runtime.client,
    prefix,
    callTimeoutMs: 500,
    pauseMs: 5,
    maxWrites: 100_000,
    maxDurationMs: opts.maxDurationMs ?? 120_000,
  }).start();
  const faults: string[] = [];
  await guarded({ undoing: 'stopping the workload and restoring every member', leftovers: () => membersOut(runtime) }, async () => {
    try {
      await injectFaults(runtime, faultCount, hold, faults, reporter);
    } catch (error) {
      // Never leave a member killed, paused or cut off: put everything back, then report.
      await writer.stop();
      const restored = await restoreLab(runtime, reporter);
      if (!(error instanceof Interrupted)) throw error;
      throw new Interrupted(
        `check interrupted after ${faults.length} fault${faults.length === 1 ? '' : 's'}; every member is back${restored.length > 0 ? ` (${restored.join('; ')})` : ''}`,
        'no verdict: the workload was cut short. `etcd-lab status` shows the members rejoining',
      );
    } finally {
      await writer.stop();
    }
  });

  const values = await reporter.step(`read back ${writer.history.length} writes`, () => readBack(runtime, prefix));
  const verdict = verifyHistory(writer.history, values);
  await mkdir(lab.outDir, { recursive: true });
  const historyFile = join(lab.outDir, `check-${prefix.split('/').at(-2)}.json`);
  const saved: SavedHistory = { lab: lab.spec.name, prefix, faults, writes: writer.history };
  await writeFile(historyFile, `${JSON.stringify(saved, null, 1)}\n`);
  return { verdict, faults, prefix, historyFile, durationMs: Date.now() - started };
}

/** Alternates a leader kill with a minority partition that holds the leader, each undone after `hold`. */
async function injectFaults(runtime: LabRuntime, faultCount: number, hold: number, faults: string[], reporter: Reporter): Promise<void> {
  const members = runtime.lab.spec.members;
  await sleep(hold);
  for (let i = 0; i < faultCount; i++) {
    if (i % 2 === 0) {
      // The leader, killed without a handover: an election must follow.
      const r = await applyFault(runtime, 'kill', ['leader'], reporter);
      faults.push(`kill ${r.members.join(', ')}${r.election ? ` → ${r.election.leader} leads after ${r.election.afterMs} ms` : ''}`);
      await sleep(hold);
      await applyFault(runtime, 'start', [], reporter);
    } else {
      // A minority that includes the leader: it must step down while the majority elects anew.
      const leader = (await runtime.awaitLeader(Date.now() + runtime.electionWaitMs)).container.member;
      const others = runtime.topology.members.map((m) => m.name).filter((m) => m !== leader);
      const cut = [leader ?? others.shift()!, ...others.slice(0, toleratedFailures(members) - 1)];
      const r = await applyFault(runtime, 'partition', cut, reporter);
      faults.push(`partition ${r.members.join(', ')}${r.election ? ` → ${r.election.leader} leads after ${r.election.afterMs} ms` : ''}`);
      await sleep(hold);
      await applyFault(runtime, 'heal', [], reporter);
    }
    await sleep(hold);
  }
}
