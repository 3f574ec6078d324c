// The replay: each committed revision explained by one request, whose effect on the store just
// before it (model.ts) must be exactly the changes the watches delivered; unknown outcomes decided
// by it; every answer checked against the store at the revision it names.
import { describeOperation, isWrite, writtenValues, type History, type Operation, type Request, type WatchEvent, type WatchStream } from './history.js';
import { changeText, effectOf, sameChanges, Store, type Change, type KeyState } from './model.js';
import { changeOf, eventText, Findings, stateText, type Commit } from './findings.js';

/** What the leases did: granted, refreshed, ended (revoked or expired), as the checker learns it. */
export interface LeaseLife {
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
export class Replay {
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
export function checkWriteOutcomes(history: History, replay: Replay, findings: Findings): void {
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
export function checkReads(history: History, replay: Replay, findings: Findings): void {
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
