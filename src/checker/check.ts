// The checker: is a recorded history one that a linearizable key-value store with etcd's revisions
// could have produced, and did every watch deliver what was committed? Pure and fast: O(n log n).
//
// Why not a search (Wing–Gong–Lowe, as porcupine and Knossos do)? etcd tells us where each operation
// sits: every write is committed at one store revision, which its watch event carries, and every
// answer carries the revision it was served at. So the order of the writes is not searched for but
// read from the watches (several streams, which must agree), and a search would only find that same
// order, at exponential cost once a failure leaves writes whose outcome is unknown. What is left to
// check is that the order is possible: each read's answer is the store at its revision, and nothing
// that completed before an operation began sits after it. Given the positions, those checks are
// exactly linearizability (a linearization exists iff no real-time edge points backwards). One model
// over all keys, not one per key, because a revision is global: a read at revision R promises every
// key as of R, and transactions write several keys at once.
import { describeOperation, writtenValues, type History, type Operation, type WatchEvent, type WatchStream } from './history.js';

export type ViolationKind =
  /** A read returned a state older than one already seen or written before it began. */
  | 'stale-read'
  /** Real-time order broken otherwise: a write committed before one that completed before it began, or a read that saw a write not yet asked for. */
  | 'order'
  /** A read's value (or mod_revision) is not what the store held at the revision it answered at. */
  | 'wrong-value'
  /** An acknowledged write that was never committed. */
  | 'lost-write'
  /** A write reported failed for certain, committed after all. */
  | 'failed-write-applied'
  /** One value committed twice: a non-idempotent request applied twice (a lost update). */
  | 'applied-twice'
  /** An acknowledged write answered with another revision than the one it was committed at. */
  | 'revision-mismatch'
  /** A compare-and-set decided against the key's real mod_revision, or a transaction applied in part. */
  | 'atomicity'
  /** A watch delivered changes out of order, twice, split one revision, or differently from another watch. */
  | 'watch-order'
  | 'watch-duplicate'
  | 'watch-mismatch'
  /** A watch skipped a committed change it should have delivered. */
  | 'watch-gap'
  /** A change nobody asked for (a value no client wrote, a delete nobody sent). */
  | 'unexplained-change'
  /** The final read disagrees with the committed changes. */
  | 'final-state'
  /** No watch covered these revisions: what happened there cannot be known. */
  | 'incomplete';

export interface Violation {
  kind: ViolationKind;
  message: string;
  /** The operations that show it, fewest first: the history's ids. */
  operations: number[];
  /** The watch streams involved, by id. */
  watches: number[];
  revision?: number;
}

export interface CheckResult {
  ok: boolean;
  violations: Violation[];
  /** Violations found beyond those listed (each kind lists at most MAX_PER_KIND). */
  more: Partial<Record<ViolationKind, number>>;
  counts: {
    operations: number;
    ok: number;
    failed: number;
    unknown: number;
    /** Of the unknown writes: committed after all, and not. */
    unknownCommitted: number;
    unknownNotCommitted: number;
    reads: number;
    writes: number;
    /** Revisions with changes to the key space, and the watch events delivered in all. */
    committedRevisions: number;
    watchEvents: number;
    watchStreams: number;
  };
  /** Each write's commit revision, by operation id (what the timeline draws). */
  committedAt: Record<number, number>;
  elapsedMs: number;
}

export const MAX_PER_KIND = 20;

/** A committed revision: its changes, sorted by key. */
interface Commit {
  revision: number;
  events: WatchEvent[];
  /** The first stream that delivered it. */
  stream: number;
}

/** Where an operation sits in the order: writes at their commit revision, reads at the revision they answered at. */
interface Placed {
  op: Operation;
  position: number;
  isWrite: boolean;
}

class Findings {
  readonly violations: Violation[] = [];
  readonly more: Partial<Record<ViolationKind, number>> = {};
  private readonly perKind = new Map<ViolationKind, number>();

  add(kind: ViolationKind, message: string, operations: number[] = [], watches: number[] = [], revision?: number): void {
    const n = (this.perKind.get(kind) ?? 0) + 1;
    this.perKind.set(kind, n);
    if (n > MAX_PER_KIND) this.more[kind] = (this.more[kind] ?? 0) + 1;
    else this.violations.push({ kind, message, operations, watches, ...(revision !== undefined ? { revision } : {}) });
  }
}

