// An etcd cluster in memory, for the operations' error paths without Docker: each member an HTTP
// server on 127.0.0.1 that answers etcd's v3 JSON gateway (status, health, membership, a small
// key-value store, leadership transfer, version) while the fake engine says its container runs, and
// an HAProxy front (client port and stats page) that sends clients to the leader. A scenario makes
// one call refuse (`refuse`), or a member never serve after it starts (`neverServes`).
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { configHashOf, CONFIG_HASH_HEADER, leadingServerName } from '../../src/render/haproxy.js';
import type { FakeEngine } from './fake-engine.js';

interface FakeMember {
  id: string;
  name: string;
  peerUrl: string;
  learner: boolean;
  /** Its raft index: a member that started catches up at once unless told otherwise. */
  raftIndex: number;
  version: string;
}

type Raw = Record<string, unknown>;
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

export class FakeCluster {
  /** etcd's membership, by member id. */
  readonly members = new Map<string, FakeMember>();
  leader?: string;
  term = 2;
  revision = 1;
  readonly kv = new Map<string, { value: string; modRevision: number; createRevision: number; version: number }>();
  clusterVersion = '3.5.0';
  /** Calls etcd refuses, by path ("/v3/cluster/member/promote"): the error text it answers. */
  readonly refuse = new Map<string, string>();
  /** Members whose server never answers although their container runs (a member that cannot start). */
  readonly neverServes = new Set<string>();
  /** Members that never serve once recreated on this image (a new version that cannot read their data). */
  neverServesOn?: { image: string; members: Set<string> };
  /** The etcd version a member runs, by its container's image (the default otherwise). */
  readonly versionOn = new Map<string, string>();
  /** Every membership call, in order: "member add http://…", "member remove etcd4". */
  readonly calls: string[] = [];
  private readonly servers: http.Server[] = [];
  private readonly ports = new Map<string, number>();
  private nextId = 1001;

  constructor(
    private readonly engine: FakeEngine,
    private readonly peerUrlOf: (name: string) => string,
    private readonly version = '3.5.16',
  ) {}

  /** `names` as a bootstrapped cluster, `names[0]` leading; servers for them and for `spare` more. */
  async start(names: string[], spare: string[] = []): Promise<void> {
    for (const name of names) this.addMember(name, this.peerUrlOf(name), false);
    this.leader = this.idOf(names[0]!);
    for (const name of [...names, ...spare]) this.ports.set(name, await this.listen((req, res) => this.member(name, req, res)));
    this.engine.memberPort = (member) => this.ports.get(member);
  }

  /** HAProxy: the client port sends requests to the leader; the stats page says every running member is UP, and which haproxy.cfg it runs. */
  async haproxy(configFile: string): Promise<{ clientPort: number; statsPort: number }> {
    // Ports the kernel picks as it binds them: a port found free first and bound later may be taken meanwhile.
    const clientPort = await this.listen((req, res) => {
      const leader = [...this.members.values()].find((m) => m.id === this.leader);
      if (!leader || !this.serving(leader.name)) return void res.writeHead(503).end('{"error":"no server available"}');
      this.member(leader.name, req, res);
    });
    const statsPort = await this.listen((_req, res) => {
      const rows = ['# pxname,svname,status,check_status'];
      for (const m of this.members.values()) {
        if (!m.name) continue;
        const up = this.serving(m.name) ? 'UP' : 'DOWN';
        rows.push(`etcd_members,${m.name},${up},L7OK`, `etcd_members,${leadingServerName(m.name)},${m.id === this.leader && up === 'UP' ? 'UP' : 'DOWN'},L7OK`);
      }
      // It runs the file as it is now: a reload is never waited for.
      res.writeHead(200, { 'content-type': 'text/plain', [CONFIG_HASH_HEADER]: configHashOf(readFileSync(configFile, 'utf8')) }).end(`${rows.join('\n')}\n`);
    });
    return { clientPort, statsPort };
  }

