// `check`'s workload: concurrent clients on a small key space — some pinned to one member, some
// through HAProxy — sending one kind of traffic (traffic.ts: etcd's own mix, Kubernetes' storage
// layer's, leases) at a bounded rate, every call with a deadline and none retried; and watchers that
// follow the whole key space from the first revision, resuming on another endpoint where a stream
// breaks. Everything is recorded for the checker.
import { deletePrefix, currentRevision, type Endpoint } from '../protocol/etcd-http.js';
import { hashKv, kvCompareAndSet, kvDelete, kvGet, kvList, kvPut, kvRange, kvTxn, leaseGrant, leaseKeepAlive, leaseRevoke, watchPrefix, type WatchHandle } from '../protocol/etcd-kv.js';
import { trafficOf, type ClientState, type Traffic, type TrafficKind } from './traffic.js';
import { HISTORY_FORMAT, isWrite, type History, type MemberHash, type Operation, type Request, type Response, type WatchStream } from '../checker/history.js';

export interface ClientSpec {
  /** A member's name, or "haproxy". */
  via: string;
  /** Asked before each call: a member restarted after a fault may be published on another host port. */
  endpoint: () => Endpoint;
}

export interface WorkloadOptions {
  /** Every key lives under it (cleared first). */
  prefix: string;
  keys: number;
  traffic?: TrafficKind;
  clients: ClientSpec[];
  /** Each watcher tries its endpoints in turn when a stream breaks. */
  watchers: ClientSpec[][];
  /** Operations per second over all clients, at most. */
  rate: number;
  callTimeoutMs: number;
  reads: 'linearizable' | 'serializable';
  /** Where the workload's own calls (clearing, the end marker, the final read) go. */
  control: Endpoint;
  /** Every member, asked for its store's hash at the end marker's revision (they must agree). */
  members?: () => Promise<{ name: string; endpoint: Endpoint }[]>;
  lab: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a failed put tells us about whether it may still commit. */
export function classifyWriteError(error: unknown): { outcome: 'failed' | 'unknown'; reason: string } {
  const e = error as Error & { code?: string };
  const code = e.code ?? '';
  const message = e.message ?? String(error);
  // Never connected, or etcd refused before proposing to raft: it cannot commit.
  if (code === 'ECONNREFUSED') return { outcome: 'failed', reason: 'connection refused' };
  if (/etcdserver: no leader/.test(message)) return { outcome: 'failed', reason: 'no leader' };
  // Applied as nothing: a put on a lease that is gone changes no key.
  if (/requested lease not found/.test(message)) return { outcome: 'failed', reason: 'lease not found' };
  // Anything else (timeouts, resets, "request timed out") may have been proposed and may commit later.
  return { outcome: 'unknown', reason: e.name === 'TimeoutError' ? 'deadline exceeded' : code || message.slice(0, 120) };
}

/** What a failed call means: for a read nothing; for a write, whether it may still commit. */
function outcomeOf(request: Request, error: unknown): { outcome: 'failed' | 'unknown'; reason: string } {
  const classified = classifyWriteError(error);
  return isWrite(request) ? classified : { outcome: 'failed', reason: classified.reason };
}

/** One request through etcd's gateway, answered as the history records it. */
async function send(e: Endpoint, request: Request, t: number): Promise<Response> {
  switch (request.op) {
    case 'get':
      return { op: 'get', ...(await kvGet(e, request.key, { serializable: request.serializable, revision: request.revision, timeoutMs: t })) };
    case 'list':
      return { op: 'list', ...(await kvList(e, request.prefix, { start: request.start, limit: request.limit, revision: request.revision, serializable: request.serializable, timeoutMs: t })) };
    case 'put':
      return { op: 'put', ...(await kvPut(e, request.key, request.value, t, request.lease)) };
    case 'delete':
      return { op: 'delete', ...(await kvDelete(e, request.key, t)) };
    case 'cas':
      return { op: 'cas', ...(await kvCompareAndSet(e, request.key, request.modRevision, request.value, t)) };
    case 'txn': {
      const r = await kvTxn(e, request, t);
      return { op: 'txn', revision: r.revision, succeeded: r.succeeded, ...(r.reads.length > 0 ? { reads: r.reads } : {}) };
    }
    case 'lease-grant':
      return { op: 'lease-grant', ...(await leaseGrant(e, request.ttlSeconds, t)) };
    case 'lease-keepalive':
      return { op: 'lease-keepalive', ...(await leaseKeepAlive(e, request.lease, t)) };
    case 'lease-revoke':
      return { op: 'lease-revoke', ...(await leaseRevoke(e, request.lease, t)) };
  }
}

export class Workload {
  readonly operations: Operation[] = [];
  readonly streams: WatchStream[] = [];
  private readonly origin = performance.now();
  private stopping = false;
  private running: Promise<void>[] = [];
  private readonly watching: { next: number; handle?: WatchHandle; loop?: Promise<void>; closed?: boolean }[] = [];
  private startRevision = 0;
  private nextId = 1;
  readonly keys: string[];
  private readonly traffic: Traffic;
  /** Written once the clients stopped: every watcher must deliver it. */
  private readonly endKey: string;

