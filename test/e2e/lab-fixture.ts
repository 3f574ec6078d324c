// Helpers shared by the end-to-end tests: unique names, subnets and ports per test lab,
// the local images, and cleanup by label.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { stringify } from 'yaml';
import { LABEL } from '../../src/config/topology.js';
import { parseDotenv } from '../../src/config/local.js';
import { LOCAL_IMAGES } from '../../src/runtime/images.js';
import { expect } from 'vitest';
import type { Endpoint } from '../../src/protocol/etcd-http.js';
import { checkHistory } from '../../src/checker/check.js';
import type { History } from '../../src/checker/history.js';
import { longestUnavailable } from '../../src/lab/check.js';
import { Workload } from '../../src/workload/workload.js';
import { readClientTls } from '../../src/runtime/pki.js';
import { CLIENTS, pkiDirOf } from '../../src/render/pki.js';

/**
 * Every test lab's name starts with this, so leftovers can be found and removed. A second vitest
 * process beside the first (test/stress.sh, ETCD_LAB_TEST_WORKER_BASE) has a prefix of its own, so
 * neither one's clean-up (at its start and end) removes the other's labs while they run.
 */
const LANE = Number(process.env.ETCD_LAB_TEST_WORKER_BASE ?? 0);
export const TEST_LAB_PREFIX = LANE > 0 ? `elt${LANE}-` : 'elt-';

export const skipE2E = process.env.ETCD_LAB_SKIP_E2E === '1';

/** Images the e2e labs run: the local ones unless the environment names others. */
export const TEST_IMAGES = {
  etcd: process.env.ETCD_LAB_TEST_ETCD_IMAGE ?? LOCAL_IMAGES.etcd,
  haproxy: process.env.ETCD_LAB_TEST_HAPROXY_IMAGE ?? LOCAL_IMAGES.haproxy,
};

let counter = 0;

/** Second octets each test worker draws its labs' subnets from: 10.<octet>.x.0/24. */
const OCTETS_PER_WORKER = 20;

/**
 * A lab name and a private /24 that no other lab of this run shares a /16 with: e2e files run side
 * by side, and a test may squat on its own lab's whole /16 (preflight). Each worker (VITEST_POOL_ID)
 * has its own range of second octets (four ranges), used in turn; the third octet is random.
 */
export function uniqueLab(tag: string): { name: string; subnet: string } {
  counter += 1;
  // ETCD_LAB_TEST_WORKER_BASE: a second vitest process beside the first (test/stress.sh) takes other ranges.
  const worker = Math.max(1, Number(process.env.VITEST_POOL_ID ?? 1)) - 1 + Number(process.env.ETCD_LAB_TEST_WORKER_BASE ?? 0);
  const salt = (process.pid * 7 + counter * 13 + Date.now()) % 250;
  return {
    name: `${TEST_LAB_PREFIX}${tag}-${process.pid % 10000}-${counter}`,
    subnet: `10.${160 + (worker % 4) * OCTETS_PER_WORKER + (counter % OCTETS_PER_WORKER)}.${salt}.0/24`,
  };
}

/**
 * `n` distinct free ports on 127.0.0.1. All are held open until all are found: ports taken one at a
 * time can come back twice (the kernel picks each at random), which makes a lab's client and stats
 * ports the same and its spec invalid.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

async function freePortPair(): Promise<[number, number]> {
  const [a, b] = await freePorts(2);
  return [a!, b!];
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/** Removes every container, network and volume of test labs (or of one lab). */
export async function removeTestLabs(only?: string): Promise<string[]> {
  const docker = new Docker();
  const removed: string[] = [];
  const mine = (labels: Record<string, string> | undefined) => {
    const lab = labels?.[LABEL.lab];
    return lab !== undefined && (only ? lab === only : lab.startsWith(TEST_LAB_PREFIX));
  };
  for (const c of await docker.listContainers({ all: true, filters: { label: [LABEL.lab] } })) {
    if (!mine(c.Labels)) continue;
    await docker.getContainer(c.Id).remove({ force: true, v: true });
    removed.push(`container ${c.Names[0]}`);
  }
  for (const n of await docker.listNetworks({ filters: { label: [LABEL.lab] } })) {
    if (!mine(n.Labels)) continue;
    await docker.getNetwork(n.Id).remove();
    removed.push(`network ${n.Name}`);
  }
  const { Volumes } = await docker.listVolumes({ filters: { label: [LABEL.lab] } });
  for (const v of Volumes ?? []) {
    if (!mine(v.Labels as Record<string, string>)) continue;
    await docker.getVolume(v.Name).remove();
    removed.push(`volume ${v.Name}`);
  }
  removed.push(...(await removeTestCgroups(only)));
  return removed;
}

