// `etcd-lab dashboard`: one page on the loopback address that shows, as it happens, who leads, the
// members' raft state and lag, where HAProxy sends clients, what a client probing through HAProxy
// felt, and every fault and procedure any etcd-lab command ran on the lab — with buttons for the
// faults, which run the same operations as the CLI under the same lock.
//
// Safe by default: a random token every request carries (in the URL for GETs, in a header for the
// POSTs, which a page of another origin cannot set without CORS, which is never granted), a Host
// check (no DNS rebinding), and TLS labs read with the admin certificate here, never in the page.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { guarded, interruptSignal, sleepUnlessAborted } from '../interrupt.js';
import { silentReporter, type Reporter } from '../progress.js';
import { loadLab, type LoadOptions } from '../config/load.js';
import { parseIpv4 } from '../config/network.js';
import { lockHolder } from '../runtime/lock.js';
import type { Engine } from '../engine/engine.js';
import { getKey } from '../protocol/etcd-http.js';
import { TEMPLATES_DIR } from '../render/templates.js';
import { EventLogReader, eventLogPath, type LabEvent } from '../runtime/event-log.js';
import type { LabRuntime } from '../runtime/lab.js';
import { collectStatus, type LabStatus, type MemberReport } from '../runtime/status.js';
import { ExitCode } from '../exit-codes.js';
import { fault, FAULT_ACTIONS, type FaultAction } from './faults.js';
import { moveLeadership } from './membership.js';
import { withLab } from './session.js';

export interface DashboardOptions extends LoadOptions {
  /** 0 (the default): a free port, the kernel's pick. */
  port?: number;
  /** Where to listen: 127.0.0.1 unless told (anything else warns). */
  bind?: string;
  /** Read a key through HAProxy four times a second and draw what it took. */
  probe?: boolean;
  /** How often the members are read while a page is open. */
  intervalMs?: number;
  engine?: Engine;
  /** Told the page's address (token included) once the server listens. */
  onListening?: (url: string) => void;
  /** Stops the server (besides Ctrl-C and the lab going down). */
  signal?: AbortSignal;
}

export interface DashboardResult {
  url: string;
  /** Why it stopped: "interrupted", "the lab went down", "stopped". */
  stopped: string;
}

/** The buttons: the faults a page may run, and moving the leader. */
export const DASHBOARD_ACTIONS = ['kill', 'stop', 'start', 'pause', 'unpause', 'partition', 'heal', 'leader'] as const;
export type DashboardAction = (typeof DASHBOARD_ACTIONS)[number];

/** A member as the page draws it. */
export interface MemberSample {
  name: string;
  /** leader, follower, learner, no leader, down, paused, cut off, unreachable */
  role: string;
  state: string;
  term?: number;
  index?: number;
  applied?: number;
  /** Raft entries behind the leader (its index less this member's), when a leader is known. */
  lag?: number;
  dbSize?: number;
  dbSizeInUse?: number;
  alarms: string[];
  version?: string;
  /** HAProxy's state of it: UP, DOWN, MAINT … */
  backend: string;
  reason: string;
  impaired?: string;
}

export interface Sample {
  at: number;
  leader?: string;
  term?: number;
  members: MemberSample[];
  haproxy: { state: string; routesTo?: string[]; error?: string };
  quorum: { healthy: number; members: number; held: boolean };
  summary: string;
}

export interface Probe {
  at: number;
  ms: number;
  ok: boolean;
  error?: string;
}

/** How long the page's picture reaches back. */
const KEEP_MS = 15 * 60_000;
const PROBE_EVERY_MS = 250;
/**
 * How long the lab must have no member container, with no command holding its lock, before the
 * server says the lab went down and stops: a snapshot restore or `up` has none for a while, under
 * the lock; `down` ends by releasing it.
 */
const DOWN_AFTER_MS = 3000;

export function roleOf(m: MemberReport, leader: string | undefined): string {
  if (m.state === 'missing' || m.state === 'exited' || m.state === 'dead' || m.state === 'created') return 'down';
  if (m.state === 'paused') return 'paused';
  if (m.partitioned) return 'cut off';
  if (m.raftTerm === undefined) return 'unreachable';
  if (m.learner) return 'learner';
  if (m.name === leader) return 'leader';
  if (!m.leaderId || m.leaderId === '0' || /no leader/i.test(m.reason)) return 'no leader';
  return 'follower';
}