const sameEvent = (a: WatchEvent, b: WatchEvent) => a.key === b.key && a.type === b.type && a.value === b.value && a.modRevision === b.modRevision;
const eventText = (e: WatchEvent) => (e.type === 'put' ? `put ${e.key}=${e.value}` : `delete ${e.key}`);

/** The revisions a stream promises to have delivered in full: [from, to]. */
function coverage(stream: WatchStream): [number, number] {
  if (stream.end === 'closed' && stream.upToRevision !== undefined) return [stream.fromRevision, stream.upToRevision];
  const last = stream.events.at(-1)?.revision;
  return [stream.fromRevision, last ?? stream.fromRevision - 1];
}

/** Each stream on its own: ordered, no duplicates, one revision per response. */
function checkStreamShape(stream: WatchStream, findings: Findings): void {
  const seen = new Set<string>();
  const batchOf = new Map<number, number>();
  let last = 0;
  for (const e of stream.events) {
    if (e.revision < last) findings.add('watch-order', `watch ${stream.id} (${stream.via}) delivered revision ${e.revision} after ${last}`, [], [stream.id], e.revision);
    last = Math.max(last, e.revision);
    const id = `${e.revision}/${e.key}`;
    if (seen.has(id)) findings.add('watch-duplicate', `watch ${stream.id} (${stream.via}) delivered ${eventText(e)} at revision ${e.revision} twice`, [], [stream.id], e.revision);
    seen.add(id);
    const batch = batchOf.get(e.revision);
    if (batch !== undefined && batch !== e.batch) findings.add('watch-order', `watch ${stream.id} (${stream.via}) split revision ${e.revision} over two responses`, [], [stream.id], e.revision);
    batchOf.set(e.revision, e.batch);
    if (e.revision < stream.fromRevision) findings.add('watch-order', `watch ${stream.id} (${stream.via}) asked from revision ${stream.fromRevision} and got ${e.revision}`, [], [stream.id], e.revision);
  }
}

/** The committed changes, from every stream; streams that cover a revision must agree on it. */
function buildLog(history: History, findings: Findings): Map<number, Commit> {
  const log = new Map<number, Commit>();
  for (const stream of history.watches) {
    checkStreamShape(stream, findings);
    const byRevision = new Map<number, WatchEvent[]>();
    for (const e of stream.events) {
      const events = byRevision.get(e.revision) ?? [];
      // A duplicate is reported above; it is not a second change.
      if (!events.some((x) => x.key === e.key && sameEvent(x, e))) byRevision.set(e.revision, [...events, e]);
    }
    for (const [revision, events] of byRevision) {
      const sorted = [...events].sort((a, b) => a.key.localeCompare(b.key));
      const known = log.get(revision);
      if (!known) {
        log.set(revision, { revision, events: sorted, stream: stream.id });
        continue;
      }
      const agree = known.events.length === sorted.length && known.events.every((e, i) => sameEvent(e, sorted[i]!));
      if (!agree) {
        findings.add(
          'watch-mismatch',
          `watches ${known.stream} and ${stream.id} disagree on revision ${revision}: ${known.events.map(eventText).join(', ')} vs ${sorted.map(eventText).join(', ')}`,
          [],
          [known.stream, stream.id],
          revision,
        );
      }
    }
  }
  return log;
}

/** Every stream delivered every committed change in the revisions it covers. */
function checkReliable(history: History, revisions: number[], log: Map<number, Commit>, findings: Findings): void {
  for (const stream of history.watches) {
    const [from, to] = coverage(stream);
    if (stream.end === 'compacted') continue; // told: it owes nothing below the compaction
    const delivered = new Set(stream.events.map((e) => e.revision));
    for (let i = lowerBound(revisions, from); i < revisions.length && revisions[i]! <= to; i++) {
      const r = revisions[i]!;
      if (!delivered.has(r)) {
        findings.add('watch-gap', `watch ${stream.id} (${stream.via}) skipped revision ${r} (${log.get(r)!.events.map(eventText).join(', ')}), which watch ${log.get(r)!.stream} delivered`, [], [stream.id, log.get(r)!.stream], r);
      }
    }
  }
}

