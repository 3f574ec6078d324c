// The real-time order: with every operation placed at its revision, nothing that completed before
// an operation began may sit after it (one sweep over the operations by return time); and the
// leases' lives against it.
import { describeOperation, isSerializable, type History } from './history.js';
import { Findings, lowerBound, type Placed } from './findings.js';
import type { Replay } from './replay.js';


/** Where each operation sits: committed writes at their revision, answered reads (and writes that changed nothing) at theirs. */
export function place(history: History, committedAt: Map<number, number>): Placed[] {
  const placed: Placed[] = [];
  for (const op of history.operations) {
    const committed = committedAt.get(op.id);
    if (committed !== undefined) placed.push({ op, position: committed, isWrite: true });
    else if (op.outcome === 'ok' && op.response && op.response.op !== 'lease-keepalive') placed.push({ op, position: op.response.revision, isWrite: false });
  }
  return placed;
}

/**
 * Real time: whatever completed before an operation began must sit before it — strictly before a
 * write (each write has its own revision), at or before a read. A write whose outcome is unknown has
 * no known completion, so it constrains nothing after it; committed, it still must sit after what
 * completed before its call. A serializable read may be stale, so it is not held to what came before
 * it — but nothing may read it as having seen the future. The final read joins last: it began after
 * every operation ended. One sweep over the completed operations in the order they returned.
 */
export function checkRealTime(placed: Placed[], finalRead: Placed | undefined, findings: Findings): number {
  const completed = placed.filter((p) => p.op.outcome === 'ok').sort((a, b) => a.op.returnMs - b.op.returnMs);
  const returns = completed.map((p) => p.op.returnMs);
  // The furthest position among the first i completed operations, and which one holds it.
  const best: Placed[] = [];
  // On a tie the later one: it is nearer the operation it is shown beside.
  for (const p of completed) best.push(best.length && best.at(-1)!.position > p.position ? best.at(-1)! : p);
  let staleSerializable = 0;
  for (const b of finalRead ? [...placed, finalRead] : placed) {
    const i = lowerBound(returns, b.op.callMs) - 1; // the last one that returned strictly before b's call
    if (i < 0) continue;
    const a = best[i]!;
    const broken = b.isWrite ? a.position >= b.position : a.position > b.position;
    if (!broken) continue;
    if (!b.isWrite && isSerializable(b.op.request)) {
      staleSerializable += 1;
      continue;
    }
    if (!b.isWrite) {
      const sameClient = a.op.client === b.op.client ? ` (the same client: its revisions went backwards)` : '';
      findings.add(
        'stale-read',
        `stale read: ${describeOperation(b.op)} answered at revision ${b.position}, but ${describeOperation(a.op)} had ${a.isWrite ? 'committed' : 'seen'} revision ${a.position} before it began${sameClient}`,
        [a.op.id, b.op.id].filter((id) => id > 0),
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
  return staleSerializable;
}

/**
 * Leases against time: one expires no sooner than its TTL after it was last refreshed, takes no key
 * once it has ended, and is not kept alive once its end was seen. A revision's latest possible time
 * is the earliest return of an operation that saw it (or a later one).
 */
export function checkLeases(history: History, replay: Replay, placed: Placed[], findings: Findings): void {
  const seen = placed.filter((p) => p.op.outcome === 'ok').sort((a, b) => a.position - b.position);
  const earliestAtOrAfter: number[] = new Array<number>(seen.length);
  for (let i = seen.length - 1, min = Infinity; i >= 0; i--) earliestAtOrAfter[i] = min = Math.min(min, seen[i]!.op.returnMs);
  const seenBy = (revision: number) => {
    const i = lowerBound(
      seen.map((p) => p.position),
      revision,
    );
    return i < seen.length ? earliestAtOrAfter[i]! : Infinity;
  };
  for (const [lease, life] of replay.leases) {
    const endedAt = life.endedAt;
    if (life.expired && endedAt !== undefined) {
      const by = seenBy(endedAt);
      const earliest = life.refreshedMs + life.ttlSeconds * 1000;
      if (by < earliest) findings.add('lease', `lease ${lease} (TTL ${life.ttlSeconds} s) expired at revision ${endedAt}, seen by ${Math.round(by)} ms, though it was refreshed at ${Math.round(life.refreshedMs)} ms: ${Math.round(earliest - by)} ms early`, [], [], endedAt);
      const kept = life.aliveAtMs.find((ms) => ms > by);
      if (kept !== undefined) findings.add('lease', `lease ${lease} was kept alive at ${Math.round(kept)} ms, after its expiry at revision ${endedAt} was seen (${Math.round(by)} ms)`, [], [], endedAt);
    }
    const goneBy = life.goneByMs ?? (endedAt !== undefined ? seenBy(endedAt) : undefined);
    if (goneBy === undefined) continue;
    for (const op of history.operations) {
      const attaches = (op.request.op === 'put' && op.request.lease === lease) || (op.request.op === 'txn' && op.request.success.some((o) => o.op === 'put' && o.lease === lease));
      if (!attaches || op.callMs <= goneBy) continue;
      const committed = replay.committedAt.get(op.id);
      if (committed !== undefined) findings.add('lease', `${describeOperation(op)} was committed at revision ${committed}, though lease ${lease} was gone by ${Math.round(goneBy)} ms, before it was sent`, [op.id], [], committed);
    }
  }
}
