// What `check`'s clients ask, by kind of traffic. Each client keeps what it has seen (mod revisions,
// a list's revision, its leases) and asks its next request from that, as real clients do:
//   etcd        gets, puts, deletes, compare-and-sets and two-key transactions on a few keys;
//   kubernetes  as Kubernetes' storage layer (k8s.io/apiserver etcd3): creates if absent, updates and
//               deletes guarded by mod_revision (reading the current object when the guard fails),
//               gets, gets at a past revision, lists paged with limit and continue at one revision,
//               serializable lists;
//   leases      leases granted, keys put on them, some kept alive and some left to expire, some
//               revoked, beside plain puts and gets of the same keys.
// Every value written is unique in the run (client and sequence number): the checker relies on it.
import type { Kv, Request, Response } from '../checker/history.js';

export const TRAFFIC = ['etcd', 'kubernetes', 'leases'] as const;
export type TrafficKind = (typeof TRAFFIC)[number];

/** One client's memory. */
export interface ClientState {
  client: number;
  seq: number;
  /** Each key's mod_revision as this client last saw it (0: absent). */
  seen: Map<string, number>;
  /** A list in progress: the next page starts at `start`, at `revision`. */
  page?: { start: string; revision: number };
  /** The revision of this client's last complete list: what a get of the past asks for. */
  listedAt?: number;
  /** Leases this client holds: whether it keeps each alive, and when it last did. */
  leases: Map<string, { keep: boolean; lastKeptMs: number; ownKey?: boolean }>;
  serializable: boolean;
}

export interface Traffic {
  kind: TrafficKind;
  /** The keys the clients work on. */
  keys: string[];
  next(state: ClientState, nowMs: number): Request;
  /** What the client learns from an answer. */
  observe(state: ClientState, request: Request, response: Response, nowMs: number): void;
}

/** Kubernetes' page size is usually 500; a handful here makes every list take several pages. */
const PAGE = 3;
/** The shortest TTL etcd grants with the lab's election timeout is 1.5 s; 5 s leaves keep-alives room. */
const LEASE_TTL_SECONDS = 5;
const KEEP_ALIVE_EVERY_MS = 1000;

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

function remember(state: ClientState, kvs: (Kv | null | undefined)[], keys: string[]): void {
  kvs.forEach((kv, i) => {
    if (kv) state.seen.set(kv.key, kv.modRevision);
    else if (keys[i] !== undefined) state.seen.set(keys[i]!, 0);
  });
}

export function trafficOf(kind: TrafficKind, prefix: string, keyCount: number, opts: { serializable: boolean }): Traffic {
  switch (kind) {
    case 'etcd':
      return etcdTraffic(prefix, keyCount, opts.serializable);
    case 'kubernetes':
      return kubernetesTraffic(prefix, keyCount);
    case 'leases':
      return leaseTraffic(prefix, keyCount);
  }
}

function etcdTraffic(prefix: string, keyCount: number, serializable: boolean): Traffic {
  const keys = Array.from({ length: keyCount }, (_, i) => `${prefix}k${i}`);
  return {
    kind: 'etcd',
    keys,
    next(state) {
      const key = pick(keys);
      const value = `c${state.client}-${++state.seq}`;
      const roll = Math.random();
      if (roll < 0.4) return { op: 'get', key, ...(serializable ? { serializable: true } : {}) };
      if (roll < 0.65) return { op: 'put', key, value };
      if (roll < 0.75) return { op: 'delete', key };
      if (roll < 0.9) return { op: 'cas', key, modRevision: state.seen.get(key) ?? 0, value };
      const other = keys[(keys.indexOf(key) + 1) % keys.length]!;
      return { op: 'txn', success: [{ op: 'put', key, value }, { op: 'put', key: other, value: `${value}b` }] };
    },
    observe(state, request, response) {
      if (request.op === 'get' && response.op === 'get') state.seen.set(request.key, response.modRevision ?? 0);
      if (request.op === 'cas' && response.op === 'cas' && response.succeeded) state.seen.set(request.key, response.revision);
    },
  };
}