/** Revisions after the start that no stream covers: nothing can be said about them. */
function uncovered(history: History): [number, number][] {
  const ranges = history.watches.filter((s) => s.end !== 'compacted').map(coverage).filter(([a, b]) => b >= a).sort((x, y) => x[0] - y[0]);
  const gaps: [number, number][] = [];
  let next = history.startRevision + 1;
  for (const [a, b] of ranges) {
    if (a > next) gaps.push([next, a - 1]);
    next = Math.max(next, b + 1);
  }
  if (next <= history.final.revision) gaps.push([next, history.final.revision]);
  return gaps;
}

export function lowerBound(sorted: number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Each key's changes in revision order: what it held at any revision. */
class Store {
  private readonly changes = new Map<string, { revision: number; value?: string }[]>();

  apply(commit: Commit): void {
    for (const e of commit.events) {
      const list = this.changes.get(e.key) ?? [];
      list.push({ revision: commit.revision, ...(e.type === 'put' ? { value: e.value } : {}) });
      this.changes.set(e.key, list);
    }
  }

  /** The key as of `revision`: its value and mod_revision (0 when absent). */
  at(key: string, revision: number): { value?: string; modRevision: number } {
    const list = this.changes.get(key) ?? [];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.revision <= revision) lo = mid + 1;
      else hi = mid;
    }
    const last = list[lo - 1];
    return last && last.value !== undefined ? { value: last.value, modRevision: last.revision } : { modRevision: 0 };
  }
}

/** Which operation made each change; checks what each write was answered against what was committed. */
function matchWrites(history: History, revisions: number[], log: Map<number, Commit>, writerOf: Map<string, Operation>, findings: Findings): Map<number, number> {
  const committedAt = new Map<number, number>();
  const deletesLeft = history.operations.filter((op) => op.request.op === 'delete' && op.outcome !== 'failed');
  for (const r of revisions) {
    const commit = log.get(r)!;
    const writers = new Set<Operation>();
    for (const e of commit.events) {
      const op = e.type === 'put' ? writerOf.get(e.value ?? '') : takeDelete(deletesLeft, e, r);
      if (!op) {
        findings.add('unexplained-change', `revision ${r}: ${eventText(e)}, which no client asked for`, [], [commit.stream], r);
        continue;
      }
      writers.add(op);
    }
    for (const op of writers) {
      const earlier = committedAt.get(op.id);
      if (earlier !== undefined && earlier !== r) {
        findings.add('applied-twice', `${describeOperation(op)} was committed twice, at revisions ${earlier} and ${r}`, [op.id], [commit.stream], r);
        continue;
      }
      committedAt.set(op.id, r);
      if (op.request.op === 'txn') {
        const keys = new Set(commit.events.filter((e) => writtenValues(op.request).includes(e.value ?? '')).map((e) => e.key));
        if (keys.size !== op.request.puts.length) findings.add('atomicity', `${describeOperation(op)} was committed in part at revision ${r}`, [op.id], [commit.stream], r);
      }
    }
  }
  for (const op of history.operations) checkWriteOutcome(op, committedAt.get(op.id), findings);
  return committedAt;
}

/** The delete that made a delete event: the acknowledged one at that revision, else one whose outcome is unknown. */
function takeDelete(candidates: Operation[], e: WatchEvent, revision: number): Operation | undefined {
  if (e.type !== 'delete') return undefined;
  const onKey = (op: Operation) => op.request.op === 'delete' && op.request.key === e.key;
  // Acknowledged as the one that deleted it: deleted 1 at this revision (a concurrent delete that
  // found the key gone answers at the same revision with deleted 0).
  let i = candidates.findIndex((op) => onKey(op) && op.outcome === 'ok' && op.response?.op === 'delete' && op.response.deleted > 0 && op.response.revision === revision);
  if (i < 0) i = candidates.findIndex((op) => onKey(op) && op.outcome === 'unknown');
  return i < 0 ? undefined : candidates.splice(i, 1)[0];
}

