// `etcd-lab check`: concurrent clients and watchers on a small key space while faults are injected,
// then the checker: linearizable, every watch reliable. The history and an HTML report are saved
// beside the generated files; `--verify` checks a saved history again, with no lab needed.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkHistory, type CheckResult as CheckerResult } from '../checker/check.js';
import type { FaultWindow, History } from '../checker/history.js';
import { InvalidHistory, validateHistory } from '../checker/validate.js';
import { fileError, UserError } from '../errors.js';
import type { Reporter } from '../progress.js';
import { renderCheckReport } from '../render/check-report.js';
import { Workload, type ClientSpec } from '../workload/workload.js';
import type { TrafficKind } from '../workload/traffic.js';
import type { Endpoint } from '../protocol/etcd-http.js';
import { membersOut, restoreLab } from './faults.js';
import type { LabRuntime } from '../runtime/lab.js';
import { collectStatus } from '../runtime/status.js';
import { isImpairment } from '../runtime/impairments.js';
import { guarded, Interrupted } from '../interrupt.js';
import { withLab } from './session.js';
import { DEFAULT_NEMESES, runNemesis, upgradeImageNeeded, type Nemesis, type UpgradeTarget } from './nemesis.js';
import { clusterVersionFollows, etcdVersionInImage, recordEtcdImage, upgradeRefusal, versionsOf } from './upgrade.js';
import type { LoadOptions } from '../config/load.js';
import { toleratedFailures } from '../config/topology.js';
import { ExitCode } from '../exit-codes.js';

export interface CheckOptions extends LoadOptions {
  /** What the clients send (traffic.ts). */
  traffic?: TrafficKind;
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
  /** The image the upgrade fault moves members to. */
  upgradeImage?: string;
}

export interface CheckResult {
  ok: boolean;
  checker: Omit<CheckerResult, 'committedAt'>;
  faults: FaultWindow[];
  /** The longest time no client through HAProxy got an answer (ms): what an application would have seen. */
  longestUnavailableMs: number;
  historyFile: string;
  reportFile: string;
  /** Why the report could not be drawn (the verdict stands). */
  reportError?: string;
  durationMs: number;
}

/** The longest stretch between two answers to clients that go through HAProxy. */
export function longestUnavailable(history: History): number {
  const answers = history.operations.filter((op) => op.via === 'haproxy' && op.outcome === 'ok').map((op) => op.returnMs).sort((a, b) => a - b);
  let longest = 0;
  for (let i = 1; i < answers.length; i++) longest = Math.max(longest, answers[i]! - answers[i - 1]!);
  return Math.round(longest);
}

/**
 * Judges the history, shows the verdict, then draws the report. The verdict never waits on the
 * report, and a report that cannot be drawn costs the report, not the verdict.
 */
async function judge(history: History, historyFile: string, reportFile: string, started: number, reporter: Reporter): Promise<CheckResult> {
  const checked = await reporter.step(`check ${history.operations.length} operations`, async () => checkHistory(history));
  const { committedAt: _committedAt, ...checker } = checked;
  const result: CheckResult = { ok: checked.ok, checker, faults: history.faults, longestUnavailableMs: longestUnavailable(history), historyFile, reportFile, durationMs: Date.now() - started };
  reporter.info(checked.ok ? `PASS: no violation in ${history.operations.length} operations` : `FAIL: ${checked.violations.length + Object.values(checked.more).reduce((a, b) => a + (b ?? 0), 0)} violations`);
  try {
    await writeFile(reportFile, renderCheckReport(history, checked));
  } catch (error) {
    result.reportError = (error as Error).message;
    reporter.warn(`the report could not be drawn (${(error as Error).message}); the verdict and the history stand: etcd-lab check --verify ${historyFile}`);
  }
  return result;
}

/** `--verify`: a saved history checked again; pure, so no lab (or Docker) is needed. */
async function verifySaved(file: string, reporter: Reporter): Promise<CheckResult> {
  const started = Date.now();
  const text = await readFile(file, 'utf8').catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`${file} does not exist`, { hint: 'check prints where it saved the history: generated/check-….json', exitCode: ExitCode.badInput });
    throw fileError(error, file, 'the history file', 'point --verify at a readable file');
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${file} is not a history etcd-lab check saved: not JSON (${(error as Error).message})`, { exitCode: ExitCode.badInput });
  }
  let history: History;
  try {
    history = validateHistory(json);
  } catch (error) {
    if (!(error instanceof InvalidHistory)) throw error;
    throw new UserError(`${file} is not a history the checker can judge: ${error.problems.length + error.more} problem${error.problems.length + error.more === 1 ? '' : 's'}`, {
      problems: error.problems.map((p) => ({ path: p.path, message: p.message })),
      hint: `${error.more > 0 ? `(and ${error.more} more) ` : ''}a history is what \`etcd-lab check\` saves (docs/failure.md#the-history-format); fix the file, or record a new one`,
      exitCode: ExitCode.badInput,
    });
  }
  return judge(history, file, `${file.replace(/\.json$/, '')}.html`, started, reporter);
}

export async function check(opts: CheckOptions, reporter: Reporter): Promise<CheckResult> {
  if (opts.verify) return verifySaved(opts.verify, reporter);
  return withLab(opts, { lock: 'check', detail: opts.faults !== undefined ? `${opts.faults} faults` : undefined }, reporter, (runtime) => checkLab(runtime, opts, reporter));
}

