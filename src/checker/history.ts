// What `etcd-lab check` records and the checker judges: every client operation with its call and
// return times and its outcome, every watch stream with what it delivered, the faults, the final
// state and the members' hashes. Pure data (JSON on disk, see docs/failure.md#the-history-format);
// no I/O here. A saved file is read through validate.ts, which also upgrades older formats.

/** ok: acknowledged. failed: certainly not applied (refused before it reached raft). unknown: may or may not have been applied, at any time after its call. */
export type Outcome = 'ok' | 'failed' | 'unknown';

/** A transaction's guard: the key's mod_revision, create_revision or version (0: absent) equals a number. */
export interface Compare {
  key: string;
  target: 'mod' | 'create' | 'version';
  equals: number;
}

/** What a transaction does in the branch its compares chose. */
export type TxnOp = { op: 'put'; key: string; value: string; lease?: string } | { op: 'delete'; key: string } | { op: 'get'; key: string };

/**
 * What a client asked. Every value written is unique in a run (client and sequence number), so a
 * committed put names the request that made it; a delete is named by its key and its revision.
 */
export type Request =
  /** One key; at `revision` if given (a read of the past), else at the present. Serializable: from the member's own state, allowed to be stale. */
  | { op: 'get'; key: string; serializable?: boolean; revision?: number }
  /** Keys under `prefix` from `start` on (inclusive; a continue token), at most `limit`, as of `revision` if given. */
  | { op: 'list'; prefix: string; start?: string; limit?: number; revision?: number; serializable?: boolean }
  | { op: 'put'; key: string; value: string; lease?: string }
  | { op: 'delete'; key: string }
  /** Compare-and-set: put `value` only if the key's mod_revision is `modRevision` (0: the key is absent). */
  | { op: 'cas'; key: string; modRevision: number; value: string }
  /** A transaction: `success` if every compare holds, else `failure`; all of it at one revision. */
  | { op: 'txn'; compare?: Compare[]; success: TxnOp[]; failure?: TxnOp[] }
  | { op: 'lease-grant'; ttlSeconds: number }
  | { op: 'lease-keepalive'; lease: string }
  /** Revokes the lease: every key attached to it is deleted, at one revision. */
  | { op: 'lease-revoke'; lease: string };

/** A key as etcd returns it. Lease ids are decimal strings: etcd's are 63-bit, beyond what a JSON number holds exactly. */
export interface Kv {
  key: string;
  value: string;
  modRevision: number;
  createRevision?: number;
  version?: number;
  lease?: string;
}

/** What etcd answered. `revision` is the store revision of the response header. */
export type Response =
  | { op: 'get'; revision: number; value?: string; modRevision?: number; createRevision?: number; version?: number; lease?: string }
  | { op: 'list'; revision: number; kvs: Kv[]; more: boolean; count: number }
  | { op: 'put'; revision: number }
  | { op: 'delete'; revision: number; deleted: number }
  | { op: 'cas'; revision: number; succeeded: boolean }
  /** `reads`: one entry per get of the branch taken, in order (null: absent). */
  | { op: 'txn'; revision: number; succeeded: boolean; reads?: (Kv | null)[] }
  | { op: 'lease-grant'; revision: number; lease: string; ttlSeconds: number }
  /** ttlSeconds 0: etcd did not know the lease (expired or revoked). */
  | { op: 'lease-keepalive'; revision: number; ttlSeconds: number }
  | { op: 'lease-revoke'; revision: number };

export interface Operation {
  id: number;
  client: number;
  /** Where the client sent it: a member's name, "haproxy", or "control" (the workload's own calls). */
  via: string;
  request: Request;
  /** Milliseconds since the run started. */
  callMs: number;
  /** When the answer came, or (not ok) when the client gave up. */
  returnMs: number;
  outcome: Outcome;
  /** Present exactly when ok. */
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
  createRevision?: number;
  version?: number;
  lease?: string;
  /** With prev_kv: what the key held before (null: nothing). */
  prev?: { value: string; modRevision: number } | null;
  /** Which response of the stream carried it (events of one revision come in one response). */
  batch: number;
}

/** A progress notification: "every change up to `revision` has been sent", after response `batch`. */
export interface WatchProgress {
  revision: number;
  batch: number;
  atMs: number;
}