/**
 * The cgroups a test's Docker-in-Docker nodes made under a parent named for the node (swarm-nodes):
 * empty once the nodes are gone, removed deepest first, on cgroup v1 (a tree per controller) and v2
 * (one tree). A cgroup whose last process is still exiting is tried again for a few seconds.
 */
export async function removeTestCgroups(only?: string): Promise<string[]> {
  const root = '/sys/fs/cgroup';
  if (!existsSync(root)) return [];
  const mine = (name: string) => (only ? name.startsWith(`${only}-`) : name.startsWith(TEST_LAB_PREFIX));
  const under = (dir: string) => {
    try {
      return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
    } catch {
      return []; // not readable here: nothing of ours to find
    }
  };
  const trees = [root, ...under(root).map((e) => join(root, e.name))].flatMap((dir) => under(dir).filter((e) => mine(e.name)).map((e) => join(dir, e.name)));
  const removeTree = (path: string): boolean => {
    for (const entry of under(path)) removeTree(join(path, entry.name));
    try {
      rmdirSync(path);
      return true;
    } catch {
      return false;
    }
  };
  const removed: string[] = [];
  for (const tree of trees) {
    for (let attempt = 0; attempt < 20 && existsSync(tree) && !removeTree(tree); attempt++) await new Promise((r) => setTimeout(r, 250));
    if (!existsSync(tree)) removed.push(`cgroup ${tree}`);
  }
  return removed;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface TestLab {
  dir: string;
  name: string;
  subnet: string;
  clientPort: number;
  statsPort: number;
  /** Runs the real CLI (bin/etcd-lab.js) in the lab's directory. */
  cli(args: string[], env?: Record<string, string>): Promise<CliResult>;
  /** Runs the CLI with --json and parses stdout; throws with stderr when it fails. */
  json<T>(args: string[]): Promise<T>;
  remove(): Promise<void>;
}

export const BIN = fileURLToPath(new URL('../../bin/etcd-lab.js', import.meta.url));

/** The environment a CLI run gets: this one without ETCD_LAB_* (the lab's .env decides), plain output. */
export function cliEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_LAB_')));
  return { ...base, CI: 'true', ...env };
}

