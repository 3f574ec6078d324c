// The checker: could a linearizable etcd have produced this history, and did every watch deliver
// what was committed? A model replayed against what happened, in O(n log n).
//
// Why not a search (Wing–Gong–Lowe, as porcupine and Knossos do)? etcd says where each operation
// sits: every change is committed at one store revision, which its watch event carries, and every
// answer carries the revision it was served at. So the order of the changes is read from the watches
// (several streams, which must agree), and each committed change is replayed through an etcd model
// (model.ts) against the state just before its revision: it must be exactly what its request would do
// there, whatever the request's outcome — its keys, its values, its compare, one request per revision.
// That decides every unknown outcome too. What is left is that the order is possible: every answer is
// the store at its revision, and nothing that completed before an operation began sits after it. Given
// the positions, those checks are exactly linearizability (a linearization exists iff no real-time
// edge points backwards). One model over all keys, not one per key: a revision is global.
//
// Cost: the watch events and operations are each indexed once (maps by value, key and revision), the
// replay is one pass over the revisions, a read of the past is a binary search in its key's history,
// and the real-time check is one sweep over the operations sorted by return time: O(n log n) in
// operations and events, plus, for lists, the keys under their prefix (the key space is small).
import { isWrite, type History, type Kv, type Operation } from './history.js';
import { Store } from './model.js';
import { Findings, stateText, type CheckResult } from './findings.js';
import { buildLog, checkReliable, streamsByRevision, uncovered } from './watches.js';
import { checkReads, checkWriteOutcomes, Replay } from './replay.js';
import { checkLeases, checkRealTime, place } from './realtime.js';

export type { CheckResult, Violation, ViolationKind } from './findings.js';
export { MAX_PER_KIND } from './findings.js';
export { lowerBound } from './findings.js';

function checkFinal(history: History, store: Store, findings: Findings): void {
  const { final } = history;
  const keys = new Set([...history.keys, ...Object.keys(final.values)]);
  for (const key of keys) {
    const held = store.at(key, final.revision);
    const read = final.values[key];
    if (held?.value !== read?.value || (read && (read.modRevision !== held?.modRevision || (read.lease ?? 0) !== (held?.lease ?? 0)))) {
      findings.add('final-state', `at revision ${final.revision} ${key} holds ${read ? `${read.value} (mod ${read.modRevision})` : 'nothing'} by the final read, but the committed changes leave ${stateText(held)}`, [], [], final.revision);
    }
  }
}

function checkHashes(history: History, findings: Findings): void {
  const groups = new Map<string, NonNullable<History['hashes']>>();
  for (const h of history.hashes ?? []) {
    const id = `${h.revision}/${h.compactRevision}`;
    groups.set(id, [...(groups.get(id) ?? []), h]);
  }
  for (const group of groups.values()) {
    if (new Set(group.map((h) => h.hash)).size > 1) {
      findings.add('hash-mismatch', `at revision ${group[0]!.revision} (compacted at ${group[0]!.compactRevision}) the members' stores differ: ${group.map((h) => `${h.member} ${h.hash.toString(16)}`).join(', ')}`, [], [], group[0]!.revision);
    }
  }
}

/**
 * The history's key space as of `revision`, as the replay rebuilds it: what a snapshot saved at that
 * revision must bring back (restore's check). Only for a history that checks, and a revision its
 * watches covered.
 */
export function stateAt(history: History, revision: number): Kv[] {
  const findings = new Findings();
  const log = buildLog(history, findings);
  const replay = new Replay(history, findings);
  replay.run([...log.keys()].sort((a, b) => a - b), log, streamsByRevision(history));
  if (findings.violations.length > 0) throw new Error(`the history does not check (${findings.violations[0]!.kind}: ${findings.violations[0]!.message}), so it says nothing of the store`);
  if (revision < history.startRevision || revision > history.final.revision) {
    throw new Error(`revision ${revision} is outside what the history's watches covered (${history.startRevision}–${history.final.revision})`);
  }
  return replay.store.range(history.prefix ?? '', undefined, revision);
}

export function checkHistory(history: History): CheckResult {
  const started = performance.now();
  const findings = new Findings();
  const log = buildLog(history, findings);
  const revisions = [...log.keys()].sort((a, b) => a - b);
  checkReliable(history, revisions, log, findings);
  const lastAnswered = Math.max(history.final.revision, highestAnswer(history));
  for (const [from, to] of uncovered(history, lastAnswered)) {
    findings.add('incomplete', `no watch covered revisions ${from}–${to}: the changes there are unknown, so the history cannot be checked whole`, [], [], from);
  }
  const replay = new Replay(history, findings);
  replay.run(revisions, log, streamsByRevision(history));
  checkWriteOutcomes(history, replay, findings);
  checkReads(history, replay, findings);
  const placed = place(history, replay.committedAt);
  // Without a recorded call time (format 2), the final read began after every operation ended.
  let lastReturn = 0;
  for (const op of history.operations) lastReturn = Math.max(lastReturn, op.returnMs);
  const finalCall = history.final.callMs ?? lastReturn + 1e-3;
  const finalOp: Operation = { id: 0, client: 0, via: 'final read', request: { op: 'list', prefix: history.prefix ?? '' }, callMs: finalCall, returnMs: finalCall, outcome: 'ok' };
  const staleSerializable = checkRealTime(placed, { op: finalOp, position: history.final.readAtRevision ?? history.final.revision, isWrite: false }, findings);
  checkLeases(history, replay, placed, findings);
  checkFinal(history, replay.store, findings);
  checkHashes(history, findings);

  const ops = history.operations;
  const writes = ops.filter((op) => isWrite(op.request));
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
      unknownCommitted: unknownWrites.filter((op) => replay.committedAt.has(op.id)).length,
      unknownNotCommitted: unknownWrites.filter((op) => !replay.committedAt.has(op.id)).length,
      reads: ops.length - writes.length,
      writes: writes.length,
      staleSerializableReads: staleSerializable,
      committedRevisions: revisions.length,
      leaseExpiries: replay.expiries.size,
      watchEvents: history.watches.reduce((n, s) => n + s.events.length, 0),
      watchStreams: history.watches.length,
    },
    committedAt: Object.fromEntries(replay.committedAt),
    elapsedMs: performance.now() - started,
  };
}

/** The highest revision an answer was served at: every answer must lie where some watch looked. */
function highestAnswer(history: History): number {
  let max = 0;
  for (const op of history.operations) if (op.response && op.response.revision > max) max = op.response.revision;
  return max;
}