  constructor(private readonly opts: WorkloadOptions) {
    this.traffic = trafficOf(opts.traffic ?? 'etcd', opts.prefix, opts.keys, { serializable: opts.reads === 'serializable' });
    this.keys = this.traffic.keys;
    this.endKey = `${opts.prefix}end`;
  }

  /** Milliseconds since the workload was made: the time axis of the history. */
  now(): number {
    return performance.now() - this.origin;
  }

  /** The highest revision every watcher has delivered everything up to. */
  watchedRevision(): number {
    return Math.min(...this.watching.map((w) => w.next - 1));
  }

  /** Clears the key space, notes the revision, starts the watchers, then the clients. */
  async start(): Promise<void> {
    await deletePrefix(this.opts.control, this.opts.prefix);
    this.startRevision = await currentRevision(this.opts.control);
    for (const endpoints of this.opts.watchers) {
      const w: (typeof this.watching)[number] = { next: this.startRevision + 1 };
      this.watching.push(w);
      w.loop = this.watchLoop(w, endpoints, this.watching.length);
    }
    this.running = this.opts.clients.map((c, i) => this.clientLoop(i + 1, c));
  }

  private async clientLoop(client: number, spec: ClientSpec): Promise<void> {
    const pauseMs = (1000 * this.opts.clients.length) / this.opts.rate;
    const state: ClientState = { client, seq: 0, seen: new Map(), leases: new Map(), serializable: this.opts.reads === 'serializable' };
    while (!this.stopping) {
      const request = this.traffic.next(state, this.now());
      const op = await this.perform(client, spec, request);
      if (op.response) this.traffic.observe(state, request, op.response, this.now());
      await sleep(pauseMs * (0.5 + Math.random()));
    }
  }

  private async perform(client: number, spec: ClientSpec, request: Request): Promise<Operation> {
    const t = this.opts.callTimeoutMs;
    const e = spec.endpoint();
    const callMs = this.now();
    const op: Operation = { id: this.nextId++, client, via: spec.via, request, callMs, returnMs: callMs, outcome: 'ok' };
    this.operations.push(op);
    try {
      op.response = await send(e, request, t);
    } catch (error) {
      const { outcome, reason } = outcomeOf(request, error);
      op.outcome = outcome;
      op.error = reason;
    }
    op.returnMs = this.now();
    return op;
  }

  private async watchLoop(w: (typeof this.watching)[number], endpoints: ClientSpec[], watcher: number): Promise<void> {
    for (let attempt = 0; !w.closed; attempt++) {
      const spec = endpoints[attempt % endpoints.length]!;
      // The first watcher asks for each key's previous state too (prev_kv), which the checker replays.
      const prevKv = watcher === 1;
      const stream: WatchStream = { id: this.streams.length + 1, watcher, via: spec.via, prefix: this.opts.prefix, fromRevision: w.next, ...(prevKv ? { prevKv } : {}), startMs: this.now(), endMs: 0, events: [], end: 'broken' };
      this.streams.push(stream);
      let batch = 0;
      const handle = watchPrefix(
        spec.endpoint(),
        this.opts.prefix,
        w.next,
        (events) => {
          batch += 1;
          for (const e of events) stream.events.push({ ...e, batch });
          w.next = events.at(-1)!.revision + 1;
        },
        2000,
        { prevKv },
      );
      w.handle = handle;
      const end = await handle.ended;
      w.handle = undefined;
      stream.endMs = this.now();
      stream.end = end.end;
      if (end.end === 'closed') {
        stream.upToRevision = w.next - 1;
        return;
      }
      if (end.end === 'compacted') {
        // Its revisions are gone: it goes on from the oldest there is, and says what it could not see.
        stream.compactRevision = end.compactRevision;
        w.next = end.compactRevision;
      }
      await sleep(100);
    }
  }