/** The upgrade fault's image and version, refused before any client starts if etcd does not allow the step. */
async function upgradeTarget(runtime: LabRuntime, image: string | undefined, reporter: Reporter): Promise<UpgradeTarget> {
  if (!image) throw upgradeImageNeeded();
  return reporter.step(`etcd version in ${image}`, async (step) => {
    const version = await etcdVersionInImage(runtime, image);
    const { cluster, servers } = await versionsOf(runtime);
    const refusal = upgradeRefusal(cluster, version, servers);
    if (refusal) throw new UserError(`the upgrade fault cannot move lab "${runtime.name}" to etcd ${version}: ${refusal}`, { exitCode: ExitCode.refused });
    step.update(`${version} (cluster version ${cluster})`);
    return { image, version };
  });
}

/**
 * After a check with upgrade faults: every member moved → the image recorded where `up` reads it
 * (as `etcd-lab upgrade` does), so the next `up` does not take the members back; some moved → said,
 * with the command that finishes the job.
 */
async function settleUpgrade(runtime: LabRuntime, to: UpgradeTarget, reporter: Reporter): Promise<void> {
  const members = await runtime.memberContainers();
  const moved = members.filter((c) => c.image === to.image).map((c) => c.member);
  if (moved.length === 0) return;
  if (moved.length === runtime.topology.members.length) {
    await reporter.step(`every member on ${to.image}: recorded for the next \`up\``, () => recordEtcdImage(runtime, to.image));
    await reporter
      .step(`cluster version of etcd ${to.version}`, (step) => clusterVersionFollows(runtime, to.version, step))
      .catch((error: Error) => reporter.warn(`${error.message}: \`etcd-lab status\` shows the cluster version`));
    return;
  }
  reporter.warn(`the upgrade faults moved ${moved.join(', ')} to etcd ${to.version}, not the others: \`etcd-lab upgrade --etcd-image ${to.image}\` finishes the rolling upgrade (an \`up\` before that would take the moved members back, which etcd does not allow)`);
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
  const impaired = status.members.filter((m) => m.impaired).map((m) => `${m.name} (${m.impaired})`);
  if (impaired.length > 0) {
    // Its faults are its own: one left in place would run under the whole check, unrecorded (and it is
    // the likelier reason a member is unhealthy, so it is said first).
    throw new UserError(`check needs every member's network whole first: ${impaired.join(', ')} impaired`, { hint: '`etcd-lab heal`, then check again', exitCode: ExitCode.refused });
  }
  if (status.quorum.healthy !== size) {
    const down = status.members.filter((m) => !m.healthy).map((m) => `${m.name} (${m.reason})`);
    throw new UserError(`check needs every member healthy first: ${down.join(', ')} not healthy; ${status.summary}`, {
      hint: 'run `etcd-lab up`, or `etcd-lab start` / `unpause` / `heal`, then check again',
      exitCode: ExitCode.refused,
    });
  }

  // The network faults' helper image, built before the clients start, not inside a fault's window.
  const kinds = opts.nemesis ?? DEFAULT_NEMESES;
  const used = kinds.slice(0, opts.faults ?? 3);
  if (used.some(isImpairment)) await runtime.buildImages({ nettoolsOnly: true }, reporter);
  const upgrade = used.includes('upgrade') ? await upgradeTarget(runtime, opts.upgradeImage, reporter) : undefined;

  let members = await runtime.memberEndpoints();
  const refresh = async () => {
    members = await runtime.memberEndpoints();
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const { clients, watchers } = clientsFor(runtime, opts.clients ?? 8, () => members);
  const workload = new Workload({
    prefix: `etcd-lab/check/${stamp}/`,
    keys: opts.keys ?? 10,
    traffic: opts.traffic ?? 'etcd',
    clients,
    watchers,
    rate: opts.rate ?? 200,
    callTimeoutMs: 1000,
    reads: opts.reads ?? 'linearizable',
    control: runtime.client,
    members: async () => [...(await runtime.memberEndpoints())].map(([name, endpoint]) => ({ name, endpoint })),
    lab: lab.spec.name,
  });
  await reporter.step(`${clients.length} clients (${opts.traffic ?? 'etcd'} traffic) and ${watchers.length} watchers on ${opts.keys ?? 10} keys`, () => workload.start());
  const faults: FaultWindow[] = [];
  await guarded({ undoing: 'stopping the clients and restoring every member', leftovers: () => membersOut(runtime) }, async () => {
    try {
      await runNemesis(kinds, opts.faults ?? 3, { runtime, reporter, holdMs: opts.holdMs ?? 1500, now: () => workload.now(), watched: () => workload.watchedRevision(), membersChanged: refresh, upgrade }, faults);
    } catch (error) {
      // Never leave a member killed, paused or cut off: put everything back, then report.
      const restored = await restoreLab(runtime, reporter);
      await workload.stop(faults).catch(() => undefined);
      if (upgrade) await settleUpgrade(runtime, upgrade, reporter).catch(() => undefined);
      if (!(error instanceof Interrupted)) throw error;
      throw new Interrupted(
        `check interrupted after ${faults.length} fault${faults.length === 1 ? '' : 's'}; every member is back${restored.length > 0 ? ` (${restored.join('; ')})` : ''}`,
        'no verdict: the workload was cut short. `etcd-lab status` shows the members rejoining',
      );
    }
  });
  const history = await reporter.step('stop the clients; every watcher delivers to the end', () => workload.stop(faults));
  if (upgrade) await settleUpgrade(runtime, upgrade, reporter);
  await mkdir(lab.outDir, { recursive: true });
  const historyFile = join(lab.outDir, `check-${stamp}.json`);
  const reportFile = join(lab.outDir, `check-${stamp}.html`);
  // Saved first: a verdict can always be had again from it (`--verify`).
  await writeFile(historyFile, `${JSON.stringify(history)}\n`);
  return judge(history, historyFile, reportFile, started, reporter);
}