export interface WatchStream {
  id: number;
  /** The watching client; a client whose stream broke goes on in a new stream from where it was. */
  watcher: number;
  via: string;
  /** The keys it watches: every key under this prefix. */
  prefix?: string;
  /** Asked for every change to the key space from this revision on. */
  fromRevision: number;
  /** Asked with prev_kv: each event carries the key's previous state. */
  prevKv?: boolean;
  /** Asked to leave out puts or deletes. */
  filter?: 'noput' | 'nodelete';
  startMs: number;
  endMs: number;
  events: WatchEvent[];
  progress?: WatchProgress[];
  /**
   * closed: ended by the client once it had every change up to the run's last revision (`upToRevision`);
   * broken: cut by a failure (what it delivered still counts); compacted: etcd said the revisions it
   * asked for are compacted (`compactRevision`); what it delivered before that still counts.
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

/** A member's hash of its key-value store at a revision (HashKV): members at one revision agree. */
export interface MemberHash {
  member: string;
  revision: number;
  compactRevision: number;
  hash: number;
}

/** What a saved history says it is; older formats are upgraded on reading (validate.ts). */
export const HISTORY_FORMAT = 'etcd-lab-history/3';

export interface History {
  format: typeof HISTORY_FORMAT;
  lab: string;
  startedAt: string;
  /** What the clients did: `etcd` (gets, puts, deletes, compare-and-sets, transactions), `kubernetes`, `leases`. */
  traffic?: string;
  /** The key space every client works on (all under `prefix`, watched whole). */
  prefix?: string;
  keys: string[];
  /** The store revision before the first operation. */
  startRevision: number;
  operations: Operation[];
  watches: WatchStream[];
  faults: FaultWindow[];
  /**
   * Read once every client stopped and every fault was undone: the key space as of `revision`
   * (the end marker's, so writers of other keys do not move it), read linearizably at `readAtRevision`
   * (the store's revision then), called at `callMs`.
   */
  final: { revision: number; readAtRevision?: number; callMs?: number; values: Record<string, { value: string; modRevision: number; lease?: string }> };
  hashes?: MemberHash[];
}

/** The unique values a request may write. */
export function writtenValues(request: Request): string[] {
  switch (request.op) {
    case 'put':
    case 'cas':
      return [request.value];
    case 'txn':
      return [...request.success, ...(request.failure ?? [])].flatMap((o) => (o.op === 'put' ? [o.value] : []));
    default:
      return [];
  }
}

/** Whether a request can change the key space (a write), as opposed to only reading it. */
export function isWrite(request: Request): boolean {
  switch (request.op) {
    case 'get':
    case 'list':
    case 'lease-grant':
    case 'lease-keepalive':
      return false;
    case 'txn':
      return [...request.success, ...(request.failure ?? [])].some((o) => o.op !== 'get');
    default:
      return true;
  }
}

/** Whether a read is served from a member's own state, which may be stale. */
export function isSerializable(request: Request): boolean {
  return (request.op === 'get' || request.op === 'list') && request.serializable === true;
}

const txnOpText = (o: TxnOp) => (o.op === 'put' ? `put ${o.key}=${o.value}${o.lease ? ` lease ${o.lease}` : ''}` : `${o.op} ${o.key}`);

function requestText(r: Request): string {
  switch (r.op) {
    case 'get':
      return `${r.serializable ? 'serializable ' : ''}get ${r.key}${r.revision ? ` at ${r.revision}` : ''}`;
    case 'list':
      return `${r.serializable ? 'serializable ' : ''}list ${r.prefix}${r.start ? ` from ${r.start}` : ''}${r.limit ? ` limit ${r.limit}` : ''}${r.revision ? ` at ${r.revision}` : ''}`;
    case 'put':
      return `put ${r.key}=${r.value}${r.lease ? ` lease ${r.lease}` : ''}`;
    case 'delete':
      return `delete ${r.key}`;
    case 'cas':
      return `cas ${r.key} if mod_revision=${r.modRevision} then ${r.value}`;
    case 'txn': {
      const guard = (r.compare ?? []).map((c) => `${c.target}(${c.key})=${c.equals}`).join(' and ');
      const then = r.success.map(txnOpText).join(', ');
      const otherwise = (r.failure ?? []).map(txnOpText).join(', ');
      return `txn ${guard ? `if ${guard} then ` : ''}${then}${otherwise ? ` else ${otherwise}` : ''}`;
    }
    case 'lease-grant':
      return `lease grant ${r.ttlSeconds} s`;
    case 'lease-keepalive':
      return `lease keep-alive ${r.lease}`;
    case 'lease-revoke':
      return `lease revoke ${r.lease}`;
  }
}

function answerOf(response: Response): string {
  switch (response.op) {
    case 'get':
      return response.value === undefined ? ' → absent' : ` → ${response.value} (mod ${response.modRevision})`;
    case 'list':
      return ` → ${response.kvs.length} keys${response.more ? ', more' : ''}`;
    case 'delete':
      return ` → deleted ${response.deleted}`;
    case 'cas':
    case 'txn':
      return response.succeeded ? ' → applied' : ' → not applied';
    case 'lease-grant':
      return ` → lease ${response.lease}, ${response.ttlSeconds} s`;
    case 'lease-keepalive':
      return response.ttlSeconds > 0 ? ` → ${response.ttlSeconds} s` : ' → not found';
    default:
      return '';
  }
}

/** An operation in a line: "c3→etcd2 put k4=c3-17 ok @512 [1200–1210 ms]". */
export function describeOperation(op: Operation): string {
  const said = op.response ? ` @${op.response.revision}${answerOf(op.response)}` : op.error ? ` (${op.error})` : '';
  return `c${op.client}→${op.via} ${requestText(op.request)} ${op.outcome}${said} [${Math.round(op.callMs)}–${Math.round(op.returnMs)} ms]`;
}