function checkWriteOutcome(op: Operation, committed: number | undefined, findings: Findings): void {
  const r = op.request;
  const response = op.response;
  if (r.op === 'get') return;
  if (op.outcome === 'failed') {
    if (committed !== undefined) findings.add('failed-write-applied', `${describeOperation(op)} was reported failed, yet committed at revision ${committed}`, [op.id], [], committed);
    return;
  }
  if (op.outcome !== 'ok' || !response) return;
  const appliedSaid = response.op === 'cas' ? response.succeeded : response.op === 'delete' ? response.deleted > 0 : true;
  if (appliedSaid && committed === undefined) {
    findings.add('lost-write', `${describeOperation(op)} was acknowledged at revision ${response.revision}, but no watch delivered it`, [op.id], [], response.revision);
  } else if (!appliedSaid && committed !== undefined) {
    findings.add('atomicity', `${describeOperation(op)} answered that it changed nothing, yet it was committed at revision ${committed}`, [op.id], [], committed);
  } else if (committed !== undefined && committed !== response.revision) {
    findings.add('revision-mismatch', `${describeOperation(op)} was answered with revision ${response.revision}, but committed at ${committed}`, [op.id], [], committed);
  }
}

/** Every answer that reads (a get, a compare-and-set, a delete that found nothing) against the store at its revision. */
function checkReads(history: History, store: Store, committedAt: Map<number, number>, writerOf: (value: string | undefined) => Operation | undefined, findings: Findings): void {
  for (const op of history.operations) {
    const r = op.request;
    const response = op.response;
    if (op.outcome !== 'ok' || !response) continue;
    if (r.op === 'get' && response.op === 'get') {
      const held = store.at(r.key, response.revision);
      if (held.value !== response.value || (response.value !== undefined && held.modRevision !== response.modRevision)) {
        const witnesses = [op.id, writerOf(held.value)?.id, writerOf(response.value)?.id].filter((x): x is number => x !== undefined);
        findings.add(
          'wrong-value',
          `${describeOperation(op)}, but at revision ${response.revision} ${r.key} held ${held.value === undefined ? 'nothing' : `${held.value} (mod ${held.modRevision})`}`,
          witnesses,
          [],
          response.revision,
        );
      }
    } else if (r.op === 'cas' && response.op === 'cas') {
      // Applied: the compare held just before its revision; refused: it did not hold at the answer's.
      const at = response.succeeded ? (committedAt.get(op.id) ?? response.revision) - 1 : response.revision;
      const held = store.at(r.key, at);
      if ((held.modRevision === r.modRevision) !== response.succeeded) {
        findings.add(
          'atomicity',
          `${describeOperation(op)}, but at revision ${at} ${r.key}'s mod_revision was ${held.modRevision}`,
          [op.id, writerOf(held.value)?.id].filter((x): x is number => x !== undefined),
          [],
          at,
        );
      }
    } else if (r.op === 'delete' && response.op === 'delete' && response.deleted === 0) {
      const held = store.at(r.key, response.revision);
      if (held.value !== undefined) {
        findings.add('wrong-value', `${describeOperation(op)}, but at revision ${response.revision} ${r.key} held ${held.value}`, [op.id, writerOf(held.value)?.id].filter((x): x is number => x !== undefined), [], response.revision);
      }
    }
  }
}

/** Where each operation sits: committed writes at their revision, answered reads at theirs; the rest nowhere. */
function place(history: History, committedAt: Map<number, number>): Placed[] {
  const placed: Placed[] = [];
  for (const op of history.operations) {
    const committed = committedAt.get(op.id);
    if (committed !== undefined) placed.push({ op, position: committed, isWrite: true });
    else if (op.outcome === 'ok' && op.response) placed.push({ op, position: op.response.revision, isWrite: false });
  }
  return placed;
}

/**
 * Real time: whatever completed before an operation began must sit before it — strictly before a
 * write (each write has its own revision), at or before a read. A write whose outcome is unknown has
 * no known completion, so it constrains nothing after it; committed, it still must sit after what
 * completed before its call. One sweep over the completed operations in the order they returned.
 */
