// Comparing the checker with the oracle on one history, and shrinking a disagreement to the fewest
// operations, streams and events that still show it, so a failure prints something readable.
import { checkHistory } from '../../../src/checker/check.js';
import { describeOperation, type History } from '../../../src/checker/history.js';
import { oracleVerdict } from './oracle.js';

export interface Verdicts {
  oracle: boolean;
  checker: boolean;
  /** The kinds the checker reported, or what it threw. */
  checkerSaid: string;
}

export function verdicts(history: History): Verdicts {
  let checker: boolean;
  let checkerSaid: string;
  try {
    const result = checkHistory(history);
    checker = result.ok;
    checkerSaid = result.ok ? 'ok' : [...new Set(result.violations.map((v) => v.kind))].sort().join(', ');
  } catch (error) {
    checker = false;
    checkerSaid = `threw ${(error as Error).message}`;
  }
  return { oracle: oracleVerdict(history).legal, checker, checkerSaid };
}

const same = (a: Verdicts, b: Verdicts) => a.oracle === b.oracle && a.checker === b.checker && a.checkerSaid === b.checkerSaid;

/** The pieces a history can lose: an operation, a stream, one event of a stream. */
const pieces = (h: History) => [
  ...h.operations.map((_, i) => (x: History) => ({ ...x, operations: x.operations.filter((_, j) => j !== i) })),
  ...h.watches.map((_, i) => (x: History) => ({ ...x, watches: x.watches.filter((_, j) => j !== i) })),
  ...h.watches.flatMap((s, i) =>
    s.events.map((_, k) => (x: History) => ({ ...x, watches: x.watches.map((t, j) => (j === i ? { ...t, events: t.events.filter((_, m) => m !== k) } : t)) })),
  ),
];

/** Removes pieces one at a time, last first, while the two still disagree in the same way (same verdicts, same kinds). */
export function shrink(history: History): History {
  const target = verdicts(history);
  let current = history;
  for (let progress = true; progress; ) {
    progress = false;
    // Last first, so a removal leaves the indices of the pieces still to try unchanged.
    for (const remove of pieces(current).reverse()) {
      const candidate = remove(current);
      if (same(verdicts(candidate), target)) {
        current = candidate;
        progress = true;
      }
    }
  }
  return current;
}

/** A history in lines: operations with their exact times, each stream's events, the final read. */
export function describeHistory(h: History): string {
  const ops = h.operations.map((op) => `  #${op.id} ${describeOperation(op).replace(/ \[[^\]]*\]$/, '')} [${op.callMs.toFixed(2)}–${op.returnMs.toFixed(2)} ms]`);
  const watches = h.watches.map((s) => {
    const end = s.end === 'closed' ? `closed@${s.upToRevision}` : s.end === 'compacted' ? `compacted@${s.compactRevision}` : 'broken';
    const events = s.events.map((e) => `${e.revision}:${e.type === 'put' ? `${e.key}=${e.value}` : `-${e.key}`}(mod ${e.modRevision}, b${e.batch})`);
    return `  watch ${s.id} from ${s.fromRevision} ${end}: ${events.join(' ') || '—'}`;
  });
  const final = Object.entries(h.final.values).map(([k, v]) => `${k}=${v.value}(mod ${v.modRevision})`);
  return [...ops, ...watches, `  final @${h.final.revision}: ${final.join(' ') || 'empty'}`].join('\n');
}
