// Comparing the checker with the oracle on random histories, and shrinking the first disagreement
// to the fewest operations, streams and events that still show it, so a failure reads easily.
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

/** One random history to judge: a legal base from the simulated etcd, with or without a planted defect. */
export interface Sample {
  seed: number;
  ops: number;
  base: History;
  history: History;
}

export interface Sampler {
  simulate(seed: number, ops: number): History;
  /** Plants a defect in a legal base (undefined: no place for it here). Without it the base itself is judged. */
  plant?(seed: number, base: History): History | undefined;
}

export function sampleOf(sampler: Sampler, seed: number, ops: number): Sample | undefined {
  const base = sampler.simulate(seed, ops);
  const history = judged(sampler, seed, base);
  return history && { seed, ops, base, history };
}

function judged(sampler: Sampler, seed: number, base: History): History | undefined {
  if (!sampler.plant) return base;
  // Planted only where the checker gets the base right, so a disagreement is the defect's.
  return checkHistory(base).ok ? sampler.plant(seed, base) : undefined;
}

/**
 * The smallest sample that still disagrees in the same way (same verdicts, same kinds): first fewer
 * operations from the same seed, then pieces taken from its base, which must stay legal (so a
 * planted defect is planted anew, never shrunk away).
 */
function shrink(first: Sample, sampler: Sampler): Sample {
  const target = verdicts(first.history);
  let best = first;
  for (let ops = 1; ops < first.ops; ops++) {
    const fewer = sampleOf(sampler, first.seed, ops);
    if (fewer && same(verdicts(fewer.history), target)) {
      best = fewer;
      break;
    }
  }
  for (let progress = true; progress; ) {
    progress = false;
    // Last first, so a removal leaves the indices of the pieces still to try unchanged.
    for (const remove of pieces(best.base).reverse()) {
      const base = remove(best.base);
      if (!oracleVerdict(base).legal) continue;
      const history = judged(sampler, best.seed, base);
      if (history && same(verdicts(history), target)) {
        best = { ...best, base, history };
        progress = true;
      }
    }
  }
  return best;
}

/** Where the checker and the oracle disagree: how often, and the first case shrunk, readable and as JSON. */
export function firstDisagreement(samples: Sample[], sampler: Sampler, seedNote: string): string | undefined {
  const disagreeing = samples.filter(({ history }) => {
    const v = verdicts(history);
    return v.oracle !== v.checker;
  });
  const first = disagreeing[0];
  if (!first) return undefined;
  const small = shrink(first, sampler);
  const v = verdicts(small.history);
  return [
    `${disagreeing.length} of ${samples.length} histories: the checker disagrees with the oracle. First: seed ${first.seed} (${seedNote}); the smallest found (${small.ops} operations generated, then pieces removed):`,
    describeHistory(small.history),
    `oracle: ${v.oracle ? 'legal' : 'illegal'}; checker: ${v.checkerSaid}`,
    JSON.stringify(small.history),
  ].join('\n');
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
