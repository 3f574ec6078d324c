// A Kubernetes-shaped client on the lab's API server, the way controllers use it: creates, updates
// with a resourceVersion precondition, deletes with one, and a watch that resumes from the last
// resourceVersion it saw and re-lists when told 410 Gone. What it acknowledged is checked at the
// end: every acknowledged write is there with its value, and the watch saw every change in order
// (or was told to re-list). Through the API server only, with no retry: what an API client sees.
import { fetchWithDeadline, type Endpoint } from '../protocol/etcd-http.js';
import { streamLines, type LineStream } from '../protocol/http-stream.js';

export interface KubeResource {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespace: string;
}

/** The test CRD's resource: lab.example.com/v1 widgets, with spec.size. */
export const WIDGETS: KubeResource = { group: 'lab.example.com', version: 'v1', plural: 'widgets', kind: 'Widget', namespace: 'default' };

/** The CustomResourceDefinition that serves WIDGETS. */
export const WIDGETS_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${WIDGETS.plural}.${WIDGETS.group}` },
  spec: {
    group: WIDGETS.group,
    scope: 'Namespaced',
    names: { plural: WIDGETS.plural, singular: 'widget', kind: WIDGETS.kind },
    versions: [{ name: WIDGETS.version, served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } } } } }],
  },
};

interface KubeObject {
  metadata: { name: string; resourceVersion: string };
  spec?: { size?: number };
}

/** What the client knows of one object: certain, or one of several after a call whose outcome it could not see. */
type Known = { present: false } | { present: true; size: number; rv: string };

export interface KubeWorkloadOptions {
  api: Endpoint;
  resource?: KubeResource;
  /** Objects named `${prefix}0` … */
  prefix: string;
  objects: number;
  callTimeoutMs: number;
  pauseMs: number;
}

export interface KubeWorkloadResult {
  acknowledged: number;
  /** Calls whose outcome the client could not see (timeouts, 5xx): resolved by reading back. */
  unknown: number;
  /** The longest time between two acknowledged writes. */
  longestGapMs: number;
  relists: number;
  watchEvents: number;
  violations: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sizeOf = (o: KubeObject) => o.spec?.size ?? -1;
const show = (k: Known) => (k.present ? `size ${k.size}` : 'absent');

export class KubeWorkload {
  private readonly resource: KubeResource;
  private readonly known = new Map<string, Known[]>();
  private readonly violations: string[] = [];
  private stopping = false;
  private loop?: Promise<void>;
  private next = 1;
  private acknowledged = 0;
  private unknown = 0;
  private lastAck = 0;
  private longestGapMs = 0;
  /** resourceVersions of acknowledged creates and updates: the watch must deliver each. */
  private readonly ackedRvs: number[] = [];
  private readonly watch = {
    relists: 0,
    events: 0,
    rv: '',
    seen: new Set<number>(),
    /** resourceVersions a re-list jumped over (after 410 Gone): changes there were never owed to the watch. */
    skipped: [] as [number, number][],
    state: new Map<string, number>(),
    stream: undefined as LineStream | undefined,
    closed: false,
    loop: undefined as Promise<void> | undefined,
  };

  constructor(private readonly opts: KubeWorkloadOptions) {
    this.resource = opts.resource ?? WIDGETS;
    for (let i = 0; i < opts.objects; i++) this.known.set(`${opts.prefix}${i}`, [{ present: false }]);
  }

  private get collection(): string {
    const r = this.resource;
    return `/apis/${r.group}/${r.version}/namespaces/${r.namespace}/${r.plural}`;
  }

  private async call(method: string, path: string, body?: unknown): Promise<{ status: number; object?: KubeObject & { items?: KubeObject[] } }> {
    const response = await fetchWithDeadline(
      this.opts.api,
      { method, body: body === undefined ? undefined : JSON.stringify(body), headers: body === undefined ? {} : { 'content-type': 'application/json' }, once: method !== 'GET' },
      this.opts.callTimeoutMs,
      path,
    );
    let object: (KubeObject & { items?: KubeObject[] }) | undefined;
    try {
      object = JSON.parse(response.text) as KubeObject & { items?: KubeObject[] };
    } catch {
      object = undefined;
    }
    return { status: response.status, object };
  }

  async start(): Promise<this> {
    // Nothing of an earlier run under the prefix: the model starts from "absent".
    const listed = await this.call('GET', this.collection);
    for (const item of listed.object?.items ?? []) if (item.metadata.name.startsWith(this.opts.prefix)) await this.call('DELETE', `${this.collection}/${item.metadata.name}`);
    await this.relist();
    this.watch.loop = this.follow();
    this.lastAck = performance.now();
    this.loop = this.write();
    return this;
  }

  /** Stops writing, waits until the watch has caught up with the final list, and checks everything. */
  async stop(): Promise<KubeWorkloadResult> {
    this.stopping = true;
    // The window ends now: a write still hanging here is a gap too, acknowledged later or never.
    const windowEnd = performance.now();
    await this.loop;
    this.longestGapMs = Math.max(this.longestGapMs, windowEnd - this.lastAck);
    await this.settleUnknown();
    const marker = await this.writeMarker();
    const final = await this.listUntilAnswered();
    this.checkFinal(final);
    // A list taken after the marker's create was acknowledged must hold it. If it does not, the
    // create was lost and no watch will ever deliver it: say so now instead of waiting for it.
    if (final.items.some((o) => o.metadata.name === marker.name)) await this.watchCatchesUp(marker.rv, final);
    else this.violations.push(`${marker.name}: the end marker's create was acknowledged at resourceVersion ${marker.rv}, but a later list does not have it`);
    this.watch.closed = true;
    this.watch.stream?.close();
    await this.watch.loop;
    return { acknowledged: this.acknowledged, unknown: this.unknown, longestGapMs: Math.round(this.longestGapMs), relists: this.watch.relists, watchEvents: this.watch.events, violations: this.violations };
  }

  private ack(): void {
    const now = performance.now();
    this.longestGapMs = Math.max(this.longestGapMs, now - this.lastAck);
    this.lastAck = now;
    this.acknowledged += 1;
  }

  private async write(): Promise<void> {
    const names = [...this.known.keys()];
    while (!this.stopping) {
      const name = names[Math.floor(Math.random() * names.length)]!;
      const possible = this.known.get(name)!;
      if (possible.length > 1) await this.readBack(name);
      else await this.change(name, possible[0]!);
      await sleep(this.opts.pauseMs);
    }
  }

  private async change(name: string, before: Known): Promise<void> {
    const size = this.next++;
    const r = this.resource;
    const path = `${this.collection}/${name}`;
    let attempt: { method: string; path: string; body?: unknown; after: Known | 'from-answer'; ok: number[] };
    if (!before.present) {
      attempt = { method: 'POST', path: this.collection, body: { apiVersion: `${r.group}/${r.version}`, kind: r.kind, metadata: { name }, spec: { size } }, after: 'from-answer', ok: [201] };
    } else if (Math.random() < 0.75) {
      attempt = { method: 'PUT', path, body: { apiVersion: `${r.group}/${r.version}`, kind: r.kind, metadata: { name, resourceVersion: before.rv }, spec: { size } }, after: 'from-answer', ok: [200] };
    } else {
      attempt = { method: 'DELETE', path, body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: before.rv } }, after: { present: false }, ok: [200, 202] };
    }
    const attempted: Known = attempt.method === 'DELETE' ? { present: false } : { present: true, size, rv: '' };
    try {
      const answer = await this.call(attempt.method, attempt.path, attempt.body);
      if (attempt.ok.includes(answer.status)) {
        this.ack();
        const rv = answer.object!.metadata.resourceVersion;
        if (attempt.after === 'from-answer') this.ackedRvs.push(Number(rv));
        this.known.set(name, [attempt.after === 'from-answer' ? { present: true, size, rv } : attempt.after]);
        return;
      }
      if (answer.status === 409 || answer.status === 404) {
        // The client's knowledge was certain: a conflict means an acknowledged write is not what the server has.
        this.violations.push(`${attempt.method} ${name} expecting ${show(before)}: HTTP ${answer.status} (${(answer.object as { message?: string } | undefined)?.message ?? ''})`);
        await this.readBack(name, true);
        return;
      }
      if (answer.status >= 400 && answer.status < 500 && answer.status !== 429) {
        // Refused as it was sent (invalid, forbidden): nothing was written, and the client is at fault.
        this.violations.push(`${attempt.method} ${name}: HTTP ${answer.status}, the request itself was refused (${(answer.object as { message?: string } | undefined)?.message ?? ''})`);
        return;
      }
      // 5xx, 429: the server may have committed it or not.
      this.unknown += 1;
      this.known.set(name, [before, attempted]);
    } catch {
      this.unknown += 1;
      this.known.set(name, [before, attempted]);
    }
  }

  /** Reads `name` back: what it finds must be one of what the client could expect. */
  private async readBack(name: string, anything = false): Promise<boolean> {
    try {
      const answer = await this.call('GET', `${this.collection}/${name}`);
      if (answer.status !== 200 && answer.status !== 404) return false;
      const found: Known = answer.status === 404 ? { present: false } : { present: true, size: sizeOf(answer.object!), rv: answer.object!.metadata.resourceVersion };
      const possible = this.known.get(name)!;
      const matches = possible.some((p) => p.present === found.present && (!p.present || !found.present || p.size === found.size));
      if (!matches && !anything) this.violations.push(`${name}: read ${show(found)}, expected ${possible.map(show).join(' or ')}`);
      this.known.set(name, [found]);
      return true;
    } catch {
      return false;
    }
  }

  private async settleUnknown(): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (const [name, possible] of this.known) {
      while (possible.length > 1 && this.known.get(name)!.length > 1 && Date.now() < deadline) if (!(await this.readBack(name))) await sleep(200);
    }
  }

  private async listUntilAnswered(): Promise<{ rv: string; items: KubeObject[] }> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const answer = await this.call('GET', this.collection).catch(() => undefined);
      if (answer?.status === 200) return { rv: answer.object!.metadata.resourceVersion, items: answer.object!.items ?? [] };
      if (Date.now() > deadline) throw new Error(`the API server did not list ${this.resource.plural} within 60 s after the workload (last: ${answer ? `HTTP ${answer.status}` : 'no answer'})`);
      await sleep(200);
    }
  }

  private checkFinal(final: { items: KubeObject[] }): void {
    const have = new Map(final.items.map((o) => [o.metadata.name, sizeOf(o)]));
    for (const [name, [known]] of this.known) {
      if (!known) continue;
      const found = have.get(name);
      if (known.present && found !== known.size) this.violations.push(`${name}: acknowledged size ${known.size}, the API server has ${found === undefined ? 'nothing' : `size ${found}`}`);
      if (!known.present && found !== undefined) this.violations.push(`${name}: acknowledged as deleted, the API server has size ${found}`);
    }
  }

  private async relist(): Promise<void> {
    const list = await this.listUntilAnswered();
    this.watch.rv = list.rv;
    this.watch.state = new Map(list.items.map((o) => [o.metadata.name, sizeOf(o)]));
  }

  /** Follows the collection: resumes from the last resourceVersion on a break; re-lists on 410 Gone. */
  private async follow(): Promise<void> {
    while (!this.watch.closed) {
      let gone = false;
      let lastRv = Number(this.watch.rv);
      const stream = streamLines(this.opts.api, { method: 'GET', path: `${this.collection}?watch=1&allowWatchBookmarks=true&resourceVersion=${this.watch.rv}` }, (line) => {
        let event: { type: string; object: KubeObject & { code?: number } };
        try {
          event = JSON.parse(line) as typeof event;
        } catch {
          return stream.fail(`watch: not a JSON event: ${line.slice(0, 80)}`);
        }
        if (event.type === 'ERROR') {
          gone = event.object.code === 410;
          return stream.fail(`watch error ${event.object.code}`);
        }
        const rv = Number(event.object.metadata.resourceVersion);
        if (event.type !== 'BOOKMARK') {
          if (rv <= lastRv) this.violations.push(`watch: ${event.type} ${event.object.metadata.name} at resourceVersion ${rv} after ${lastRv} (out of order)`);
          this.watch.events += 1;
          this.watch.seen.add(rv);
          if (event.type === 'DELETED') this.watch.state.delete(event.object.metadata.name);
          else this.watch.state.set(event.object.metadata.name, sizeOf(event.object));
        }
        lastRv = Math.max(lastRv, rv);
        this.watch.rv = String(lastRv);
      });
      this.watch.stream = stream;
      const end = await stream.ended;
      if (end.end === 'closed' || this.watch.closed) return;
      if (gone || end.status === 410) {
        const from = Number(this.watch.rv);
        this.watch.relists += 1;
        await this.relist().catch(() => {});
        this.watch.skipped.push([from, Number(this.watch.rv)]);
      }
      await sleep(100);
    }
  }

  /** After the workload, one more create the watch must deliver: then it has seen everything before it. */
  private async writeMarker(): Promise<{ name: string; rv: number }> {
    const r = this.resource;
    const name = `${this.opts.prefix}end`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const answer = await this.call('POST', this.collection, { apiVersion: `${r.group}/${r.version}`, kind: r.kind, metadata: { name }, spec: { size: 0 } }).catch(() => undefined);
      // 409: an earlier try committed although its answer was lost.
      const found = answer?.status === 409 ? await this.call('GET', `${this.collection}/${name}`).catch(() => undefined) : answer;
      if (found && (found.status === 201 || found.status === 200)) return { name, rv: Number(found.object!.metadata.resourceVersion) };
      if (Date.now() > deadline) throw new Error(`the API server did not take the workload's end marker within 60 s (last: ${answer ? `HTTP ${answer.status}` : 'no answer'})`);
      await sleep(200);
    }
  }

  private async watchCatchesUp(markerRv: number, final: { items: KubeObject[] }): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Number(this.watch.rv) < markerRv && Date.now() < deadline) await sleep(100);
    if (Number(this.watch.rv) < markerRv) {
      this.violations.push(`watch: still at resourceVersion ${this.watch.rv} 30 s after the end marker at ${markerRv}`);
      return;
    }
    const excused = (rv: number) => this.watch.skipped.some(([from, to]) => rv > from && rv <= to);
    const missed = this.ackedRvs.filter((rv) => !this.watch.seen.has(rv) && !excused(rv));
    if (missed.length > 0) this.violations.push(`watch: ${missed.length} acknowledged writes never delivered (resourceVersions ${missed.slice(0, 10).join(', ')}${missed.length > 10 ? ', …' : ''}), without a 410 Gone`);
    // Its own objects only: other clients may change others in the same collection meanwhile.
    const own = (name: string) => this.known.has(name);
    const listed = new Map(final.items.filter((o) => own(o.metadata.name)).map((o) => [o.metadata.name, sizeOf(o)]));
    for (const name of new Set([...listed.keys(), ...[...this.watch.state.keys()].filter(own)])) {
      if (listed.get(name) !== this.watch.state.get(name)) this.violations.push(`watch: ${name} is ${this.watch.state.get(name) ?? 'absent'} by the watch, ${listed.get(name) ?? 'absent'} by the list`);
    }
  }
}
