// A reference judge for small histories: a brute-force search for an order of the operations that
// an etcd store could have run, written to be obviously right rather than fast. The audit trusts
// it and compares the real checker against it.
//
// A history is legal iff some choice of which unknown-outcome writes committed, and some total
// order of the committed writes, the answered reads and the final read, replayed on the model
// below, reproduces every answer, every watch stream and the final read, and respects real time.
//
// The model: one revision counter from `startRevision`; the key space starts empty (the clients
// work under a fresh prefix); a write that changes something takes the next revision, and only
// the changes it makes carry that revision. So a change is explained by the request that made it,
// not by a value that happens to match.
import type { History, Operation, Request, WatchEvent, WatchStream } from '../../../src/checker/history.js';

export interface OracleVerdict {
  legal: boolean;
  /** Legal: the order found, as "operation id@revision after it" in turn. */
  witness?: string;
  /** Illegal before any search, for what no order could mend (a stream's own shape, an ok without its answer). */
  reason?: string;
}

/** One change of one revision, as a watch reports it. */
interface Change {
  key: string;
  type: 'put' | 'delete';
  value?: string;
}

interface Model {
  revision: number;
  state: ReadonlyMap<string, { value: string; modRevision: number }>;
  /** log[i]: the changes of revision startRevision + 1 + i. */
  log: readonly Change[][];
}

/** Something placed in the order: an operation, or (no op) the final read. */
interface Step {
  op?: Operation;
  /** Must be placed (answered operations, the final read); an unknown write may be left out: never committed. */
  mandatory: boolean;
  /** Bit mask of the steps that must come before it. */
  before: bigint;
}

export function oracleVerdict(history: History): OracleVerdict {
  const malformed = shapeProblem(history);
  if (malformed) return { legal: false, reason: malformed };
  const steps = stepsOf(history);
  const mandatory = steps.reduce((m, s, i) => (s.mandatory ? m | (1n << BigInt(i)) : m), 0n);
  const coverages = history.watches.map(coverage);
  const lastCovered = Math.max(history.startRevision, ...coverages.map(([, to]) => to));
  // Dead ends already explored: the future depends only on what is placed and on the log.
  const explored = new Set<string>();
  const order: string[] = [];

  const search = (placed: bigint, model: Model): boolean => {
    const memo = `${placed}|${JSON.stringify(model.log)}`;
    if (explored.has(memo)) return false;
    explored.add(memo);
    // Done once everything answered is placed and every revision a stream covers exists.
    if ((placed & mandatory) === mandatory && model.revision >= lastCovered) return true;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      const bit = 1n << BigInt(i);
      if (placed & bit || (step.before & placed) !== step.before) continue;
      const next = step.op ? run(history, step.op, model) : finalRead(history, model);
      if (!next) continue;
      if (next.revision > model.revision && !watchesAgreeOnLast(history, coverages, next)) continue;
      order.push(describeStep(step, next));
      if (search(placed | bit, next)) return true;
      order.pop();
    }
    return false;
  };

  const legal = search(0n, { revision: history.startRevision, state: new Map(), log: [] });
  return legal ? { legal, witness: order.join('; ') } : { legal };
}

/** What makes a history impossible whatever the order: its streams' own shape, an answer that cannot be. */
function shapeProblem(history: History): string | undefined {
  for (const op of history.operations) {
    if (op.outcome === 'ok' && op.response?.op !== op.request.op) return `operation ${op.id}: ok, but answered ${op.response?.op ?? 'nothing'} to a ${op.request.op}`;
  }
  for (const stream of history.watches) {
    const [from, to] = coverage(stream);
    const batchOf = new Map<number, number>();
    const seen = new Set<string>();
    let last: WatchEvent | undefined;
    for (const e of stream.events) {
      if (e.revision < Math.max(from, history.startRevision + 1) || e.revision > to) return `watch ${stream.id}: revision ${e.revision} outside what it covers`;
      if (last && e.revision < last.revision) return `watch ${stream.id}: revision ${e.revision} after ${last.revision}`;
      if (last && e.batch < last.batch) return `watch ${stream.id}: response ${e.batch} after ${last.batch}`;
      if (seen.has(`${e.revision}/${e.key}`)) return `watch ${stream.id}: ${e.key} twice at revision ${e.revision}`;
      seen.add(`${e.revision}/${e.key}`);
      if (batchOf.has(e.revision) && batchOf.get(e.revision) !== e.batch) return `watch ${stream.id}: revision ${e.revision} split over two responses`;
      batchOf.set(e.revision, e.batch);
      last = e;
    }
  }
  return undefined;
}

/** The revisions a stream promises in full: closed, up to where the client closed it; otherwise up to its last event. */
function coverage(stream: WatchStream): [number, number] {
  if (stream.end === 'closed' && stream.upToRevision !== undefined) return [stream.fromRevision, stream.upToRevision];
  return [stream.fromRevision, stream.events.at(-1)?.revision ?? stream.fromRevision - 1];
}

function stepsOf(history: History): Step[] {
  // Failed operations never took effect, nor did reads nobody answered.
  const placeable = history.operations.filter((op) => op.outcome === 'ok' || (op.outcome === 'unknown' && op.request.op !== 'get'));
  const steps: Step[] = placeable.map((op) => ({ op, mandatory: op.outcome === 'ok', before: 0n }));
  steps.push({ mandatory: true, before: 0n });
  for (const [i, step] of steps.entries()) {
    // A serializable read may be stale: nothing that returned before it forces it later.
    if (step.op?.request.op === 'get' && step.op.request.serializable) continue;
    for (const [j, other] of steps.entries()) {
      if (!other.op || other.op.outcome !== 'ok') continue;
      // The final read was made after every client stopped: after every answered operation.
      const returnedFirst = !step.op || other.op.returnMs < step.op.callMs;
      if (returnedFirst && i !== j) step.before |= 1n << BigInt(j);
    }
  }
  return steps;
}