/** Runs the real CLI (bin/etcd-lab.js) in `dir`, as a user would. */
export function cliIn(dir: string) {
  return (args: string[], env: Record<string, string> = {}) =>
    new Promise<CliResult>((resolve) => {
      execFile(process.execPath, [BIN, ...args], { cwd: dir, env: cliEnv(env), maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
}

/**
 * A scratch project with its own etcd-lab.yaml and per-person .env (unique ports; the local images,
 * unless `newcomer`: then no image is named anywhere, as in a fresh checkout, and `up` must find its own).
 */
export async function createTestLab(tag: string, spec: Record<string, unknown> = {}, opts: { newcomer?: boolean } = {}): Promise<TestLab> {
  const { name, subnet } = uniqueLab(tag);
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const [clientPort, statsPort] = await freePortPair();
  writeFileSync(join(dir, 'etcd-lab.yaml'), stringify({ apiVersion: 'etcd-lab/v1alpha1', name, network: { subnet }, ...spec }));
  const images = opts.newcomer ? [] : [`ETCD_LAB_ETCD_IMAGE=${TEST_IMAGES.etcd}`, `ETCD_LAB_HAPROXY_IMAGE=${TEST_IMAGES.haproxy}`];
  writeFileSync(join(dir, '.env'), [`ETCD_LAB_CLIENT_PORT=${clientPort}`, `ETCD_LAB_STATS_PORT=${statsPort}`, ...images, ''].join('\n'));
  const cli = cliIn(dir);
  return {
    dir,
    name,
    subnet,
    clientPort,
    statsPort,
    cli,
    async json<T>(args: string[]) {
      const r = await cli([...args, '--json']);
      if (r.code !== 0) throw new Error(`etcd-lab ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    },
    async remove() {
      await removeTestLabs(name);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What Docker holds for a lab, by label. */
export async function labResources(name: string): Promise<{ containers: string[]; networks: string[]; volumes: string[] }> {
  const docker = new Docker();
  const filter = { label: [`${LABEL.lab}=${name}`] };
  const containers = (await docker.listContainers({ all: true, filters: filter })).map((c) => c.Names[0]!.replace(/^\//, ''));
  const networks = (await docker.listNetworks({ filters: filter })).map((n) => n.Name);
  const volumes = ((await docker.listVolumes({ filters: filter })).Volumes ?? []).map((v) => v.Name);
  return { containers: containers.sort(), networks, volumes: volumes.sort() };
}

/** A CLI run in the background, to interrupt it the way a person at a terminal would. */
export interface RunningCli {
  child: ChildProcess;
  output(): string;
  /** Resolves when stderr+stdout so far match; rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<CliResult & { ms: number }>;
}

export function spawnCli(dir: string, args: string[], env: Record<string, string> = {}): RunningCli {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c));
  child.stderr!.on('data', (c: Buffer) => (stderr += c));
  const exited = new Promise<CliResult & { ms: number }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started })),
  );
  return {
    child,
    output: () => stderr + stdout,
    async waitFor(pattern, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(stderr + stdout)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`never saw ${pattern} in:\n${stderr}${stdout}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    exited,
  };
}

/**
 * An image whose "etcd" runs but never serves: members start and never become healthy. With
 * `ignoreTerm` it ignores SIGTERM too, so stopping it takes the whole grace period.
 */
export async function buildSleepyEtcd(tag: string, opts: { ignoreTerm?: boolean } = {}): Promise<string> {
  const trap = opts.ignoreTerm ? '\\"\\"' : '\\"exit 0\\"';
  const docker = new Docker();
  const container = await docker.createContainer({
    Image: TEST_IMAGES.haproxy,
    User: 'root',
    Entrypoint: ['sh', '-c', `printf "#!/bin/sh\\ntrap ${trap} TERM USR1\\nsleep 3600 & wait\\n" > /usr/local/bin/etcd && chmod 755 /usr/local/bin/etcd`],
    Labels: { [LABEL.lab]: `${TEST_LAB_PREFIX}sleepy-build` },
  });
  await container.start();
  await container.wait();
  await container.commit({ repo: `${TEST_LAB_PREFIX}sleepy-etcd`, tag });
  await container.remove({ force: true });
  return `${TEST_LAB_PREFIX}sleepy-etcd:${tag}`;
}

export async function removeImage(ref: string | undefined): Promise<void> {
  if (ref) await new Docker().getImage(ref).remove({ force: true }).catch(() => {});
}

/** How a test reaches a lab's client URL: in TLS mode with the admin certificate etcd-lab issued it. */
export function clientOf(lab: TestLab, url: string): Endpoint {
  if (!url.startsWith('https:')) return url;
  return { url, tls: readClientTls(pkiDirOf(join(lab.dir, 'generated')), CLIENTS.admin) };
}

/** Removes a network a test made (a KIND network, say), detaching whatever is still on it. */
export async function removeNetwork(name: string): Promise<void> {
  const docker = new Docker();
  for (const n of await docker.listNetworks({ filters: { name: [name] } })) {
    if (n.Name !== name) continue;
    const net = docker.getNetwork(n.Id);
    const info = (await net.inspect()) as { Containers?: Record<string, unknown> };
    for (const id of Object.keys(info.Containers ?? {})) await net.disconnect({ Container: id, Force: true }).catch(() => {});
    await net.remove().catch(() => {});
  }
}

/**
 * Runs `work` under `etcd-lab check`'s workload through `client` (HAProxy): 4 concurrent clients
 * (gets, puts, deletes, compare-and-sets, transactions on 10 keys under `prefix`) and 2 watchers;
 * then the checker judges the history: linearizable, every committed change what its request would
 * do, every watch complete. Returns what an application would have felt.
 */
export async function underCheck(client: Endpoint, prefix: string, work: () => Promise<void>): Promise<{ acknowledged: number; notAcknowledged: number; longestGapMs: number; history: History }> {
  const haproxy = { via: 'haproxy', endpoint: () => client };
  const workload = new Workload({ prefix, keys: 10, clients: [haproxy, haproxy, haproxy, haproxy], watchers: [[haproxy], [haproxy]], rate: 200, callTimeoutMs: 2000, reads: 'linearizable', control: client, lab: prefix });
  await workload.start();
  await untilOperations(workload, 30);
  try {
    await work();
  } catch (error) {
    await workload.stop().catch(() => undefined);
    throw error;
  }
  await untilOperations(workload, workload.operations.length + 30);
  const history = await workload.stop();
  const result = checkHistory(history);
  expect(result.violations, JSON.stringify(result.violations.slice(0, 5), null, 1)).toEqual([]);
  expect(result.counts.ok).toBeGreaterThan(20);
  return { acknowledged: result.counts.ok, notAcknowledged: result.counts.failed + result.counts.unknown, longestGapMs: longestUnavailable(history), history };
}

async function untilOperations(workload: Workload, count: number): Promise<void> {
  for (const deadline = Date.now() + 60_000; workload.operations.length < count; await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > deadline) throw new Error(`the workload recorded only ${workload.operations.length} of ${count} operations in 60 s`);
  }
}

/**
 * New TCP connections to `port` on 127.0.0.1, four at a time, one after another, while `work` runs:
 * how many HAProxy accepted and how many were refused (its listening socket gone, as while it restarts).
 */
export async function connectionsDuring(port: number, work: () => Promise<void>): Promise<{ opened: number; refused: number }> {
  let opened = 0;
  let refused = 0;
  let stop = false;
  const once = () =>
    new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        opened += 1;
        socket.destroy();
        resolve();
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ECONNREFUSED') refused += 1;
        resolve();
      });
    });
  const loops = Array.from({ length: 4 }, async () => {
    while (!stop) {
      await once();
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  try {
    await work();
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  return { opened, refused };
}

/** The haproxy.cfg hash HAProxy says it runs (its stats page header) and the one generated/ holds. */
export async function haproxyConfigHashes(lab: TestLab): Promise<{ running?: string; file?: string }> {
  const env = parseDotenv(readFileSync(join(lab.dir, 'generated/.env'), 'utf8'));
  const auth = Buffer.from(`${env.ETCD_LAB_STATS_USER}:${env.ETCD_LAB_STATS_PASSWORD}`).toString('base64');
  const response = await fetch(`http://127.0.0.1:${lab.statsPort}/stats`, { headers: { authorization: `Basic ${auth}` } });
  const file = /set-header X-Etcd-Lab-Config "([0-9a-f]+)"/.exec(readFileSync(join(lab.dir, 'generated/haproxy/haproxy.cfg'), 'utf8'))?.[1];
  return { running: response.headers.get('x-etcd-lab-config') ?? undefined, file };
}

/**
 * A result several tests read, made by whichever of them runs first: each test can then run alone
 * (`-t`) or in any order, and the work is still done once per lab.
 */
export function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

/**
 * Asks `probe` every `intervalMs` until it returns something (not undefined), and returns that;
 * a probe that throws is asked again. After `timeoutMs`: an error naming what was awaited and the
 * last error the probe threw.
 */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 1000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface CommandRun {
  code: number;
  output: string;
}

/** A command's exit code and its output (both streams, as they came), with stdin fed from `input` when given. */
export function runCommand(command: string, args: string[], opts: { cwd?: string; input?: NodeJS.ReadableStream } = {}): Promise<CommandRun> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: opts.cwd, stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (c) => (output += c));
    child.stderr!.on('data', (c) => (output += c));
    if (opts.input) opts.input.pipe(child.stdin!);
    child.on('close', (code) => resolve({ code: code ?? 1, output: output.trim() }));
  });
}

/** A command that must succeed: its output, or the test fails showing it. */
export async function must(run: Promise<CommandRun>): Promise<string> {
  const r = await run;
  expect(r.code, r.output).toBe(0);
  return r.output;
}

/** `etcdctl endpoint status -w json` (after any log lines), its uint64 IDs kept as decimal strings: past what a JavaScript number holds exactly. */
export function parseEndpointStatus(output: string): { Endpoint: string; Status: { header: { member_id: string; revision: number }; leader: string; raftIndex: number; raftAppliedIndex: number } }[] {
  return JSON.parse(output.slice(output.indexOf('[')).replace(/"(member_id|leader|cluster_id)":(\d+)/g, '"$1":"$2"'));
}
