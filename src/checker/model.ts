// The etcd model the checker replays: a key-value store with revisions, each key's history (so a
// read of the past can be answered), and leases. `effectOf` says what a request would do to the store
// as it stands, which is what a committed change must be exactly.
import type { Compare, Kv, Request, TxnOp } from './history.js';

/** A key as it stands: etcd's mod_revision, create_revision and version, and the lease it is attached to. */
export interface KeyState {
  value: string;
  modRevision: number;
  createRevision: number;
  version: number;
  lease?: string;
}

/** One change a request makes; its revision is the commit's. */
export type Change = { key: string; type: 'put'; value: string; lease?: string } | { key: string; type: 'delete' };

export interface Effect {
  /** What it changes, in key order (empty: it changes nothing, and takes no revision). */
  changes: Change[];
  /** For guarded requests (cas, txn): whether the compares held. */
  succeeded?: boolean;
  /** A delete: how many keys it deleted. */
  deleted?: number;
  /** A transaction's gets, in order. */
  reads?: (KeyState | undefined)[];
  /** Why it cannot apply at all (a put on a lease that is gone): etcd refuses it. */
  refused?: string;
}

export const changeText = (c: Change) => (c.type === 'put' ? `put ${c.key}=${c.value}${c.lease ? ` (lease ${c.lease})` : ''}` : `delete ${c.key}`);

/** The store as a request sees it: now, or as of a revision. */
export interface StoreView {
  current(key: string): KeyState | undefined;
  keysOfLease(lease: string): string[];
}

/** Each key's states in revision order, and the leases' keys: the store at any revision. */
export class Store implements StoreView {
  private readonly history = new Map<string, { revision: number; state?: KeyState }[]>();
  /** Every key that ever existed, sorted: lists walk it. */
  private sortedKeys: string[] = [];
  private sorted = true;
  /** The keys attached to each lease now. */
  private readonly attached = new Map<string, Set<string>>();
  revision: number;

  constructor(startRevision: number) {
    this.revision = startRevision;
  }

  current(key: string): KeyState | undefined {
    return this.history.get(key)?.at(-1)?.state;
  }

  /** The key as of `revision`. */
  at(key: string, revision: number): KeyState | undefined {
    const list = this.history.get(key);
    if (!list) return undefined;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.revision <= revision) lo = mid + 1;
      else hi = mid;
    }
    return list[lo - 1]?.state;
  }

  /** Keys under `prefix` from `start` on that existed as of `revision`, in key order. */
  range(prefix: string, start: string | undefined, revision: number): Kv[] {
    if (!this.sorted) {
      this.sortedKeys.sort(byBytes);
      this.sorted = true;
    }
    const from = start !== undefined && byBytes(start, prefix) > 0 ? start : prefix;
    const out: Kv[] = [];
    for (const key of this.sortedKeys) {
      if (byBytes(key, from) < 0 || !key.startsWith(prefix)) continue;
      const s = this.at(key, revision);
      if (s) out.push(kvOf(key, s));
    }
    return out;
  }

  keysOfLease(lease: string): string[] {
    return [...(this.attached.get(lease) ?? [])].sort(byBytes);
  }

  /** The store as of `revision`, for reads of the past (leases: as they stand now). */
  asOf(revision: number): StoreView {
    return { current: (key) => this.at(key, revision), keysOfLease: (lease) => this.keysOfLease(lease) };
  }

  /** Applies one revision's changes (what was observed, not what was expected). */
  apply(revision: number, changes: Change[]): void {
    for (const c of changes) {
      const before = this.current(c.key);
      if (before?.lease) this.attached.get(before.lease)?.delete(c.key);
      let state: KeyState | undefined;
      if (c.type === 'put') {
        state = { value: c.value, modRevision: revision, createRevision: before?.createRevision ?? revision, version: (before?.version ?? 0) + 1, ...(c.lease ? { lease: c.lease } : {}) };
        if (c.lease) {
          const set = this.attached.get(c.lease) ?? new Set<string>();
          set.add(c.key);
          this.attached.set(c.lease, set);
        }
      }
      let list = this.history.get(c.key);
      if (!list) {
        list = [];
        this.history.set(c.key, list);
        this.sortedKeys.push(c.key);
        this.sorted = false;
      }
      list.push({ revision, ...(state ? { state } : {}) });
    }
    this.revision = Math.max(this.revision, revision);
  }
}

