// Long operations (up, down, kind, scale, upgrade, snapshot restore, member replace, defrag, alarm
// recover, the faults) are ordered lists of
// small named steps, as kind's create is a list of actions. One runner runs them: one status line
// each, and on a failure or Ctrl-C it takes back what the started steps made, last first, unless
// --retain — but never past a step that commits (from where undoing would do harm). The lists are
// data, so their order is unit-tested without Docker.
import { guarded, Interrupted, throwIfInterrupted } from '../interrupt.js';
import type { Reporter, StepHandle } from '../progress.js';

export interface Step<C> {
  /** The status line; a function when it names what an earlier step found. */
  title: string | ((ctx: C) => string);
  /** It shows its own lines (image builds, readiness waits): the runner adds none. */
  reportsItself?: boolean;
  /** Skipped (no line) when this says no: a reload nobody needs, a network that is already there. */
  when?: (ctx: C) => boolean;
  run(ctx: C, step: StepHandle): Promise<void>;
  /**
   * Takes back what `run` made, even half-made: it reads from the context what was made, and says
   * what it removed ("network kind"). Called for every step that started, last first. Quiet: a
   * step whose undo is long shows its own progress.
   */
  undo?(ctx: C, error: unknown): Promise<string[]>;
  /**
   * The point of no return: once this step has run (true), or once it has done what it says
   * (a function of the context: "the member is in etcd's membership"), undoing the steps before it
   * would do harm. A failure after that undoes only the steps started after it, and `failure`
   * is told so.
   */
  commits?: boolean | ((ctx: C) => boolean);
}

export interface StepsOptions {
  /** The command, for the messages: "kind interrupted; rolled back ...". */
  command: string;
  /** Keep what the run made when it fails, to inspect. */
  retain?: boolean;
  /** How to remove what --retain kept ("`etcd-lab down --volumes` removes it"). */
  retainedHint?: string;
  /** What the first Ctrl-C says happens now; "rolling back what this run created" by default. */
  undoing?: string;
  /** What would be left if the process stopped now, for the line a second Ctrl-C prints. */
  leftovers?: () => Promise<string[]>;
  /**
   * What a failure (or Ctrl-C) becomes, once the runner has undone what it may: the operation's own
   * words for where it stopped and what to do. `committed`: a step past the point of no return had
   * started. Returning the error itself leaves the runner's words (an interrupt says what was
   * rolled back); without it, the same.
   */
  failure?: (error: unknown, at: { committed: boolean }) => unknown;
}

/** The last started step that passed its point of no return; -1 when none did. */
function lastCommitted<C>(started: Step<C>[], ctx: C): number {
  for (let i = started.length - 1; i >= 0; i--) {
    const commits = started[i]!.commits;
    if (commits === true || (typeof commits === 'function' && commits(ctx))) return i;
  }
  return -1;
}

export function titleOf<C>(step: Step<C>, ctx: C): string {
  return typeof step.title === 'string' ? step.title : step.title(ctx);
}

/**
 * Runs `steps` in order on `ctx`. A failure (or Ctrl-C) undoes the started steps, last first, then
 * rethrows; an interrupt becomes one Interrupted that says what was rolled back. An undo that
 * fails is reported and the others still run: a half-undone lab beats one nobody tried to clean.
 */
export async function runSteps<C>(steps: Step<C>[], ctx: C, reporter: Reporter, opts: StepsOptions): Promise<C> {
  const undoable = steps.some((s) => s.undo);
  const undoing = undoable && opts.retain ? 'stopping; --retain keeps what this run made' : (opts.undoing ?? (undoable ? 'rolling back what this run created' : 'stopping'));
  return guarded({ undoing, leftovers: opts.leftovers }, async () => {
    const started: Step<C>[] = [];
    try {
      for (const step of steps) {
        throwIfInterrupted();
        if (step.when && !step.when(ctx)) continue;
        started.push(step);
        if (step.reportsItself) await step.run(ctx, { update: () => {} });
        else await reporter.step(titleOf(step, ctx), (handle) => step.run(ctx, handle));
      }
      return ctx;
    } catch (error) {
      const point = lastCommitted(started, ctx);
      const past = point >= 0;
      // Past the point of no return only what came after it is taken back.
      const after = started.slice(point + 1);
      const undoable = after.some((s) => s.undo);
      if (undoable && opts.retain && !past) reporter.warn(`--retain: leaving what this run made as it is, to inspect${opts.retainedHint ? ` (${opts.retainedHint})` : ''}`);
      const undone = undoable && !opts.retain ? await undoSteps(after, ctx, reporter, error) : [];
      // The operation's own words, when it has any; the error itself back means the runner's.
      const said = opts.failure ? await opts.failure(error, { committed: past }) : error;
      if (said !== error || !(error instanceof Interrupted)) throw said;
      if (past) throw new Interrupted(`${opts.command} interrupted past the point where it can be undone: what it had done stays`);
      if (!undoable) {
        // A bare Ctrl-C gets the command's name; a step's own message (what it left) is kept.
        throw error.message === 'interrupted' ? new Interrupted(`${opts.command} interrupted before it had made anything to roll back`) : error;
      }
      if (opts.retain) throw new Interrupted(`${opts.command} interrupted; --retain kept what it made`, opts.retainedHint);
      throw new Interrupted(`${opts.command} interrupted; rolled back what it had created (${undone.length > 0 ? undone.join(', ') : 'nothing yet'})`);
    }
  });
}

async function undoSteps<C>(started: Step<C>[], ctx: C, reporter: Reporter, error: unknown): Promise<string[]> {
  const undone: string[] = [];
  for (const step of [...started].reverse()) {
    if (!step.undo) continue;
    try {
      undone.push(...(await step.undo(ctx, error)));
    } catch (undoError) {
      const reason = undoError instanceof Error ? undoError.message : String(undoError);
      reporter.warn(`could not undo "${titleOf(step, ctx)}": ${reason}; \`etcd-lab status\` shows what is left`);
    }
  }
  return undone;
}
