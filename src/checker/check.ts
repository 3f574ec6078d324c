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
import { describeOperation, isSerializable, isWrite, writtenValues, type History, type Kv, type Operation, type Request, type WatchEvent, type WatchStream } from './history.js';
import { byBytes, changeText, effectOf, sameChanges, Store, type Change, type KeyState } from './model.js';

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
interface Commit {
  revision: number;
  events: WatchEvent[];
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

  add(kind: ViolationKind, message: string, operations: (number | undefined)[] = [], watches: number[] = [], revision?: number): void {
    const n = (this.perKind.get(kind) ?? 0) + 1;
    this.perKind.set(kind, n);
    if (n > MAX_PER_KIND) this.more[kind] = (this.more[kind] ?? 0) + 1;
    else this.violations.push({ kind, message, operations: operations.filter((x): x is number => x !== undefined), watches, ...(revision !== undefined ? { revision } : {}) });
  }
}

const sameEvent = (a: WatchEvent, b: WatchEvent) => a.key === b.key && a.type === b.type && a.value === b.value && a.modRevision === b.modRevision && (a.lease ?? 0) === (b.lease ?? 0);
const eventText = (e: WatchEvent) => (e.type === 'put' ? `put ${e.key}=${e.value}` : `delete ${e.key}`);
const changeOf = (e: WatchEvent): Change => (e.type === 'put' ? { key: e.key, type: 'put', value: e.value ?? '', ...(e.lease ? { lease: e.lease } : {}) } : { key: e.key, type: 'delete' });
const stateText = (s: KeyState | undefined) => (s ? `${s.value} (mod ${s.modRevision})` : 'nothing');

/** The keys a stream watches and the kinds of event it asked for. */
function wants(stream: WatchStream, e: { key: string; type: 'put' | 'delete' }): boolean {
  if (stream.prefix !== undefined && !e.key.startsWith(stream.prefix)) return false;
  return !((stream.filter === 'noput' && e.type === 'put') || (stream.filter === 'nodelete' && e.type === 'delete'));
}

/** The revisions a stream promises to have delivered in full: [from, to]. A compacted stream: up to its last event. */
function coverage(stream: WatchStream): [number, number] {
  const progressed = Math.max(0, ...(stream.progress ?? []).map((p) => p.revision));
  if (stream.end === 'closed' && stream.upToRevision !== undefined) return [stream.fromRevision, Math.max(stream.upToRevision, progressed)];
  const last = stream.events.at(-1)?.revision ?? stream.fromRevision - 1;
  return [stream.fromRevision, Math.max(last, progressed)];
}

/** Each stream on its own: ordered, no duplicates, one revision per response, progress notifications kept. */
function checkStreamShape(stream: WatchStream, findings: Findings): void {
  const seen = new Set<string>();
  const batchOf = new Map<number, number>();
  let last = 0;
  const where = `watch ${stream.id} (${stream.via})`;
  for (const e of stream.events) {
    if (e.revision < last) findings.add('watch-order', `${where} delivered revision ${e.revision} after ${last}`, [], [stream.id], e.revision);
    last = Math.max(last, e.revision);
    const id = `${e.revision}/${e.key}`;
    if (seen.has(id)) findings.add('watch-duplicate', `${where} delivered ${eventText(e)} at revision ${e.revision} twice`, [], [stream.id], e.revision);
    seen.add(id);
    const batch = batchOf.get(e.revision);
    if (batch !== undefined && batch !== e.batch) findings.add('watch-order', `${where} split revision ${e.revision} over two responses`, [], [stream.id], e.revision);
    batchOf.set(e.revision, e.batch);
    if (e.revision < stream.fromRevision) findings.add('watch-order', `${where} asked from revision ${stream.fromRevision} and got ${e.revision}`, [], [stream.id], e.revision);
    if (e.type === 'put' && e.modRevision !== e.revision) findings.add('watch-event', `${where}: ${eventText(e)} at revision ${e.revision} says its mod_revision is ${e.modRevision}`, [], [stream.id], e.revision);
    if (!wants(stream, e)) findings.add('watch-order', `${where} delivered ${eventText(e)}, which it did not ask for (${stream.prefix !== undefined ? `prefix ${stream.prefix}` : ''}${stream.filter ? ` ${stream.filter}` : ''})`, [], [stream.id], e.revision);
  }
  // "Everything up to R has been sent": nothing at or below R may come after it.
  for (const p of stream.progress ?? []) {
    const late = stream.events.find((e) => e.batch > p.batch && e.revision <= p.revision);
    if (late) findings.add('watch-order', `${where} said at ${Math.round(p.atMs)} ms that it had sent everything up to revision ${p.revision}, then delivered ${eventText(late)} at revision ${late.revision}`, [], [stream.id], late.revision);
  }
}