/** The operation run on the model, or undefined when that cannot be: its answer differs, or (unknown) it would change nothing. */
function run(history: History, op: Operation, model: Model): Model | undefined {
  const applied = apply(op.request, model);
  if (!applied) return undefined;
  const { changes, answer } = applied;
  const next = changes.length ? commit(model, changes) : model;
  // An unknown write that changes nothing is the same as one never committed: leave it out.
  if (op.outcome === 'unknown') return changes.length ? next : undefined;
  // shapeProblem saw to it: an ok operation has an answer of its own kind.
  const request = op.request;
  const response = op.response!;
  if (request.op === 'get' && response.op === 'get' && request.serializable) {
    // Answered from a member's own state at the revision it reports: any that existed by now.
    if (response.revision < history.startRevision || response.revision > model.revision) return undefined;
    return sameRead(response, stateAt(history.startRevision, model.log, response.revision).get(request.key)) ? model : undefined;
  }
  if (response.revision !== next.revision) return undefined;
  switch (response.op) {
    case 'get':
      return request.op === 'get' && sameRead(response, model.state.get(request.key)) ? next : undefined;
    case 'delete':
      return response.deleted === answer.deleted ? next : undefined;
    case 'cas':
      return response.succeeded === answer.succeeded ? next : undefined;
    default:
      return next;
  }
}

function sameRead(response: { value?: string; modRevision?: number }, held: { value: string; modRevision: number } | undefined): boolean {
  if (!held) return response.value === undefined && !response.modRevision;
  return response.value === held.value && response.modRevision === held.modRevision;
}

/** What etcd does with a request on this state: the changes it makes and what it says; undefined if it refuses it. */
function apply(request: Request, model: Model): { changes: Change[]; answer: { deleted?: number; succeeded?: boolean } } | undefined {
  switch (request.op) {
    case 'get':
      return { changes: [], answer: {} };
    case 'put':
      return { changes: [{ key: request.key, type: 'put', value: request.value }], answer: {} };
    case 'delete':
      return model.state.has(request.key) ? { changes: [{ key: request.key, type: 'delete' }], answer: { deleted: 1 } } : { changes: [], answer: { deleted: 0 } };
    case 'cas': {
      const held = model.state.get(request.key)?.modRevision ?? 0;
      return held === request.modRevision ? { changes: [{ key: request.key, type: 'put', value: request.value }], answer: { succeeded: true } } : { changes: [], answer: { succeeded: false } };
    }
    case 'txn': {
      // The audit's transactions put keys unconditionally (format 2's kind). etcd refuses a
      // transaction that puts one key twice ("duplicate key given in txn request").
      if (request.compare?.length || request.failure?.length || request.success.some((o) => o.op !== 'put')) return undefined;
      const puts = request.success.flatMap((o) => (o.op === 'put' ? [o] : []));
      if (new Set(puts.map((p) => p.key)).size !== puts.length) return undefined;
      return { changes: puts.map((p) => ({ key: p.key, type: 'put', value: p.value })), answer: { succeeded: true } };
    }
    default:
      return undefined;
  }
}

function commit(model: Model, changes: Change[]): Model {
  const revision = model.revision + 1;
  const state = new Map(model.state);
  for (const c of changes) {
    if (c.type === 'put') state.set(c.key, { value: c.value!, modRevision: revision });
    else state.delete(c.key);
  }
  return { revision, state, log: [...model.log, changes] };
}

/** The key space as of `revision`, replayed from the log. */
function stateAt(startRevision: number, log: readonly Change[][], revision: number): Map<string, { value: string; modRevision: number }> {
  const state = new Map<string, { value: string; modRevision: number }>();
  for (let r = startRevision + 1; r <= revision; r++) {
    for (const c of log[r - startRevision - 1] ?? []) {
      if (c.type === 'put') state.set(c.key, { value: c.value!, modRevision: r });
      else state.delete(c.key);
    }
  }
  return state;
}

/** The final read: after everything answered, it sees the model as it is now. */
function finalRead(history: History, model: Model): Model | undefined {
  if (history.final.revision !== model.revision) return undefined;
  const keys = new Set([...model.state.keys(), ...Object.keys(history.final.values)]);
  for (const key of keys) {
    const read = history.final.values[key];
    if (!sameRead(read ?? {}, model.state.get(key))) return undefined;
  }
  return model;
}

/** Every stream that covers the model's last revision delivered exactly its changes: same keys, types, values, mod_revisions. */
function watchesAgreeOnLast(history: History, coverages: [number, number][], model: Model): boolean {
  const revision = model.revision;
  const made = model.log[revision - history.startRevision - 1]!.map((c) => eventKey({ ...c, modRevision: revision }));
  return history.watches.every((stream, i) => {
    const [from, to] = coverages[i]!;
    if (revision < from || revision > to) return true;
    const delivered = stream.events.filter((e) => e.revision === revision).map(eventKey);
    return delivered.length === made.length && [...delivered].sort().join('\n') === [...made].sort().join('\n');
  });
}

const eventKey = (e: { key: string; type: string; value?: string; modRevision: number }) => JSON.stringify([e.key, e.type, e.type === 'put' ? e.value : null, e.modRevision]);

function describeStep(step: Step, model: Model): string {
  const op = step.op;
  if (!op) return `final@${model.revision}`;
  return `${op.id}${op.outcome === 'unknown' ? '(unknown, committed)' : ''}@${model.revision}`;
}
