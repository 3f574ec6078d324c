// A small notation for writing histories by hand: every operation, change and stream spelled out,
// so a case reads as what happened. Revisions start after 100 and the key space starts empty.
import { HISTORY_FORMAT, type History, type Operation, type Request, type Response, type WatchEvent, type WatchStream } from '../../../src/checker/history.js';

export const START = 100;

export const get = (key: string): Request => ({ op: 'get', key });
/** A serializable get: answered from a member's own state, possibly stale. */
export const sget = (key: string): Request => ({ op: 'get', key, serializable: true });
export const put = (key: string, value: string): Request => ({ op: 'put', key, value });
export const del = (key: string): Request => ({ op: 'delete', key });
export const cas = (key: string, modRevision: number, value: string): Request => ({ op: 'cas', key, modRevision, value });
export const txn = (puts: Record<string, string>): Request => ({ op: 'txn', success: Object.entries(puts).map(([key, value]) => ({ op: 'put' as const, key, value })) });

/** What the client was told: an answer (its fields, the op taken from the request), or no answer. */
export type Answer = 'unknown' | 'failed' | { revision: number; value?: string; modRevision?: number; deleted?: number; succeeded?: boolean };

export type OpSpec = Omit<Operation, 'id'>;

/** One client operation from `callMs` to `returnMs`. */
export function op(client: number, request: Request, [callMs, returnMs]: [number, number], answer: Answer): OpSpec {
  if (answer === 'unknown' || answer === 'failed') {
    return { client, via: 'haproxy', request, callMs, returnMs, outcome: answer, error: answer === 'failed' ? 'connection refused' : 'deadline exceeded' };
  }
  return { client, via: 'haproxy', request, callMs, returnMs, outcome: 'ok', response: responseTo(request, answer) };
}

function responseTo(request: Request, a: Exclude<Answer, 'unknown' | 'failed'>): Response {
  switch (request.op) {
    case 'get':
      return { op: 'get', revision: a.revision, ...(a.value !== undefined ? { value: a.value, modRevision: a.modRevision ?? 0 } : {}) };
    case 'delete':
      return { op: 'delete', revision: a.revision, deleted: a.deleted ?? 0 };
    case 'cas':
      return { op: 'cas', revision: a.revision, succeeded: a.succeeded ?? false };
    case 'txn':
      return { op: 'txn', revision: a.revision, succeeded: true };
    case 'put':
      return { op: 'put', revision: a.revision };
    default:
      throw new Error(`the audit does not answer ${request.op}`);
  }
}

/** A committed change: [revision, key, value], a null value for a delete. */
export type ChangeSpec = [number, string, string | null];

/** The changes as a watch delivers them: one response per revision, mod_revision = revision. */
export function events(changes: ChangeSpec[]): WatchEvent[] {
  return changes.map(([revision, key, value]) =>
    value === null ? { revision, key, type: 'delete', modRevision: revision, batch: revision } : { revision, key, type: 'put', value, modRevision: revision, batch: revision },
  );
}

const lastRevision = (changes: ChangeSpec[]) => Math.max(START, ...changes.map(([r]) => r));

export function closed(id: number, delivered: WatchEvent[], upToRevision: number, fromRevision = START + 1): WatchStream {
  return { id, watcher: id, via: 'haproxy', fromRevision, startMs: 0, endMs: 1000, events: delivered, end: 'closed', upToRevision };
}

export function broken(id: number, delivered: WatchEvent[], fromRevision = START + 1): WatchStream {
  return { id, watcher: id, via: 'haproxy', fromRevision, startMs: 0, endMs: 1000, events: delivered, end: 'broken' };
}

export function compacted(id: number, delivered: WatchEvent[], compactRevision: number, fromRevision = START + 1): WatchStream {
  return { id, watcher: id, via: 'haproxy', fromRevision, startMs: 0, endMs: 1000, events: delivered, end: 'compacted', compactRevision };
}

/** The key space after `changes`, up to `revision`. */
export function stateAfter(changes: ChangeSpec[], revision = lastRevision(changes)): Record<string, { value: string; modRevision: number }> {
  const state: Record<string, { value: string; modRevision: number }> = {};
  for (const [r, key, value] of [...changes].sort((a, b) => a[0] - b[0])) {
    if (r > revision) break;
    if (value === null) delete state[key];
    else state[key] = { value, modRevision: r };
  }
  return state;
}

export interface HistorySpec {
  ops: OpSpec[];
  changes?: ChangeSpec[];
  /** Default: two streams from the start that delivered every change, closed at the last. */
  watches?: WatchStream[];
  /** Default: the key space after every change, at the last change's revision. */
  final?: History['final'];
}

/** Operation ids are their places in `ops`, from 1. */
export function history({ ops, changes = [], watches, final }: HistorySpec): History {
  const last = lastRevision(changes);
  return {
    format: HISTORY_FORMAT,
    lab: 'audit',
    startedAt: '2026-11-30T00:00:00Z',
    keys: ['k0', 'k1', 'k2'],
    startRevision: START,
    operations: ops.map((o, i) => ({ id: i + 1, ...o })),
    watches: watches ?? [closed(1, events(changes), last), closed(2, events(changes), last)],
    faults: [],
    final: final ?? { revision: last, values: stateAfter(changes) },
  };
}