/** The committed changes, from every stream; streams that see a revision must agree on it. */
function buildLog(history: History, findings: Findings): Map<number, Commit> {
  const log = new Map<number, Commit>();
  for (const stream of history.watches) {
    checkStreamShape(stream, findings);
    const byRevision = new Map<number, WatchEvent[]>();
    for (const e of stream.events) {
      const events = byRevision.get(e.revision) ?? [];
      // A duplicate is reported above; it is not a second change.
      if (!events.some((x) => sameEvent(x, e))) byRevision.set(e.revision, [...events, e]);
    }
    for (const [revision, events] of byRevision) {
      const known = log.get(revision);
      if (!known) {
        log.set(revision, { revision, events: [...events].sort((a, b) => byBytes(a.key, b.key)), stream: stream.id });
        continue;
      }
      // Compared on what both watch: this stream's events must be the commit's, seen through its prefix and filter.
      const mine = [...events].sort((a, b) => byBytes(a.key, b.key));
      const theirs = known.events.filter((e) => wants(stream, e));
      const extra = mine.filter((e) => !known.events.some((k) => k.key === e.key));
      const agree = extra.length === 0 && theirs.length === mine.length && theirs.every((e, i) => sameEvent(e, mine[i]!));
      if (!agree && extra.length > 0 && theirs.every((e) => mine.some((m) => sameEvent(m, e)))) {
        // It sees more of the revision than the streams before it (a wider prefix): the commit grows.
        known.events = [...known.events, ...extra].sort((a, b) => byBytes(a.key, b.key));
        continue;
      }
      if (!agree) {
        findings.add('watch-mismatch', `watches ${known.stream} and ${stream.id} disagree on revision ${revision}: ${theirs.map(eventText).join(', ') || 'nothing'} vs ${mine.map(eventText).join(', ')}`, [], [known.stream, stream.id], revision);
      }
    }
  }
  return log;
}

/** Every stream delivered every committed change it asked for in the revisions it covers, and before any progress notification past it. */
function checkReliable(history: History, revisions: number[], log: Map<number, Commit>, findings: Findings): void {
  for (const stream of history.watches) {
    const [from, to] = coverage(stream);
    const delivered = new Map<number, number>(); // revision → batch
    for (const e of stream.events) delivered.set(e.revision, e.batch);
    const progress = [...(stream.progress ?? [])].sort((a, b) => a.batch - b.batch);
    for (let i = lowerBound(revisions, from); i < revisions.length && revisions[i]! <= to; i++) {
      const r = revisions[i]!;
      const commit = log.get(r)!;
      if (!commit.events.some((e) => wants(stream, e))) continue;
      const batch = delivered.get(r);
      if (batch === undefined) {
        findings.add('watch-gap', `watch ${stream.id} (${stream.via}) skipped revision ${r} (${commit.events.filter((e) => wants(stream, e)).map(eventText).join(', ')}), which watch ${commit.stream} delivered`, [], [stream.id, commit.stream], r);
        continue;
      }
      const promised = progress.find((p) => p.revision >= r && p.batch < batch);
      if (promised) findings.add('watch-order', `watch ${stream.id} (${stream.via}) said everything up to revision ${promised.revision} was sent, before it delivered revision ${r}`, [], [stream.id], r);
    }
  }
}