/** etcd orders keys by their bytes. */
export function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function kvOf(key: string, s: KeyState): Kv {
  return { key, value: s.value, modRevision: s.modRevision, createRevision: s.createRevision, version: s.version, ...(s.lease ? { lease: s.lease } : {}) };
}

function holds(c: Compare, state: KeyState | undefined): boolean {
  const actual = c.target === 'mod' ? (state?.modRevision ?? 0) : c.target === 'create' ? (state?.createRevision ?? 0) : (state?.version ?? 0);
  return actual === c.equals;
}

/**
 * What `request` does to the store as it stands now (just before its revision). `leaseAlive` says
 * whether a lease can still take keys.
 */
export function effectOf(request: Request, store: StoreView, leaseAlive: (lease: string) => boolean): Effect {
  switch (request.op) {
    case 'put':
      if (request.lease && !leaseAlive(request.lease)) return { changes: [], refused: `lease ${request.lease} is gone` };
      return { changes: [{ key: request.key, type: 'put', value: request.value, ...(request.lease ? { lease: request.lease } : {}) }] };
    case 'delete':
      return store.current(request.key) ? { changes: [{ key: request.key, type: 'delete' }], deleted: 1 } : { changes: [], deleted: 0 };
    case 'cas': {
      const succeeded = (store.current(request.key)?.modRevision ?? 0) === request.modRevision;
      return { changes: succeeded ? [{ key: request.key, type: 'put', value: request.value }] : [], succeeded };
    }
    case 'txn': {
      const succeeded = (request.compare ?? []).every((c) => holds(c, store.current(c.key)));
      return { ...txnEffect(succeeded ? request.success : (request.failure ?? []), store, leaseAlive), succeeded };
    }
    case 'lease-revoke':
      return { changes: store.keysOfLease(request.lease).map((key) => ({ key, type: 'delete' as const })) };
    default:
      return { changes: [] };
  }
}

/** A branch's operations in order, each seeing the ones before it (etcd applies them so, at one revision). */
function txnEffect(ops: TxnOp[], store: StoreView, leaseAlive: (lease: string) => boolean): Effect {
  const scratch = new Map<string, KeyState | undefined>();
  const now = (key: string) => (scratch.has(key) ? scratch.get(key) : store.current(key));
  const changes = new Map<string, Change>();
  const reads: (KeyState | undefined)[] = [];
  for (const o of ops) {
    if (o.op === 'get') reads.push(now(o.key));
    else if (o.op === 'put') {
      if (o.lease && !leaseAlive(o.lease)) return { changes: [], refused: `lease ${o.lease} is gone` };
      const before = now(o.key);
      scratch.set(o.key, { value: o.value, modRevision: 0, createRevision: before?.createRevision ?? 0, version: (before?.version ?? 0) + 1, ...(o.lease ? { lease: o.lease } : {}) });
      changes.set(o.key, { key: o.key, type: 'put', value: o.value, ...(o.lease ? { lease: o.lease } : {}) });
    } else if (now(o.key)) {
      scratch.set(o.key, undefined);
      // A put then a delete of one key in one transaction: etcd refuses such a request outright.
      changes.set(o.key, { key: o.key, type: 'delete' });
    }
  }
  return { changes: [...changes.values()].sort((a, b) => byBytes(a.key, b.key)), reads };
}

/** Whether two change lists are the same changes (both in key order). */
export function sameChanges(a: Change[], b: Change[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => {
      const y = b[i]!;
      return x.key === y.key && x.type === y.type && (x.type === 'delete' || (y.type === 'put' && x.value === y.value && (x.lease ?? 0) === (y.lease ?? 0)));
    })
  );
}