  async close(): Promise<void> {
    for (const s of this.servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  }

  idOf(name: string): string {
    return [...this.members.values()].find((m) => m.name === name)?.id ?? '';
  }

  private addMember(name: string, peerUrl: string, learner: boolean): FakeMember {
    const m = { id: String(this.nextId++), name, peerUrl, learner, raftIndex: 100, version: this.version };
    this.members.set(m.id, m);
    return m;
  }

  private listen(handler: http.RequestListener): Promise<number> {
    const server = http.createServer(handler);
    this.servers.push(server);
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  }

  /** Its container runs (the fake engine says so), it is in the membership, and the scenario lets it serve. */
  private containerOf(name: string) {
    return [...this.engine.containersById.values()].find((c) => c.labels['io.etcd-lab.member'] === name && c.labels['io.etcd-lab.role'] === 'etcd');
  }

  private serving(name: string): boolean {
    const container = this.containerOf(name);
    const member = [...this.members.values()].find((m) => m.name === name || (m.name === '' && m.peerUrl === this.peerUrlOf(name)));
    const broken = this.neverServesOn?.image === container?.image && this.neverServesOn!.members.has(name);
    return container?.state === 'running' && member !== undefined && !this.neverServes.has(name) && !broken;
  }

  private member(name: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    if (!this.serving(name)) return void req.socket.destroy();
    // A started member publishes its name (a learner added by peer URL has none until then).
    const self = [...this.members.values()].find((m) => m.name === name || m.peerUrl === this.peerUrlOf(name))!;
    self.name = name;
    self.version = this.versionOn.get(this.containerOf(name)!.image) ?? this.version;
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0]!;
      const refused = this.refuse.get(path);
      if (refused) return void res.writeHead(400).end(JSON.stringify({ error: refused, code: 9 }));
      try {
        const answer = this.answer(self, path, body ? (JSON.parse(body) as Raw) : {});
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      } catch (error) {
        res.writeHead(400).end(JSON.stringify({ error: (error as Error).message, code: 9 }));
      }
    });
  }

  private header(self: FakeMember) {
    return { cluster_id: '42', member_id: self.id, revision: String(this.revision), raft_term: String(this.term) };
  }

  private raw(m: FakeMember) {
    return { ID: m.id, name: m.name, peerURLs: [m.peerUrl], clientURLs: m.name ? [`http://${m.name}:2379`] : [], ...(m.learner ? { isLearner: true } : {}) };
  }

  private answer(self: FakeMember, path: string, body: Raw): unknown {
    const header = this.header(self);
    switch (path) {
      case '/health':
        return { health: 'true', reason: '' };
      case '/version':
        return { etcdserver: self.version, etcdcluster: this.clusterVersion };
      case '/v3/maintenance/status':
        return { header, version: self.version, dbSize: '20480', dbSizeInUse: '16384', leader: this.leader, raftIndex: String(self.raftIndex), raftTerm: String(this.term), isLearner: self.learner };
      case '/v3/cluster/member/list':
        return { header, members: [...this.members.values()].map((m) => this.raw(m)) };
      case '/v3/cluster/member/add': {
        const peerUrl = (body.peerURLs as string[])[0]!;
        this.calls.push(`member add ${peerUrl}${body.isLearner ? ' (learner)' : ''}`);
        const added = this.addMember('', peerUrl, Boolean(body.isLearner));
        return { header, member: this.raw(added), members: [...this.members.values()].map((m) => this.raw(m)) };
      }
      case '/v3/cluster/member/promote': {
        const m = this.members.get(String(body.ID));
        if (!m) throw new Error('etcdserver: member not found');
        this.calls.push(`member promote ${m.name || m.peerUrl}`);
        m.learner = false;
        return { header, members: [...this.members.values()].map((x) => this.raw(x)) };
      }
      case '/v3/cluster/member/remove': {
        const m = this.members.get(String(body.ID));
        if (!m) throw new Error('etcdserver: member not found');
        this.calls.push(`member remove ${m.name}`);
        this.members.delete(m.id);
        return { header, members: [...this.members.values()].map((x) => this.raw(x)) };
      }
      case '/v3/maintenance/transfer-leadership': {
        if (self.id !== this.leader) throw new Error('etcdserver: not leader');
        this.leader = String(body.targetID);
        this.term += 1;
        return { header: this.header(self) };
      }
      case '/v3/kv/put': {
        const key = unb64(String(body.key));
        const before = this.kv.get(key);
        this.revision += 1;
        this.kv.set(key, { value: unb64(String(body.value ?? '')), modRevision: this.revision, createRevision: before?.createRevision ?? this.revision, version: (before?.version ?? 0) + 1 });
        return { header: this.header(self) };
      }
      case '/v3/kv/range': {
        const key = unb64(String(body.key));
        const held = this.kv.get(key);
        const kvs = held ? [{ key: b64(key), value: b64(held.value), mod_revision: String(held.modRevision), create_revision: String(held.createRevision), version: String(held.version) }] : [];
        return { header, kvs, count: String(kvs.length) };
      }
      default:
        throw new Error(`the fake etcd does not answer ${path}`);
    }
  }
}