/** One read of the lab, as the page draws it. */
export function sampleOf(status: LabStatus, at = Date.now()): Sample {
  const leader = status.members.find((m) => m.name === status.leader);
  return {
    at,
    ...(status.leader ? { leader: status.leader, term: leader?.raftTerm } : {}),
    members: status.members.map((m) => ({
      name: m.name,
      role: roleOf(m, status.leader),
      state: m.state,
      term: m.raftTerm,
      index: m.raftIndex,
      applied: m.raftAppliedIndex,
      ...(leader?.raftIndex !== undefined && m.raftIndex !== undefined ? { lag: Math.max(0, leader.raftIndex - m.raftIndex) } : {}),
      dbSize: m.dbSize,
      dbSizeInUse: m.dbSizeInUse,
      alarms: m.alarms,
      version: m.version,
      backend: m.backend,
      reason: m.healthy ? '' : m.reason,
      ...(m.impaired ? { impaired: m.impaired } : {}),
    })),
    haproxy: { state: status.haproxy.state, ...(status.haproxy.routesTo ? { routesTo: status.haproxy.routesTo } : {}), ...(status.haproxy.statsError ? { error: status.haproxy.statsError } : {}) },
    quorum: { healthy: status.quorum.healthy, members: status.quorum.members, held: status.quorum.held },
    summary: status.summary,
  };
}

export async function dashboard(opts: DashboardOptions, reporter: Reporter): Promise<DashboardResult> {
  return withLab(opts, {}, reporter, async (runtime) => {
    if ((await runtime.memberContainers()).length === 0) {
      throw new UserError(`lab "${runtime.name}" is not running`, { hint: 'start it with `etcd-lab up`, then run the dashboard', exitCode: ExitCode.nothingDone });
    }
    return new DashboardServer(runtime, opts, reporter).run();
  });
}

class DashboardServer {
  private readonly token = randomBytes(18).toString('base64url');
  private readonly clients = new Set<ServerResponse>();
  private readonly samples: Sample[] = [];
  private readonly events: LabEvent[] = [];
  private readonly probes: Probe[] = [];
  private readonly pendingProbes: Probe[] = [];
  private readonly log: EventLogReader;
  private server?: Server;
  private port = 0;
  private downSince?: number;
  /** Operations started and not yet ended, by id: a process that died without saying is ended here. */
  private readonly open = new Map<string, LabEvent>();
  private stopping?: (why: string) => void;
  private readonly stopped = new AbortController();

  constructor(
    private runtime: LabRuntime,
    private readonly opts: DashboardOptions,
    private readonly reporter: Reporter,
  ) {
    this.log = new EventLogReader(eventLogPath(runtime.lab.outDir));
  }

  private get bind(): string {
    return this.opts.bind ?? '127.0.0.1';
  }

  private get loopback(): boolean {
    return this.bind.startsWith('127.');
  }