function checkRealTime(placed: Placed[], findings: Findings): void {
  const completed = placed.filter((p) => p.op.outcome === 'ok').sort((a, b) => a.op.returnMs - b.op.returnMs);
  const returns = completed.map((p) => p.op.returnMs);
  // The furthest position among the first i completed operations, and which one holds it.
  const best: Placed[] = [];
  // On a tie the later one: it is nearer the operation it is shown beside.
  for (const p of completed) best.push(best.length && best.at(-1)!.position > p.position ? best.at(-1)! : p);
  for (const b of placed) {
    const i = lowerBound(returns, b.op.callMs) - 1; // the last one that returned strictly before b's call
    if (i < 0) continue;
    const a = best[i]!;
    const broken = b.isWrite ? a.position >= b.position : a.position > b.position;
    if (!broken) continue;
    if (!b.isWrite) {
      const sameClient = a.op.client === b.op.client ? ` (the same client: its revisions went backwards)` : '';
      findings.add(
        'stale-read',
        `stale read: ${describeOperation(b.op)} answered at revision ${b.position}, but ${describeOperation(a.op)} had ${a.isWrite ? 'committed' : 'seen'} revision ${a.position} before it began${sameClient}`,
        [a.op.id, b.op.id],
        [],
        b.position,
      );
    } else {
      findings.add(
        'order',
        `${describeOperation(b.op)} was committed at revision ${b.position}, yet ${describeOperation(a.op)} had ${a.isWrite ? 'committed' : 'seen'} revision ${a.position} before it began`,
        [a.op.id, b.op.id],
        [],
        b.position,
      );
    }
  }
}

function checkFinal(history: History, store: Store, findings: Findings): void {
  for (const key of history.keys) {
    const held = store.at(key, history.final.revision);
    const read = history.final.values[key];
    if (held.value !== read?.value || (read && read.modRevision !== held.modRevision)) {
      findings.add('final-state', `at the end ${key} holds ${read ? `${read.value} (mod ${read.modRevision})` : 'nothing'}, but the committed changes leave ${held.value ?? 'nothing'}`, [], [], history.final.revision);
    }
  }
}

export function checkHistory(history: History): CheckResult {
  const started = performance.now();
  const findings = new Findings();
  const log = buildLog(history, findings);
  const revisions = [...log.keys()].sort((a, b) => a - b);
  checkReliable(history, revisions, log, findings);
  for (const [from, to] of uncovered(history)) {
    findings.add('incomplete', `no watch covered revisions ${from}–${to}: the changes there are unknown, so the history cannot be checked whole`, [], [], from);
  }
  // Every value is written by one operation: a change's value names its writer.
  const writer = new Map<string, Operation>();
  for (const op of history.operations) for (const v of writtenValues(op.request)) writer.set(v, op);
  const committedAt = matchWrites(history, revisions, log, writer, findings);
  const store = new Store();
  for (const r of revisions) store.apply(log.get(r)!);
  checkReads(history, store, committedAt, (v) => (v === undefined ? undefined : writer.get(v)), findings);
  checkRealTime(place(history, committedAt), findings);
  checkFinal(history, store, findings);

  const ops = history.operations;
  const writes = ops.filter((op) => op.request.op !== 'get');
  const unknownWrites = writes.filter((op) => op.outcome === 'unknown');
  return {
    ok: findings.violations.length === 0,
    violations: findings.violations,
    more: findings.more,
    counts: {
      operations: ops.length,
      ok: ops.filter((op) => op.outcome === 'ok').length,
      failed: ops.filter((op) => op.outcome === 'failed').length,
      unknown: ops.filter((op) => op.outcome === 'unknown').length,
      unknownCommitted: unknownWrites.filter((op) => committedAt.has(op.id)).length,
      unknownNotCommitted: unknownWrites.filter((op) => !committedAt.has(op.id)).length,
      reads: ops.length - writes.length,
      writes: writes.length,
      committedRevisions: revisions.length,
      watchEvents: history.watches.reduce((n, s) => n + s.events.length, 0),
      watchStreams: history.watches.length,
    },
    committedAt: Object.fromEntries(committedAt),
    elapsedMs: performance.now() - started,
  };
}
