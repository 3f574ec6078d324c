// Hand-made histories for the checker's tests: a tiny linearizable store that applies each
// operation at a moment the test chooses (between its call and return), answers as etcd would, and
// records the watch events. A test then tampers with what it recorded to make each kind of violation.
import { HISTORY_FORMAT, type History, type Operation, type Request, type Response, type WatchEvent, type WatchStream } from '../../src/checker/history.js';

export class HistoryBuilder {
  revision = 100;
  private readonly store = new Map<string, { value: string; modRevision: number }>();
  readonly operations: Operation[] = [];
  readonly events: WatchEvent[] = [];
  private batch = 0;

  constructor(readonly keys: string[] = ['k0', 'k1', 'k2']) {}

  /**
   * Runs `request` by `client` from `callMs` to `returnMs`, taking effect at `atMs` (by default
   * between the two). Operations must be added in the order they take effect.
   */
  run(client: number, request: Request, callMs: number, returnMs: number, opts: { outcome?: 'ok' | 'unknown' | 'failed'; applied?: boolean; via?: string } = {}): Operation {
    const outcome = opts.outcome ?? 'ok';
    const applied = opts.applied ?? outcome !== 'failed';
    const response = applied ? this.apply(request) : undefined;
    const op: Operation = {
      id: this.operations.length + 1,
      client,
      via: opts.via ?? 'haproxy',
      request,
      callMs,
      returnMs,
      outcome,
      ...(outcome === 'ok' && response ? { response } : {}),
      ...(outcome !== 'ok' ? { error: outcome === 'failed' ? 'connection refused' : 'deadline exceeded' } : {}),
    };
    this.operations.push(op);
    return op;
  }

  private commit(changes: { key: string; value?: string }[]): number {
    this.revision += 1;
    this.batch += 1;
    for (const c of changes) {
      if (c.value === undefined) {
        this.store.delete(c.key);
        this.events.push({ revision: this.revision, key: c.key, type: 'delete', modRevision: this.revision, batch: this.batch });
      } else {
        this.store.set(c.key, { value: c.value, modRevision: this.revision });
        this.events.push({ revision: this.revision, key: c.key, type: 'put', value: c.value, modRevision: this.revision, batch: this.batch });
      }
    }
    return this.revision;
  }

  private apply(r: Request): Response {
    switch (r.op) {
      case 'get': {
        const held = this.store.get(r.key);
        return { op: 'get', revision: this.revision, ...(held ? { value: held.value, modRevision: held.modRevision } : {}) };
      }
      case 'put':
        return { op: 'put', revision: this.commit([{ key: r.key, value: r.value }]) };
      case 'delete':
        if (!this.store.has(r.key)) return { op: 'delete', revision: this.revision, deleted: 0 };
        return { op: 'delete', revision: this.commit([{ key: r.key }]), deleted: 1 };
      case 'cas': {
        const mod = this.store.get(r.key)?.modRevision ?? 0;
        if (mod !== r.modRevision) return { op: 'cas', revision: this.revision, succeeded: false };
        return { op: 'cas', revision: this.commit([{ key: r.key, value: r.value }]), succeeded: true };
      }
      case 'txn': {
        // Compares on mod_revision only: what the tests send.
        const succeeded = (r.compare ?? []).every((c) => (this.store.get(c.key)?.modRevision ?? 0) === c.equals);
        const branch = succeeded ? r.success : (r.failure ?? []);
        const changes = branch.flatMap((o) => (o.op === 'put' ? [{ key: o.key, value: o.value }] : o.op === 'delete' && this.store.has(o.key) ? [{ key: o.key }] : []));
        return { op: 'txn', revision: changes.length > 0 ? this.commit(changes) : this.revision, succeeded };
      }
      default:
        throw new Error(`the history builder does not model ${r.op}`);
    }
  }

  /** A watch stream from the start that delivered everything, one response per revision. */
  stream(id = 1, events: WatchEvent[] = this.events): WatchStream {
    return { id, watcher: id, via: 'haproxy', fromRevision: 101, startMs: 0, endMs: 10_000, events: events.map((e) => ({ ...e })), end: 'closed', upToRevision: this.revision };
  }

  history(watches: WatchStream[] = [this.stream(1), this.stream(2)]): History {
    return {
      format: HISTORY_FORMAT,
      lab: 'test',
      startedAt: '2026-11-30T00:00:00Z',
      keys: this.keys,
      startRevision: 100,
      operations: this.operations,
      watches,
      faults: [],
      final: { revision: this.revision, values: Object.fromEntries(this.store) },
    };
  }
}
