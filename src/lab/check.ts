// `etcd-lab check`: concurrent clients and watchers on a small key space while faults are injected,
// then the checker: linearizable, every watch reliable. The history and an HTML report are saved
// beside the generated files; `--verify` checks a saved history again, with no lab needed.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkHistory, type CheckResult as CheckerResult } from '../checker/check.js';
import { HISTORY_FORMAT, type FaultWindow, type History } from '../checker/history.js';
import { fileError, UserError } from '../errors.js';
import type { Reporter } from '../progress.js';
import { renderCheckReport } from '../render/check-report.js';
import { Workload, type ClientSpec } from '../runtime/clients.js';
import type { Endpoint } from '../runtime/etcd-http.js';
import { membersOut, restoreLab } from '../runtime/faults.js';
import type { LabRuntime } from '../runtime/lab.js';
import { collectStatus } from '../runtime/status.js';
import { guarded, Interrupted } from '../interrupt.js';
import { withLab } from './session.js';
import { NEMESES, runNemesis, type Nemesis } from './nemesis.js';
import type { LoadOptions } from '../config/load.js';
import { toleratedFailures } from '../config/topology.js';
import { ExitCode } from '../exit-codes.js';

export interface CheckOptions extends LoadOptions {
  /** How many faults to inject, the kinds in turn. */
  faults?: number;
  nemesis?: Nemesis[];
  clients?: number;
  keys?: number;
  /** Operations per second over all clients, at most. */
  rate?: number;
  reads?: 'linearizable' | 'serializable';
  /** How long each fault is held, and the calm between faults. */
  holdMs?: number;
  /** Check a saved history again instead of running a new one. */
  verify?: string;
}

export interface CheckResult {
  ok: boolean;
  checker: Omit<CheckerResult, 'committedAt'>;
  faults: FaultWindow[];
  /** The longest time no client through HAProxy got an answer (ms): what an application would have seen. */
  longestUnavailableMs: number;
  historyFile: string;
  reportFile: string;
  durationMs: number;
}

/** The longest stretch between two answers to clients that go through HAProxy. */
export function longestUnavailable(history: History): number {
  const answers = history.operations.filter((op) => op.via === 'haproxy' && op.outcome === 'ok').map((op) => op.returnMs).sort((a, b) => a - b);
  let longest = 0;
  for (let i = 1; i < answers.length; i++) longest = Math.max(longest, answers[i]! - answers[i - 1]!);
  return Math.round(longest);
}

function resultOf(history: History, historyFile: string, reportFile: string, started: number): { result: CheckResult; report: string } {
  const checked = checkHistory(history);
  const { committedAt: _committedAt, ...checker } = checked;
  return {
    result: { ok: checked.ok, checker, faults: history.faults, longestUnavailableMs: longestUnavailable(history), historyFile, reportFile, durationMs: Date.now() - started },
    report: renderCheckReport(history, checked),
  };
}

/** `--verify`: a saved history checked again; pure, so no lab (or Docker) is needed. */
async function verifySaved(file: string): Promise<CheckResult> {
  const started = Date.now();
  const history = await readFile(file, 'utf8')
    .then((text) => JSON.parse(text) as History)
    .catch((error: unknown) => {
      if (error instanceof SyntaxError) throw new UserError(`${file} is not a history etcd-lab check saved (not JSON)`, { exitCode: ExitCode.badInput });
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`${file} does not exist`, { hint: 'check prints where it saved the history: generated/check-….json', exitCode: ExitCode.badInput });
      throw fileError(error, file, 'the history file', 'point --verify at a readable file');
    });
  if (history.format !== HISTORY_FORMAT || !Array.isArray(history.operations) || !Array.isArray(history.watches)) {
    throw new UserError(`${file} is not a history this etcd-lab can check (format ${JSON.stringify(history.format ?? 'none')}, expected ${HISTORY_FORMAT})`, {
      hint: 'a history saved by an older etcd-lab recorded only writes: run `etcd-lab check` again',
      exitCode: ExitCode.badInput,
    });
  }
  const reportFile = file.replace(/\.json$/, '') + '.html';
  const { result, report } = resultOf(history, file, reportFile, started);
  await writeFile(reportFile, report);
  return result;
}

