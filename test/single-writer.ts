// For tests that run an operation under writes: one sequential writer through HAProxy, each key
// written once (so "its value" and "its order" are well defined), every call with a deadline; then
// the verdict — every acknowledged write there with its value, revisions never going back.
// (`etcd-lab check` itself runs concurrent clients and the checker in src/checker/.)
import { putKey, type Endpoint } from '../src/runtime/etcd-http.js';
import { classifyWriteError } from '../src/runtime/clients.js';
/** ok: acknowledged. failed: certainly not applied (refused before it reached raft). unknown: may or may not commit. */
export type Outcome = 'ok' | 'failed' | 'unknown';

export interface WriteOp {
  key: string;
  value: string;
  startMs: number;
  endMs: number;
  outcome: Outcome;
  /** Store revision the acknowledgement carried. */
  revision?: number;
  error?: string;
}

export interface Verdict {
  ok: boolean;
  counts: { writes: number; acknowledged: number; failed: number; unknown: number };
  /** Acknowledged writes whose key is absent afterwards. */
  lost: { key: string; value: string }[];
  /** Acknowledged writes whose key holds another value. */
  wrong: { key: string; expected: string; found: string }[];
  /** Acknowledged writes whose revision is not above an earlier acknowledged write's. */
  revisionRegressions: { key: string; revision: number; previous: number }[];
  /** Longest time between two consecutive acknowledgements (ms). */
  longestGapMs: number;
  problems: string[];
}

export function verifyHistory(writes: WriteOp[], finalValues: Map<string, string>): Verdict {
  const acked = writes.filter((w) => w.outcome === 'ok');
  const verdict: Verdict = {
    ok: true,
    counts: {
      writes: writes.length,
      acknowledged: acked.length,
      failed: writes.filter((w) => w.outcome === 'failed').length,
      unknown: writes.filter((w) => w.outcome === 'unknown').length,
    },
    lost: [],
    wrong: [],
    revisionRegressions: [],
    longestGapMs: 0,
    problems: [],
  };

  for (const w of acked) {
    const found = finalValues.get(w.key);
    if (found === undefined) verdict.lost.push({ key: w.key, value: w.value });
    else if (found !== w.value) verdict.wrong.push({ key: w.key, expected: w.value, found });
  }
  // Unacknowledged writes may be present or absent: a timed-out write can commit after recovery.
  // But if present, it must hold its own value.
  for (const w of writes.filter((x) => x.outcome !== 'ok')) {
    const found = finalValues.get(w.key);
    if (found !== undefined && found !== w.value) verdict.wrong.push({ key: w.key, expected: w.value, found });
  }

  // One sequential writer: each acknowledgement comes after the previous one, so revisions rise.
  const inOrder = [...acked].sort((a, b) => a.startMs - b.startMs);
  let previous = 0;
  for (const w of inOrder) {
    if (w.revision !== undefined) {
      if (w.revision <= previous) verdict.revisionRegressions.push({ key: w.key, revision: w.revision, previous });
      previous = Math.max(previous, w.revision);
    }
  }
  for (let i = 1; i < inOrder.length; i++) {
    verdict.longestGapMs = Math.max(verdict.longestGapMs, inOrder[i]!.endMs - inOrder[i - 1]!.endMs);
  }

  for (const l of verdict.lost) verdict.problems.push(`lost: ${l.key} was acknowledged with ${JSON.stringify(l.value)} but is gone`);
  for (const w of verdict.wrong) verdict.problems.push(`wrong value: ${w.key} holds ${JSON.stringify(w.found)}, expected ${JSON.stringify(w.expected)}`);
  for (const r of verdict.revisionRegressions) {
    verdict.problems.push(`revision went backwards: ${r.key} acknowledged at revision ${r.revision} after ${r.previous}`);
  }
  verdict.ok = verdict.problems.length === 0;
  return verdict;
}

export interface WorkloadOptions {
  endpoint: Endpoint;
  prefix: string;
  /** Deadline of each put. */
  callTimeoutMs: number;
  /** Pause between writes, bounding the rate. */
  pauseMs: number;
  /** Hard bounds: the writer stops at whichever comes first. */
  maxWrites: number;
  maxDurationMs: number;
}

export class Writer {
  readonly history: WriteOp[] = [];
  private stopped = false;
  private running: Promise<void> | undefined;
  readonly origin = Date.now();

  constructor(private readonly opts: WorkloadOptions) {}

  start(): this {
    this.running = this.loop();
    return this;
  }

  async stop(): Promise<WriteOp[]> {
    this.stopped = true;
    await this.running;
    return this.history;
  }

  private async loop(): Promise<void> {
    const { endpoint, prefix, callTimeoutMs, pauseMs, maxWrites, maxDurationMs } = this.opts;
    const width = String(maxWrites).length;
    for (let i = 0; !this.stopped && i < maxWrites && Date.now() - this.origin < maxDurationMs; i++) {
      const key = `${prefix}${String(i).padStart(width, '0')}`;
      const value = `w${i}@${Date.now()}`;
      const startMs = Date.now() - this.origin;
      try {
        const { revision } = await putKey(endpoint, key, value, callTimeoutMs);
        this.history.push({ key, value, startMs, endMs: Date.now() - this.origin, outcome: 'ok', revision });
      } catch (error) {
        const { outcome, reason } = classifyWriteError(error);
        this.history.push({ key, value, startMs, endMs: Date.now() - this.origin, outcome, error: reason });
      }
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  }
}