  async run(): Promise<DashboardResult> {
    if (parseIpv4(this.bind) === undefined) {
      throw new UserError(`--bind takes an IPv4 address such as 127.0.0.1 (got ${JSON.stringify(this.bind)})`, { exitCode: ExitCode.badInput });
    }
    if (!this.loopback) {
      this.reporter.warn(`--bind ${this.bind}: the dashboard is reachable from other machines; anyone with its URL (token included) can kill the lab's members`);
    }
    // Whatever stops it, from the start on: a stop asked while it was still starting is not missed.
    let why: string | undefined;
    const stopped = new Promise<string>((resolve) =>
      (this.stopping = (w) => {
        why ??= w;
        this.stopped.abort();
        resolve(why);
      }),
    );
    const onInterrupt = () => this.stopping!('interrupted');
    const onAbort = () => this.stopping!('stopped');
    interruptSignal().addEventListener('abort', onInterrupt);
    this.opts.signal?.addEventListener('abort', onAbort);
    if (this.opts.signal?.aborted) onAbort();
    try {
      // Ctrl-C stops the server (pages told, --json's last line written) rather than the process outright.
      return await guarded({ undoing: 'stopping the dashboard' }, () => this.serve(stopped));
    } finally {
      interruptSignal().removeEventListener('abort', onInterrupt);
      this.opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async serve(stopped: Promise<string>): Promise<DashboardResult> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'EADDRINUSE'
            ? new UserError(`port ${this.opts.port} on ${this.bind} is in use`, { hint: 'choose another --port, or leave it out for a free one', exitCode: ExitCode.refused })
            : error,
        ),
      );
      this.server!.listen(this.opts.port ?? 0, this.bind, resolve);
    });
    this.port = (this.server.address() as { port: number }).port;
    const url = `http://${this.bind === '0.0.0.0' ? '127.0.0.1' : this.bind}:${this.port}/?token=${this.token}`;
    this.opts.onListening?.(url);
    // The events so far: the picture starts with what happened before it was opened.
    this.events.push(...(await this.log.read()).filter((e) => e.at > Date.now() - KEEP_MS));

    const ticker = this.tickLoop();
    const prober = this.opts.probe ? this.probeLoop() : Promise.resolve();
    const why = await stopped;
    for (const res of this.clients) res.end(`event: bye\ndata: ${JSON.stringify({ why })}\n\n`);
    this.clients.clear();
    await new Promise<void>((resolve) => {
      this.server!.close(() => resolve());
      this.server!.closeAllConnections();
    });
    await Promise.all([ticker, prober]);
    return { url, stopped: why };
  }

  private get done(): boolean {
    return !this.server?.listening;
  }

  /** A read of the members while a page is open; without one only whether the lab still exists (Docker, not etcd). */
  private async tickLoop(): Promise<void> {
    const every = this.opts.intervalMs ?? 1000;
    while (!this.done) {
      const started = Date.now();
      try {
        await this.tick();
      } catch (error) {
        this.reporter.warn(`dashboard: ${(error as Error).message}`);
      }
      await this.pause(Math.max(50, every - (Date.now() - started)));
    }
  }

  private async tick(): Promise<void> {
    const members = await this.runtime.memberContainers();
    const gone = members.length === 0 && lockHolder(this.runtime.name) === undefined;
    this.downSince = gone ? (this.downSince ?? Date.now()) : undefined;
    if (this.downSince !== undefined && Date.now() - this.downSince >= DOWN_AFTER_MS) {
      this.stopping?.('the lab went down');
      return;
    }
    const events = [...(await this.log.read()), ...this.endedUnsaid()];
    // A scale changes which members there are: the lab's spec is read again.
    if (events.some((e) => e.op === 'scale' && e.phase === 'end' && e.ok)) this.runtime = this.runtime.on(loadLab(this.opts));
    const probes = this.pendingProbes.splice(0);
    // The members are read only for a page that shows them: a dashboard nobody looks at costs the lab nothing.
    const sample = this.clients.size > 0 ? sampleOf(await collectStatus(this.runtime, 800)) : undefined;
    this.keep(sample, events, probes);
    if (this.clients.size > 0) this.broadcast('tick', { sample, events, probes });
  }

  /** Keeps what the page would show if it were opened now: the last KEEP_MS of everything. */
  private keep(sample: Sample | undefined, events: LabEvent[], probes: Probe[]): void {
    const since = Date.now() - KEEP_MS;
    for (const e of events) {
      if (e.phase === 'start') this.open.set(e.id, e);
      else if (e.phase === 'end') this.open.delete(e.id);
    }
    if (sample) this.samples.push(sample);
    this.events.push(...events);
    this.probes.push(...probes);
    for (const list of [this.samples, this.events, this.probes] as { at: number }[][]) {
      const drop = list.findIndex((x) => x.at >= since);
      list.splice(0, drop < 0 ? list.length : drop);
    }
  }

  /** Waits, or less when the server stops meanwhile. */
  private async pause(ms: number): Promise<void> {
    await sleepUnlessAborted(ms, this.stopped.signal);
  }

  /** Ends, for the page, the operations whose process died without writing their end (killed outright). */
  private endedUnsaid(): LabEvent[] {
    const ended: LabEvent[] = [];
    for (const [id, start] of this.open) {
      if (Date.now() - start.at < 2000 || processAlive(start.pid)) continue;
      this.open.delete(id);
      ended.push({ at: Date.now(), id, phase: 'end', op: start.op, ok: false, error: `its process (pid ${start.pid}) ended without saying how it went`, pid: start.pid });
    }
    return ended;
  }

  /** A linearizable read through HAProxy, as a client of the lab would make it, while a page is open to draw it. */
  private async probeLoop(): Promise<void> {
    const endpoint = this.runtime.endpoint(this.runtime.clientEndpoint);
    while (!this.done) {
      const at = Date.now();
      if (this.clients.size === 0) {
        await this.pause(PROBE_EVERY_MS);
        continue;
      }
      try {
        await getKey(endpoint, 'etcd-lab/dashboard-probe', { timeoutMs: 2000 });
        this.pendingProbes.push({ at, ms: Date.now() - at, ok: true });
      } catch (error) {
        this.pendingProbes.push({ at, ms: Date.now() - at, ok: false, error: String((error as Error).message).split('\n')[0]!.slice(0, 120) });
      }
      await this.pause(Math.max(0, PROBE_EVERY_MS - (Date.now() - at)));
    }
  }

  private broadcast(event: string, data: unknown): void {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of this.clients) res.write(text);
  }

  private hasToken(given: string | null | undefined): boolean {
    if (!given) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /**
   * On loopback, only this server's own names: a page of another site whose name its DNS points at
   * 127.0.0.1 is refused. Bound elsewhere (--bind, warned about), other machines dial it by names
   * it cannot know, and the token is what keeps them out.
   */
  private hostAllowed(host: string | undefined): boolean {
    if (!this.loopback) return true;
    return [`127.0.0.1:${this.port}`, `localhost:${this.port}`, `${this.bind}:${this.port}`].includes(host ?? '');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // The token is in the page's URL: no Referer may carry it anywhere.
    res.setHeader('Referrer-Policy', 'no-referrer');
    if (!this.hostAllowed(req.headers.host)) return reply(res, 403, { ok: false, error: 'unknown Host' });
    try {
      if (req.method === 'GET') {
        if (!this.hasToken(url.searchParams.get('token'))) return reply(res, 403, { ok: false, error: 'the URL lacks the token `etcd-lab dashboard` printed' });
        if (url.pathname === '/') return this.page(res);
        if (url.pathname === '/dashboard.js' || url.pathname === '/dashboard.css') return asset(res, url.pathname.slice(1));
        if (url.pathname === '/events') return this.subscribe(req, res);
        if (url.pathname === '/api/state') return reply(res, 200, this.picture());
        return reply(res, 404, { ok: false, error: 'not found' });
      }
      if (req.method === 'POST' && url.pathname === '/api/action') {
        const header = req.headers['x-etcd-lab-token'];
        if (!this.hasToken(Array.isArray(header) ? header[0] : header)) return reply(res, 403, { ok: false, error: 'the request lacks the X-Etcd-Lab-Token header' });
        if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return reply(res, 415, { ok: false, error: 'send JSON' });
        return this.act(await readJson(req), res);
      }
      return reply(res, 405, { ok: false, error: `${req.method} is not allowed here` });
    } catch (error) {
      if (!res.headersSent) reply(res, 500, { ok: false, error: (error as Error).message });
      else res.end();
    }
  }

  private page(res: ServerResponse): void {
    const html = readFileSync(join(TEMPLATES_DIR, 'dashboard', 'index.html'), 'utf8')
      .replaceAll('{{token}}', this.token)
      .replaceAll('{{lab}}', escapeHtml(this.runtime.name));
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    });
    res.end(html);
  }

  /** Everything the page shows, as it stands. */
  private picture() {
    return {
      lab: this.runtime.name,
      clientEndpoint: this.runtime.clientEndpoint,
      statsUrl: this.runtime.statsUrl,
      tls: this.runtime.lab.spec.tls.enabled,
      probe: Boolean(this.opts.probe),
      intervalMs: this.opts.intervalMs ?? 1000,
      keepMs: KEEP_MS,
      actions: DASHBOARD_ACTIONS,
      samples: this.samples,
      events: this.events,
      probes: this.probes,
    };
  }

  private subscribe(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
    res.write(`event: hello\ndata: ${JSON.stringify(this.picture())}\n\n`);
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
  }

  /** A button: the same operation as the CLI's, under the lab's lock, refused at once while another command holds it. */
  private async act(body: unknown, res: ServerResponse): Promise<void> {
    const { action, member } = (body ?? {}) as { action?: string; member?: string };
    if (!DASHBOARD_ACTIONS.includes(action as DashboardAction)) return reply(res, 400, { ok: false, error: `unknown action ${JSON.stringify(action)}`, hint: `one of ${DASHBOARD_ACTIONS.join(', ')}` });
    const names = this.runtime.topology.members.map((m) => m.name);
    if (typeof member !== 'string' || !(member === 'leader' || names.includes(member))) {
      return reply(res, 400, { ok: false, error: `unknown member ${JSON.stringify(member)}`, hint: `one of ${[...names, 'leader'].join(', ')}` });
    }
    const load = { ...this.opts, lockWaitMs: 0 };
    try {
      if (action === 'leader') {
        const result = await moveLeadership({ ...load, member }, silentReporter);
        return reply(res, 200, { ok: true, message: result.before === result.leader ? `${result.leader} leads already` : `leadership moved from ${result.before} to ${result.leader} (term ${result.term})` });
      }
      if (!(FAULT_ACTIONS as readonly string[]).includes(action!)) return reply(res, 400, { ok: false, error: `unknown action ${action}` });
      const result = await fault({ ...load, action: action as FaultAction, members: [member] }, silentReporter);
      return reply(res, 200, { ok: true, message: result.done.join('; '), state: result.state });
    } catch (error) {
      const e = error as UserError;
      return reply(res, e.exitCode === ExitCode.refused ? 409 : e instanceof UserError ? 400 : 500, { ok: false, error: e.message, ...(e.hint ? { hint: e.hint } : {}) });
    }
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

function asset(res: ServerResponse, name: string): void {
  const body = readFileSync(join(TEMPLATES_DIR, 'dashboard', name));
  res.writeHead(200, { 'Content-Type': name.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8' });
  res.end(body);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > 10_000) throw new UserError('request too large');
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