export async function check(opts: CheckOptions, reporter: Reporter): Promise<CheckResult> {
  if (opts.verify) return verifySaved(opts.verify);
  return withLab(opts, { lock: 'check' }, reporter, (runtime) => checkLab(runtime, opts, reporter));
}

/** The clients: three in four pinned to one member each (in turn), the rest through HAProxy; two watchers. */
function clientsFor(runtime: LabRuntime, count: number, members: () => Map<string, Endpoint>): { clients: ClientSpec[]; watchers: ClientSpec[][] } {
  const names = runtime.topology.members.map((m) => m.name);
  const pinned = (m: string): ClientSpec => ({ via: m, endpoint: () => members().get(m) ?? runtime.client });
  const haproxy: ClientSpec = { via: 'haproxy', endpoint: () => runtime.client };
  const direct = Math.round((count * 3) / 4);
  const clients = Array.from({ length: count }, (_, i) => (i < direct ? pinned(names[i % names.length]!) : haproxy));
  return { clients, watchers: [[haproxy], names.map(pinned)] };
}

async function checkLab(runtime: LabRuntime, opts: CheckOptions, reporter: Reporter): Promise<CheckResult> {
  const { lab } = runtime;
  const started = Date.now();
  const size = lab.spec.members;
  if (toleratedFailures(size) < 1) {
    throw new UserError(`a ${size}-member lab tolerates no failure, so there is nothing to check`, { hint: 'use 3 or more members', exitCode: ExitCode.badInput });
  }
  // Right after a failure an election may still run: wait for it, so that only a member really down stops the check.
  await reporter.step('find the leader', (step) => runtime.awaitLeader(Date.now() + runtime.electionWaitMs, step)).catch(() => undefined);
  const status = await collectStatus(runtime);
  if (status.quorum.healthy !== size) {
    const down = status.members.filter((m) => !m.healthy).map((m) => `${m.name} (${m.reason})`);
    throw new UserError(`check needs every member healthy first: ${down.join(', ')} not healthy; ${status.summary}`, {
      hint: 'run `etcd-lab up`, or `etcd-lab start` / `unpause` / `heal`, then check again',
      exitCode: ExitCode.refused,
    });
  }

  let members = await runtime.memberEndpoints();
  const refresh = async () => {
    members = await runtime.memberEndpoints();
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const { clients, watchers } = clientsFor(runtime, opts.clients ?? 8, () => members);
  const workload = new Workload({
    prefix: `etcd-lab/check/${stamp}/`,
    keys: opts.keys ?? 10,
    clients,
    watchers,
    rate: opts.rate ?? 200,
    callTimeoutMs: 1000,
    reads: opts.reads ?? 'linearizable',
    control: runtime.client,
    lab: lab.spec.name,
  });
  await reporter.step(`${clients.length} clients and ${watchers.length} watchers on ${opts.keys ?? 10} keys`, () => workload.start());
  const faults: FaultWindow[] = [];
  await guarded({ undoing: 'stopping the clients and restoring every member', leftovers: () => membersOut(runtime) }, async () => {
    try {
      await runNemesis(opts.nemesis ?? [...NEMESES], opts.faults ?? 3, { runtime, reporter, holdMs: opts.holdMs ?? 1500, now: () => workload.now(), watched: () => workload.watchedRevision(), membersChanged: refresh }, faults);
    } catch (error) {
      // Never leave a member killed, paused or cut off: put everything back, then report.
      const restored = await restoreLab(runtime, reporter);
      await workload.stop(faults).catch(() => undefined);
      if (!(error instanceof Interrupted)) throw error;
      throw new Interrupted(
        `check interrupted after ${faults.length} fault${faults.length === 1 ? '' : 's'}; every member is back${restored.length > 0 ? ` (${restored.join('; ')})` : ''}`,
        'no verdict: the workload was cut short. `etcd-lab status` shows the members rejoining',
      );
    }
  });
  const history = await reporter.step('stop the clients; every watcher delivers to the end', () => workload.stop(faults));
  await mkdir(lab.outDir, { recursive: true });
  const historyFile = join(lab.outDir, `check-${stamp}.json`);
  const reportFile = join(lab.outDir, `check-${stamp}.html`);
  const { result, report } = await reporter.step(`check ${history.operations.length} operations`, async () => resultOf(history, historyFile, reportFile, started));
  await writeFile(historyFile, `${JSON.stringify(history)}\n`);
  await writeFile(reportFile, report);
  return result;
}