/** Revisions after the start that no stream covers: nothing can be said about them. */
function uncovered(history: History, upTo: number): [number, number][] {
  const ranges = history.watches
    .filter((s) => (s.prefix === undefined || s.prefix === history.prefix) && s.filter === undefined)
    .map(coverage)
    .filter(([a, b]) => b >= a)
    .sort((x, y) => x[0] - y[0]);
  const gaps: [number, number][] = [];
  let next = history.startRevision + 1;
  for (const [a, b] of ranges) {
    if (a > next) gaps.push([next, a - 1]);
    next = Math.max(next, b + 1);
  }
  if (next <= upTo) gaps.push([next, upTo]);
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

/** What the leases did: granted, refreshed, ended (revoked or expired), as the checker learns it. */
interface LeaseLife {
  ttlSeconds: number;
  /** When the lease was last sure to be refreshed to its TTL: a grant's or acknowledged keep-alive's call. */
  refreshedMs: number;
  /** Keep-alives acknowledged with a TTL (alive when served): their calls. */
  aliveAtMs: number[];
  /** A keep-alive answered "not found", or a revoke acknowledged: the lease was gone by this return time. */
  goneByMs?: number;
  /** The revision its keys were deleted at (revoke or expiry). */
  endedAt?: number;
  expired?: boolean;
}

/**
 * The replay: each committed revision is explained by one request, whose effect on the store just
 * before it must be exactly the changes the watches delivered. Returns each committed request's revision.
 */
class Replay {
  readonly store: Store;
  readonly committedAt = new Map<number, number>();
  readonly leases = new Map<string, LeaseLife>();
  /** Revisions that were leases expiring: lease → revision. */
  readonly expiries = new Map<string, number>();
  private readonly writerOf = new Map<string, Operation>();
  /** Acknowledged requests that may have changed the store, by the revision they answered at. */
  private readonly answeredAt = new Map<number, Operation[]>();
  /** Requests whose outcome is unknown that may delete a key, by key; revokes by lease. */
  private readonly unknownDeletersOf = new Map<string, Operation[]>();
  private readonly revokersOf = new Map<string, Operation[]>();

  constructor(
    history: History,
    private readonly findings: Findings,
  ) {
    this.store = new Store(history.startRevision);
    const push = <K>(map: Map<K, Operation[]>, key: K, op: Operation) => {
      const list = map.get(key);
      if (list) list.push(op);
      else map.set(key, [op]);
    };
    for (const op of history.operations) {
      for (const v of writtenValues(op.request)) this.writerOf.set(v, op);
      if (op.outcome === 'ok' && op.response && mayHaveChanged(op)) push(this.answeredAt, op.response.revision, op);
      if (op.outcome === 'unknown') for (const key of deletedKeys(op.request)) push(this.unknownDeletersOf, key, op);
      if (op.request.op === 'lease-revoke' && op.outcome !== 'failed') push(this.revokersOf, op.request.lease, op);
      this.noteLease(op);
    }
  }

  writer(value: string | undefined): Operation | undefined {
    return value === undefined ? undefined : this.writerOf.get(value);
  }

  private noteLease(op: Operation): void {
    const r = op.response;
    if (r?.op === 'lease-grant') {
      this.leases.set(r.lease, { ttlSeconds: r.ttlSeconds, refreshedMs: op.callMs, aliveAtMs: [] });
    } else if (r?.op === 'lease-keepalive' && op.request.op === 'lease-keepalive') {
      const life = this.leases.get(op.request.lease);
      if (!life) return;
      if (r.ttlSeconds > 0) {
        life.aliveAtMs.push(op.callMs);
        life.refreshedMs = Math.max(life.refreshedMs, op.callMs);
      } else life.goneByMs = Math.min(life.goneByMs ?? Infinity, op.returnMs);
    } else if (r?.op === 'lease-revoke' && op.request.op === 'lease-revoke') {
      const life = this.leases.get(op.request.lease);
      if (life) life.goneByMs = Math.min(life.goneByMs ?? Infinity, op.returnMs);
    }
  }

  /** Whether the lease can still take keys at the revision being replayed. */
  private alive(lease: string): boolean {
    const life = this.leases.get(lease);
    return life !== undefined && life.endedAt === undefined;
  }

  run(revisions: number[], log: Map<number, Commit>, streamsAt: Map<number, { stream: WatchStream; event: WatchEvent }[]>): void {
    for (const r of revisions) {
      const commit = log.get(r)!;
      const observed = commit.events.map(changeOf);
      this.checkEventDetails(r, streamsAt.get(r) ?? []);
      const request = this.explain(r, commit);
      if (request) this.replay(r, commit, observed, request);
      // The store follows what was observed: one wrong change does not make every later read wrong.
      this.store.apply(r, observed);
    }
  }

  /** prev_kv, create revision and version of each event, against the store just before it. */
  private checkEventDetails(r: number, delivered: { stream: WatchStream; event: WatchEvent }[]): void {
    for (const { stream, event } of delivered) {
      const before = this.store.current(event.key);
      if (event.prev !== undefined) {
        const prevSays = event.prev === null ? undefined : event.prev;
        if ((prevSays?.value ?? null) !== (before?.value ?? null) || (prevSays && prevSays.modRevision !== before?.modRevision)) {
          this.findings.add('watch-event', `watch ${stream.id} (${stream.via}): ${eventText(event)} at revision ${r} says the key held ${prevSays ? `${prevSays.value} (mod ${prevSays.modRevision})` : 'nothing'} before; it held ${stateText(before)}`, [], [stream.id], r);
        }
      }
      if (event.type === 'put') {
        const create = before?.createRevision ?? r;
        const version = (before?.version ?? 0) + 1;
        if ((event.createRevision !== undefined && event.createRevision !== create) || (event.version !== undefined && event.version !== version)) {
          this.findings.add('watch-event', `watch ${stream.id} (${stream.via}): ${eventText(event)} at revision ${r} says create revision ${event.createRevision}, version ${event.version}; the store says ${create}, ${version}`, [], [stream.id], r);
        }
      }
    }
  }

  /** The one request behind a revision, or why there is none. */
  private explain(r: number, commit: Commit): Operation | undefined {
    const puts = commit.events.filter((e) => e.type === 'put');
    if (puts.length > 0) {
      const writers = new Set<Operation>();
      for (const e of puts) {
        const op = this.writerOf.get(e.value ?? '');
        if (op) writers.add(op);
        else this.findings.add('unexplained-change', `revision ${r}: ${eventText(e)}, a value no client wrote`, [], [commit.stream], r);
      }
      if (writers.size > 1) {
        this.findings.add('shared-revision', `revision ${r} holds the changes of ${writers.size} requests: ${[...writers].map(describeOperation).join('; ')}`, [...writers].map((o) => o.id), [commit.stream], r);
        for (const op of writers) this.commit(op, r, commit);
        return undefined;
      }
      return [...writers][0];
    }
    // Deletes only: the request that says it deleted here; else one whose outcome is unknown and
    // whose effect here is exactly this; else a lease that ended.
    const keys = commit.events.map((e) => e.key);
    const free = (op: Operation) => !this.committedAt.has(op.id);
    const touches = (op: Operation) => deletedKeys(op.request).some((k) => keys.includes(k)) || (op.request.op === 'lease-revoke' && keys.some((k) => this.store.current(k)?.lease === (op.request as { lease: string }).lease));
    const answered = (this.answeredAt.get(r) ?? []).filter((op) => free(op) && touches(op));
    if (answered.length > 0) return answered[0];
    const fits = (op: Operation) => sameChanges(effectOf(op.request, this.store, (l) => this.alive(l)).changes, commit.events.map(changeOf));
    // Deletes whose outcome is unknown are alike but for when they were sent: the earliest sent is the
    // one real time constrains least, so it is the one taken (whichever delete it really was, an
    // order exists iff one exists with this choice: the revisions only grow).
    const unknown = [...new Set([...keys.flatMap((k) => this.unknownDeletersOf.get(k) ?? []), ...this.revokersFor(keys).filter((op) => op.outcome === 'unknown')])].filter(free).sort((a, b) => a.callMs - b.callMs);
    const fitting = unknown.find(fits);
    if (fitting) return fitting;
    const expired = this.expiry(r, keys);
    if (expired !== undefined) return undefined;
    // A request that might have done it, replayed to show how it differs; or none at all.
    const closest = unknown[0];
    if (closest) return closest;
    this.findings.add('unexplained-change', `revision ${r}: ${commit.events.map(eventText).join(', ')}, which no request sent and no lease ending explains`, [], [commit.stream], r);
    return undefined;
  }

  private revokersFor(keys: string[]): Operation[] {
    const leases = new Set(keys.map((k) => this.store.current(k)?.lease).filter((l): l is string => l !== undefined));
    return [...leases].flatMap((l) => this.revokersOf.get(l) ?? []);
  }

  /** Deletes of exactly every key of one lease, with no request behind them: the lease expired. */
  private expiry(r: number, keys: string[]): string | undefined {
    const lease = this.store.current(keys[0]!)?.lease;
    if (lease === undefined) return undefined;
    const all = this.store.keysOfLease(lease);
    if (all.length !== keys.length || !all.every((k, i) => k === keys[i])) return undefined;
    const life = this.leases.get(lease);
    if (life) {
      life.endedAt = r;
      life.expired = true;
    }
    this.expiries.set(lease, r);
    return lease;
  }

  private commit(op: Operation, r: number, commit: Commit): void {
    const earlier = this.committedAt.get(op.id);
    if (earlier !== undefined && earlier !== r) {
      this.findings.add(op.request.op === 'txn' ? 'atomicity' : 'applied-twice', `${describeOperation(op)} was committed at revisions ${earlier} and ${r}`, [op.id], [commit.stream], r);
      return;
    }
    this.committedAt.set(op.id, r);
  }

  private replay(r: number, commit: Commit, observed: Change[], op: Operation): void {
    const already = this.committedAt.has(op.id);
    this.commit(op, r, commit);
    if (already) return;
    const effect = effectOf(op.request, this.store, (l) => this.alive(l));
    if (effect.refused) {
      this.findings.add('lease', `${describeOperation(op)} was committed at revision ${r}, but ${effect.refused} by then`, [op.id], [commit.stream], r);
    } else if (!sameChanges(effect.changes, observed)) {
      const guarded = effect.succeeded === false && (op.request.op === 'cas' || op.request.op === 'txn');
      const inPart = observed.length < effect.changes.length && observed.every((c) => effect.changes.some((e) => sameChanges([e], [c])));
      const expected = effect.changes.length > 0 ? effect.changes.map(changeText).join(', ') : 'no change at all';
      if (guarded) {
        this.findings.add('compare', `${describeOperation(op)} was committed at revision ${r}, but its compare did not hold there (${compareText(op.request, this.store)})`, [op.id, ...this.lastWritersOf(op.request)], [commit.stream], r);
      } else if (inPart) {
        this.findings.add('atomicity', `${describeOperation(op)} was committed in part at revision ${r}: ${observed.map(changeText).join(', ')} of ${expected}`, [op.id], [commit.stream], r);
      } else {
        this.findings.add('replay', `${describeOperation(op)} would do ${expected} at revision ${r}, but what was committed there is ${observed.map(changeText).join(', ')}`, [op.id, ...this.lastWritersOf(op.request)], [commit.stream], r);
      }
    } else {
      // What it answered must be what it did here.
      const said = op.outcome === 'ok' ? op.response : undefined;
      if (said && 'succeeded' in said && effect.succeeded !== undefined && said.succeeded !== effect.succeeded) {
        this.findings.add('compare', `${describeOperation(op)} was committed at revision ${r}, where its compares ${effect.succeeded ? 'held' : 'did not hold'}, but it answered the opposite`, [op.id], [commit.stream], r);
      }
    }
    if (op.request.op === 'lease-revoke') {
      const life = this.leases.get(op.request.lease);
      if (life) life.endedAt = r;
    }
    // An acknowledged transaction's reads, as they were just before its revision.
    if (op.outcome === 'ok' && op.response?.op === 'txn' && op.response.reads && effect.reads) checkTxnReads(op, effect.reads, r - 1, this.findings);
  }

  /** Who last wrote the keys a request compares or touches: the witnesses of a lost update. */
  private lastWritersOf(request: Request): number[] {
    const keys = request.op === 'cas' ? [request.key] : request.op === 'txn' ? (request.compare ?? []).map((c) => c.key) : [];
    return keys.map((k) => this.writerOf.get(this.store.current(k)?.value ?? '')?.id).filter((x): x is number => x !== undefined);
  }
}

function compareText(request: Request, store: Store): string {
  if (request.op === 'cas') return `${request.key}'s mod_revision was ${store.current(request.key)?.modRevision ?? 0}, not ${request.modRevision}`;
  if (request.op === 'txn') {
    return (request.compare ?? [])
      .map((c) => {
        const s = store.current(c.key);
        const actual = c.target === 'mod' ? (s?.modRevision ?? 0) : c.target === 'create' ? (s?.createRevision ?? 0) : (s?.version ?? 0);
        return `${c.target}(${c.key}) was ${actual}, not ${c.equals}`;
      })
      .join(', ');
  }
  return '';
}

function deletedKeys(request: Request): string[] {
  if (request.op === 'delete') return [request.key];
  if (request.op === 'txn') return [...request.success, ...(request.failure ?? [])].flatMap((o) => (o.op === 'delete' ? [o.key] : []));
  return [];
}

/**
 * Whether an acknowledged write's answer allows that it changed the store (and so took a revision):
 * a put always does; a delete that deleted, a compare-and-set that applied; a transaction or a revoke
 * may (whether it did depends on what the keys held, which the replay knows).
 */
function mayHaveChanged(op: Operation): boolean {
  const r = op.response;
  if (!r) return false;
  switch (r.op) {
    case 'put':
    case 'lease-revoke':
      return true;
    case 'delete':
      return r.deleted > 0;
    case 'cas':
      return r.succeeded;
    case 'txn': {
      if (op.request.op !== 'txn') return false;
      const branch = r.succeeded ? op.request.success : (op.request.failure ?? []);
      return branch.some((o) => o.op !== 'get');
    }
    default:
      return false;
  }
}

function checkTxnReads(op: Operation, expected: (KeyState | undefined)[], at: number, findings: Findings): void {
  const reads = op.response?.op === 'txn' ? (op.response.reads ?? []) : [];
  reads.forEach((kv, i) => {
    const held = expected[i];
    if ((kv?.value ?? null) !== (held?.value ?? null) || (kv && kv.modRevision !== held?.modRevision)) {
      findings.add('wrong-value', `${describeOperation(op)}: its get #${i + 1} returned ${kv ? `${kv.value} (mod ${kv.modRevision})` : 'nothing'}, but at revision ${at} the key held ${stateText(held)}`, [op.id], [], at);
    }
  });
}

/** Acknowledged, failed and unknown writes against what was committed. */
function checkWriteOutcomes(history: History, replay: Replay, findings: Findings): void {
  for (const op of history.operations) {
    if (!isWrite(op.request)) continue;
    const committed = replay.committedAt.get(op.id);
    if (op.outcome === 'failed') {
      if (committed !== undefined) findings.add('failed-write-applied', `${describeOperation(op)} was reported failed, yet committed at revision ${committed}`, [op.id], [], committed);
      continue;
    }
    const response = op.response;
    if (op.outcome !== 'ok' || !response) continue;
    if (committed !== undefined) {
      if (!mayHaveChanged(op)) findings.add('atomicity', `${describeOperation(op)} answered that it changed nothing, yet it was committed at revision ${committed}`, [op.id], [], committed);
      else if (committed !== response.revision) findings.add('revision-mismatch', `${describeOperation(op)} was answered with revision ${response.revision}, but committed at ${committed}`, [op.id], [], committed);
      continue;
    }
    // Not committed: then it must have changed nothing where it answered.
    let lost: boolean;
    if (op.request.op === 'txn' && response.op === 'txn') {
      const effect = effectOf(op.request, replay.store.asOf(response.revision), () => true);
      lost = effect.succeeded === response.succeeded && effect.changes.length > 0;
    } else if (op.request.op === 'lease-revoke') {
      lost = replay.store.keysOfLease(op.request.lease).length > 0;
    } else lost = mayHaveChanged(op);
    if (lost) findings.add('lost-write', `${describeOperation(op)} was acknowledged at revision ${response.revision}, but no watch delivered its change`, [op.id], [], response.revision);
  }
}

/** Every answer that reads (gets, lists, a compare that failed, a delete that found nothing) against the store at its revision. */
function checkReads(history: History, replay: Replay, findings: Findings): void {
  const store = replay.store;
  const writer = (s: KeyState | { value?: string } | undefined) => replay.writer(s?.value)?.id;
  for (const op of history.operations) {
    const r = op.request;
    const response = op.response;
    if (op.outcome !== 'ok' || !response || replay.committedAt.has(op.id)) continue;
    const header = response.revision;
    if ((r.op === 'get' || r.op === 'list') && r.revision !== undefined && r.revision > header) {
      findings.add('order', `${describeOperation(op)} read revision ${r.revision}, beyond the store's revision ${header} when it answered`, [op.id], [], r.revision);
      continue;
    }
    if (r.op === 'get' && response.op === 'get') {
      const at = r.revision ?? response.revision;
      const held = store.at(r.key, at);
      const differs =
        held?.value !== response.value ||
        (response.value !== undefined && (held?.modRevision !== response.modRevision || (response.createRevision !== undefined && held?.createRevision !== response.createRevision) || (response.version !== undefined && held?.version !== response.version) || (response.lease ?? 0) !== (held?.lease ?? 0)));
      if (differs) findings.add('wrong-value', `${describeOperation(op)}, but at revision ${at} ${r.key} held ${stateText(held)}`, [op.id, writer(held), writer(response)], [], at);
    } else if (r.op === 'list' && response.op === 'list') {
      const at = r.revision ?? response.revision;
      const all = store.range(r.prefix, r.start, at);
      const page = r.limit !== undefined ? all.slice(0, r.limit) : all;
      const more = r.limit !== undefined && all.length > r.limit;
      const same = page.length === response.kvs.length && page.every((kv, i) => kv.key === response.kvs[i]!.key && kv.value === response.kvs[i]!.value && kv.modRevision === response.kvs[i]!.modRevision);
      if (!same || response.more !== more || response.count !== all.length) {
        const show = (kvs: { key: string; value: string }[]) => kvs.map((kv) => `${kv.key}=${kv.value}`).join(', ') || 'nothing';
        findings.add('wrong-value', `${describeOperation(op)} returned ${show(response.kvs)} (more ${response.more}, count ${response.count}), but at revision ${at} the range held ${show(page)} (more ${more}, count ${all.length})`, [op.id], [], at);
      }
    } else if (r.op === 'cas' && response.op === 'cas' && !response.succeeded) {
      const held = store.at(r.key, response.revision);
      if ((held?.modRevision ?? 0) === r.modRevision) findings.add('compare', `${describeOperation(op)}, but at revision ${response.revision} ${r.key}'s mod_revision was ${r.modRevision}: its compare held`, [op.id, writer(held)], [], response.revision);
    } else if (r.op === 'delete' && response.op === 'delete' && response.deleted === 0) {
      const held = store.at(r.key, response.revision);
      if (held) findings.add('wrong-value', `${describeOperation(op)}, but at revision ${response.revision} ${r.key} held ${stateText(held)}`, [op.id, writer(held)], [], response.revision);
    } else if (r.op === 'txn' && response.op === 'txn') {
      // Not committed: it changed nothing, so its compares and reads are those of its answer's revision.
      const effect = effectOf(r, store.asOf(response.revision), () => true);
      if (effect.succeeded !== response.succeeded) {
        findings.add('compare', `${describeOperation(op)}, but at revision ${response.revision} its compares ${effect.succeeded ? 'held' : 'did not hold'}`, [op.id], [], response.revision);
      } else if (effect.changes.length === 0 && response.reads && effect.reads) checkTxnReads(op, effect.reads, response.revision, findings);
    }
  }
}

/** Where each operation sits: committed writes at their revision, answered reads (and writes that changed nothing) at theirs. */
function place(history: History, committedAt: Map<number, number>): Placed[] {
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
function checkRealTime(placed: Placed[], finalRead: Placed | undefined, findings: Findings): number {
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
function checkLeases(history: History, replay: Replay, placed: Placed[], findings: Findings): void {
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

/** The watch events that carry a key's details (prev_kv, create revision, version), by revision. */
function streamsByRevision(history: History): Map<number, { stream: WatchStream; event: WatchEvent }[]> {
  const streamsAt = new Map<number, { stream: WatchStream; event: WatchEvent }[]>();
  for (const stream of history.watches) {
    for (const event of stream.events) {
      if (event.prev === undefined && event.createRevision === undefined && event.version === undefined) continue;
      const list = streamsAt.get(event.revision);
      if (list) list.push({ stream, event });
      else streamsAt.set(event.revision, [{ stream, event }]);
    }
  }
  return streamsAt;
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
