// What `etcd-lab check` records and the checker judges: every client operation with its call and
// return times and its outcome, every watch stream with the events it delivered, and the faults.
// Pure data (JSON on disk, see docs/failure.md#the-history-format); no I/O here.

/** ok: acknowledged. failed: certainly not applied (refused before it reached raft). unknown: may or may not have been applied, at any time after its call. */
export type Outcome = 'ok' | 'failed' | 'unknown';

/**
 * What a client asked. Every value written is unique in a run (client and sequence number), so a
 * committed change names the operation that made it.
 */
export type Request =
  | { op: 'get'; key: string; /** A serializable read, answered by the member from its own state: allowed to be stale. */ serializable?: boolean }
  | { op: 'put'; key: string; value: string }
  | { op: 'delete'; key: string }
  /** Compare-and-set: put `value` only if the key's mod_revision is `modRevision` (0: the key is absent). */
  | { op: 'cas'; key: string; modRevision: number; value: string }
  /** A transaction putting several keys at once, at one revision. */
  | { op: 'txn'; puts: { key: string; value: string }[] };

/** What etcd answered. `revision` is the store revision of the response header. */
export type Response =
  | { op: 'get'; revision: number; value?: string; modRevision?: number }
  | { op: 'put'; revision: number }
  | { op: 'delete'; revision: number; deleted: number }
  | { op: 'cas'; revision: number; succeeded: boolean }
  | { op: 'txn'; revision: number };

export interface Operation {
  id: number;
  client: number;
  /** Where the client sent it: a member's name, or "haproxy". */
  via: string;
  request: Request;
  /** Milliseconds since the run started. */
  callMs: number;
  /** When the answer came, or (not ok) when the client gave up. */
  returnMs: number;
  outcome: Outcome;
  /** Present when ok. */
  response?: Response;
  error?: string;
}

/** One change as a watch delivered it. */
export interface WatchEvent {
  revision: number;
  key: string;
  type: 'put' | 'delete';
  /** Put: the value written. */
  value?: string;
  /** Put: the key's mod_revision (its revision); delete: the revision of the delete. */
  modRevision: number;
  /** Which response of the stream carried it (events of one revision come in one response). */
  batch: number;
}

export interface WatchStream {
  id: number;
  /** The watching client; a client whose stream broke goes on in a new stream from where it was. */
  watcher: number;
  via: string;
  /** Asked for every change to the key space from this revision on. */
  fromRevision: number;
  startMs: number;
  endMs: number;
  events: WatchEvent[];
  /**
   * closed: ended by the client once it had every change up to the run's last revision (`upToRevision`);
   * broken: cut by a failure (what it delivered still counts); compacted: etcd said the revisions it
   * asked for are compacted (`compactRevision`).
   */
  end: 'closed' | 'broken' | 'compacted';
  upToRevision?: number;
  compactRevision?: number;
}

export interface FaultWindow {
  kind: string;
  target: string;
  startMs: number;
  endMs: number;
}

/** What a saved history says it is; `--verify` refuses any other. */
export const HISTORY_FORMAT = 'etcd-lab-history/2';

export interface History {
  format: typeof HISTORY_FORMAT;
  lab: string;
  startedAt: string;
  /** The key space every client works on (all under one prefix, watched whole). */
  keys: string[];
  /** The store revision before the first operation. */
  startRevision: number;
  operations: Operation[];
  watches: WatchStream[];
  faults: FaultWindow[];
  /** Read once every client stopped and every fault was undone, linearizably. */
  final: { revision: number; values: Record<string, { value: string; modRevision: number }> };
}

/** The unique values an operation may write. */
export function writtenValues(request: Request): string[] {
  switch (request.op) {
    case 'put':
    case 'cas':
      return [request.value];
    case 'txn':
      return request.puts.map((p) => p.value);
    default:
      return [];
  }
}

/** An operation in a line: "c3→etcd2 put k4=c3-17 ok @512 [1200–1210 ms]". */
export function describeOperation(op: Operation): string {
  const r = op.request;
  const what =
    r.op === 'get'
      ? `${r.serializable ? 'serializable ' : ''}get ${r.key}`
      : r.op === 'put'
        ? `put ${r.key}=${r.value}`
        : r.op === 'delete'
          ? `delete ${r.key}`
          : r.op === 'cas'
            ? `cas ${r.key} if mod_revision=${r.modRevision} then ${r.value}`
            : `txn ${r.puts.map((p) => `${p.key}=${p.value}`).join(' ')}`;
  const said = op.response ? ` @${op.response.revision}${answerOf(op.response)}` : op.error ? ` (${op.error})` : '';
  return `c${op.client}→${op.via} ${what} ${op.outcome}${said} [${Math.round(op.callMs)}–${Math.round(op.returnMs)} ms]`;
}

function answerOf(response: Response): string {
  switch (response.op) {
    case 'get':
      return response.value === undefined ? ' → absent' : ` → ${response.value} (mod ${response.modRevision})`;
    case 'delete':
      return ` → deleted ${response.deleted}`;
    case 'cas':
      return response.succeeded ? ' → set' : ' → not set';
    default:
      return '';
  }
}