function kubernetesTraffic(prefix: string, keyCount: number): Traffic {
  const registry = `${prefix}registry/widgets/`;
  const keys = Array.from({ length: keyCount }, (_, i) => `${registry}o${String(i).padStart(3, '0')}`);
  return {
    kind: 'kubernetes',
    keys,
    next(state) {
      const value = `c${state.client}-${++state.seq}`;
      // A list under way goes on: the next page, at the first page's revision.
      if (state.page) return { op: 'list', prefix: registry, start: state.page.start, limit: PAGE, revision: state.page.revision };
      const key = pick(keys);
      const seen = state.seen.get(key);
      const roll = Math.random();
      if (roll < 0.12) return { op: 'list', prefix: registry, limit: PAGE };
      if (roll < 0.17) return { op: 'list', prefix: registry, serializable: true };
      if (roll < 0.32) return { op: 'get', key };
      if (roll < 0.37 && state.listedAt) return { op: 'get', key, revision: state.listedAt };
      // Create if absent: the object's create_revision is 0 (GuaranteedUpdate's create, and Create).
      if (roll < 0.55 || seen === undefined || seen === 0) return { op: 'txn', compare: [{ key, target: 'create', equals: 0 }], success: [{ op: 'put', key, value }], failure: [{ op: 'get', key }] };
      // Update or delete guarded by the mod_revision the client last saw; on conflict, read it back.
      if (roll < 0.88) return { op: 'txn', compare: [{ key, target: 'mod', equals: seen }], success: [{ op: 'put', key, value }], failure: [{ op: 'get', key }] };
      return { op: 'txn', compare: [{ key, target: 'mod', equals: seen }], success: [{ op: 'delete', key }], failure: [{ op: 'get', key }] };
    },
    observe(state, request, response) {
      if (request.op === 'get' && response.op === 'get' && request.revision === undefined) state.seen.set(request.key, response.modRevision ?? 0);
      if (request.op === 'list' && response.op === 'list') {
        remember(state, response.kvs, []);
        if (request.limit === undefined) return;
        const last = response.kvs.at(-1);
        const revision = request.revision ?? response.revision;
        if (response.more && last) state.page = { start: `${last.key}\0`, revision };
        else {
          state.page = undefined;
          state.listedAt = revision;
        }
      }
      if (request.op === 'txn' && response.op === 'txn') {
        const key = request.success[0]!.key;
        if (response.succeeded) state.seen.set(key, request.success[0]!.op === 'delete' ? 0 : response.revision);
        else remember(state, response.reads ?? [], [key]);
      }
    },
  };
}

function leaseTraffic(prefix: string, keyCount: number): Traffic {
  const keys = Array.from({ length: keyCount }, (_, i) => `${prefix}l${i}`);
  return {
    kind: 'leases',
    keys,
    next(state, nowMs) {
      // Keeping alive comes first: a lease kept alive must never expire. One left alone is
      // forgotten a second after its TTL (a put on it then would only be refused).
      for (const [lease, l] of state.leases) {
        if (!l.keep && nowMs - l.lastKeptMs > LEASE_TTL_SECONDS * 1000 + 1000) state.leases.delete(lease);
        else if (l.keep && nowMs - l.lastKeptMs >= KEEP_ALIVE_EVERY_MS) {
          l.lastKeptMs = nowMs;
          return { op: 'lease-keepalive', lease };
        } else if (!l.keep && !l.ownKey) {
          // A key of its own that nobody writes again: the shared keys are rewritten many times a
          // second, so without it a lease left alone would seldom hold a key when it expires, and
          // its expiry (its keys deleted with no request behind) would go unchecked.
          l.ownKey = true;
          return { op: 'put', key: `${prefix}e-${lease}`, value: `c${state.client}-${++state.seq}`, lease };
        }
      }
      const value = `c${state.client}-${++state.seq}`;
      const key = pick(keys);
      const held = [...state.leases.keys()];
      const roll = Math.random();
      if (held.length === 0 || roll < 0.08) return { op: 'lease-grant', ttlSeconds: LEASE_TTL_SECONDS };
      if (roll < 0.45) return { op: 'put', key, value, lease: pick(held) };
      if (roll < 0.55) return { op: 'put', key, value };
      // Only leases kept alive are revoked: one left alone is left to expire (revoked, its expiry would
      // never be seen: most were, within their TTL, at this rate).
      const kept = held.filter((l) => state.leases.get(l)!.keep);
      if (roll < 0.6 && kept.length > 0) {
        const lease = pick(kept);
        state.leases.delete(lease);
        return { op: 'lease-revoke', lease };
      }
      if (roll < 0.65) return { op: 'delete', key };
      return { op: 'get', key };
    },
    observe(state, request, response, nowMs) {
      // Two leases in three are kept alive until revoked; the others are left to expire.
      if (response.op === 'lease-grant') state.leases.set(response.lease, { keep: Math.random() < 2 / 3, lastKeptMs: nowMs });
      if (request.op === 'lease-keepalive' && response.op === 'lease-keepalive' && response.ttlSeconds === 0) state.leases.delete(request.lease);
    },
  };
}