  /**
   * Stops the clients (each finishes or times out its call), writes an end marker so every watcher
   * can prove it saw everything up to it, waits for them, closes them, and reads the final state.
   */
  async stop(faults: History['faults'] = [], deadlineMs = 30_000): Promise<History> {
    this.stopping = true;
    await Promise.all(this.running);
    const until = Date.now() + deadlineMs;
    // Each try is an operation of its own with a value of its own: a try that timed out may still
    // commit, and the same value committed twice would be a lost update of our own making.
    let endRevision = 0;
    for (let attempt = 1; endRevision === 0 && Date.now() < until; attempt++) {
      const request: Request = { op: 'put', key: this.endKey, value: `end-${attempt}` };
      const marker: Operation = { id: this.nextId++, client: 0, via: 'control', request, callMs: this.now(), returnMs: 0, outcome: 'ok' };
      this.operations.push(marker);
      try {
        endRevision = (await kvPut(this.opts.control, request.key, request.value, 3000)).revision;
        marker.response = { op: 'put', revision: endRevision };
      } catch (error) {
        const { outcome, reason } = outcomeOf(request, error);
        marker.outcome = outcome;
        marker.error = reason;
        await sleep(300);
      }
      marker.returnMs = this.now();
    }
    // Every watcher gets until the deadline to deliver the marker, one between two streams too (its
    // stream just cut, as HAProxy cuts them when the leader moves): it resumes from where it was.
    while (Date.now() < until && this.watching.some((w) => w.next <= endRevision)) await sleep(50);
    for (const w of this.watching) {
      w.closed = true;
      w.handle?.close();
    }
    await Promise.all(this.watching.map((w) => w.loop));
    // A watcher that did not get to the marker promises only what it delivered.
    for (const s of this.streams) if (s.end === 'closed' && (s.upToRevision ?? 0) < endRevision) s.end = 'broken';
    // The key space as of the marker: what others write to other keys meanwhile moves nothing.
    const finalCallMs = this.now();
    const final = await this.finalState(until, endRevision);
    const hashes = endRevision > 0 ? await this.hashes(endRevision) : [];
    return {
      format: HISTORY_FORMAT,
      lab: this.opts.lab,
      startedAt: new Date(Date.now() - this.now()).toISOString(),
      traffic: this.traffic.kind,
      prefix: this.opts.prefix,
      keys: [...this.keys, this.endKey],
      startRevision: this.startRevision,
      operations: this.operations,
      watches: this.streams,
      faults,
      final: { revision: endRevision > 0 ? endRevision : final.revision, readAtRevision: final.revision, callMs: finalCallMs, values: final.values },
      ...(hashes.length > 0 ? { hashes } : {}),
    };
  }

  /** Each member's hash of its store at `revision`; a member that does not answer is left out. */
  private async hashes(revision: number): Promise<MemberHash[]> {
    const members = (await this.opts.members?.().catch(() => [])) ?? [];
    const answers = await Promise.all(
      members.map(async (m) => {
        try {
          const h = await hashKv(m.endpoint, revision, 5000);
          return [{ member: m.name, revision: h.revision, compactRevision: h.compactRevision, hash: h.hash }];
        } catch {
          return [];
        }
      }),
    );
    return answers.flat();
  }

  private async finalState(until: number, asOf: number): Promise<{ revision: number; values: History['final']['values'] }> {
    for (;;) {
      try {
        return await kvRange(this.opts.control, this.opts.prefix, 5000, asOf);
      } catch (error) {
        if (Date.now() > until) throw error;
        await sleep(300);
      }
    }
  }
}
