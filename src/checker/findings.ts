// What the checker finds: the kinds of violation, each said once with the operations and watch
// streams it concerns (at most MAX_PER_KIND of a kind, the rest counted), and the result it returns.
import type { Operation, WatchEvent } from './history.js';
import type { Change, KeyState } from './model.js';

export type ViolationKind =
  /** A read returned a state older than one already seen or written before it began. */
  | 'stale-read'
  /** Real-time order broken otherwise: a write committed before one that completed before it began, or a read that saw a write not yet asked for. */
  | 'order'
  /** A read's answer (value, mod_revision, a list's keys) is not what the store held at the revision it answered for. */
  | 'wrong-value'
  /** An acknowledged change that was never committed. */
  | 'lost-write'
  /** A write reported failed for certain, committed after all. */
  | 'failed-write-applied'
  /** One request committed twice: a request applied twice (a lost update). */
  | 'applied-twice'
  /** An acknowledged write answered with another revision than the one it was committed at. */
  | 'revision-mismatch'
  /** A request's changes spread over several revisions, or one that answered it changed nothing, committed. */
  | 'atomicity'
  /** A compare-and-set or guarded transaction decided against what its compare met at its revision. */
  | 'compare'
  /** A committed change that is not what its request would do at its revision (another key, another value, a delete of nothing, a missing part). */
  | 'replay'
  /** The changes of one revision come from two requests. */
  | 'shared-revision'
  /** A watch delivered changes out of order, twice, split one revision, or broke its progress notification's promise. */
  | 'watch-order'
  | 'watch-duplicate'
  /** Two watches disagree on a revision. */
  | 'watch-mismatch'
  /** A watch skipped a committed change it should have delivered. */
  | 'watch-gap'
  /** A watch's event says something else about the key than the store held (prev_kv, create revision, version). */
  | 'watch-event'
  /** A change nobody asked for (a value no client wrote, a delete nobody sent, no lease ending). */
  | 'unexplained-change'
  /** A lease ended too early, took a key after it ended, or was kept alive after it ended. */
  | 'lease'
  /** The final read disagrees with the committed changes. */
  | 'final-state'
  /** Members hashed different contents at one revision. */
  | 'hash-mismatch'
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
    /** Serializable reads answered from a state older than the newest one could know of: legal, counted. */
    staleSerializableReads: number;
    /** Revisions with changes to the key space, and the watch events delivered in all. */
    committedRevisions: number;
    /** Committed revisions that were a lease's keys deleted as it expired. */
    leaseExpiries: number;
    watchEvents: number;
    watchStreams: number;
  };
  /** Each write's commit revision, by operation id (what the timeline draws). */
  committedAt: Record<number, number>;
  elapsedMs: number;
}

export const MAX_PER_KIND = 20;

/** A committed revision: its changes, sorted by key, and the first stream that delivered it. */
export interface Commit {
  revision: number;
  events: WatchEvent[];
  stream: number;
}

/** Where an operation sits in the order: writes at their commit revision, reads at the revision they answered at. */
export interface Placed {
  op: Operation;
  position: number;
  isWrite: boolean;
}

export class Findings {
  readonly violations: Violation[] = [];
  readonly more: Partial<Record<ViolationKind, number>> = {};
  private readonly perKind = new Map<ViolationKind, number>();

  add(kind: ViolationKind, message: string, operations: (number | undefined)[] = [], watches: number[] = [], revision?: number): void {
    const n = (this.perKind.get(kind) ?? 0) + 1;
    this.perKind.set(kind, n);
    if (n > MAX_PER_KIND) this.more[kind] = (this.more[kind] ?? 0) + 1;
    else this.violations.push({ kind, message, operations: operations.filter((x): x is number => x !== undefined), watches, ...(revision !== undefined ? { revision } : {}) });
  }
}

export const sameEvent = (a: WatchEvent, b: WatchEvent) => a.key === b.key && a.type === b.type && a.value === b.value && a.modRevision === b.modRevision && (a.lease ?? 0) === (b.lease ?? 0);
export const eventText = (e: WatchEvent) => (e.type === 'put' ? `put ${e.key}=${e.value}` : `delete ${e.key}`);
export const changeOf = (e: WatchEvent): Change => (e.type === 'put' ? { key: e.key, type: 'put', value: e.value ?? '', ...(e.lease ? { lease: e.lease } : {}) } : { key: e.key, type: 'delete' });
export const stateText = (s: KeyState | undefined) => (s ? `${s.value} (mod ${s.modRevision})` : 'nothing');

/** The keys a stream watches and the kinds of event it asked for. */

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
