// A bounded write workload: one sequential writer, each key written once, every call with a
// deadline and no client-side breaker, so the history shows exactly what the cluster did.
import { putKey, type Endpoint } from './etcd-http.js';
import { classifyWriteError, type WriteOp } from './history.js';

export interface WorkloadOptions {
  endpoint: Endpoint;
  prefix: string;
  /** Deadline of each put. */
  callTimeoutMs: number;
  /** Pause between writes, bounding the rate. */
  pauseMs: number;
  /** Hard bounds: the writer stops at whichever comes first. */
  maxWrites: number;
  maxDurationMs: number;
}

export class Writer {
  readonly history: WriteOp[] = [];
  private stopped = false;
  private running: Promise<void> | undefined;
  readonly origin = Date.now();

  constructor(private readonly opts: WorkloadOptions) {}

  start(): this {
    this.running = this.loop();
    return this;
  }

  async stop(): Promise<WriteOp[]> {
    this.stopped = true;
    await this.running;
    return this.history;
  }

  private async loop(): Promise<void> {
    const { endpoint, prefix, callTimeoutMs, pauseMs, maxWrites, maxDurationMs } = this.opts;
    const width = String(maxWrites).length;
    for (let i = 0; !this.stopped && i < maxWrites && Date.now() - this.origin < maxDurationMs; i++) {
      const key = `${prefix}${String(i).padStart(width, '0')}`;
      const value = `w${i}@${Date.now()}`;
      const startMs = Date.now() - this.origin;
      try {
        const { revision } = await putKey(endpoint, key, value, callTimeoutMs);
        this.history.push({ key, value, startMs, endMs: Date.now() - this.origin, outcome: 'ok', revision });
      } catch (error) {
        const { outcome, reason } = classifyWriteError(error);
        this.history.push({ key, value, startMs, endMs: Date.now() - this.origin, outcome, error: reason });
      }
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  }
}
