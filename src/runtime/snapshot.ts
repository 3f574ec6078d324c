// Snapshots with etcd's own tools, run in containers of the lab's etcd image: `etcdctl snapshot
// save`, and `snapshot status` / `snapshot restore` from etcdutl (etcd 3.5+) or etcdctl (3.4). The
// integrity hash etcd appends to a snapshot is checked here first, before any tool or lab sees it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { LABEL, type Role } from '../config/topology.js';
import type { ToolFile } from '../engine/engine.js';
import type { LabObjects } from './lab-objects.js';
import type { ClientTls } from '../protocol/etcd-http.js';
import { ExitCode } from '../exit-codes.js';

/** What `etcdutl snapshot status` reports, plus the file itself. */
export interface SnapshotInfo {
  file: string;
  /** Bytes on disk (the database plus the 32-byte sha256 etcd appends). */
  bytes: number;
  /** etcd's hash of the database contents (the "HASH" column of snapshot status). */
  hash: number;
  revision: number;
  totalKeys: number;
  /** Size of the database inside the file. */
  totalSize: number;
  /** Storage version, where the tool reports one (etcdutl 3.5+). */
  version?: string;
  /** False for a bare database file (no appended hash), restorable only with --skip-hash-check. */
  hashed: boolean;
}

const SHA256_BYTES = 32;
const TOOL_TIMEOUT_MS = 10 * 60_000;
const IN_TOOL = '/tmp/etcd-lab';
const SNAPSHOT_IN_TOOL = `${IN_TOOL}/snapshot.db`;
/** Where `snapshot save` writes: a directory every image has (etcdctl does not make one). */
const SAVED_IN_TOOL = '/tmp/etcd-lab-snapshot.db';

/**
 * etcd's own test (etcdutl snapshot restore): a snapshot from the Snapshot API is a bbolt file (a
 * multiple of 512 bytes) with the sha256 of everything before it appended.
 */
export async function checkSnapshotFile(file: string, opts: { skipHashCheck?: boolean } = {}): Promise<{ bytes: number; hashed: boolean }> {
  let bytes: number;
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new UserError(`${file} is not a file`, { hint: 'name a snapshot file made by `etcd-lab snapshot save`', exitCode: ExitCode.badInput });
    bytes = s.size;
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      hint: '`ls generated/snapshots/` lists the snapshots `etcd-lab snapshot save` made',
      exitCode: ExitCode.badInput,
    });
  }
  const hashed = bytes % 512 === SHA256_BYTES;
  if (opts.skipHashCheck) return { bytes, hashed: false };
  if (!hashed) {
    throw new UserError(`${file} is not a complete snapshot: it has no integrity hash at its end (${bytes} bytes)`, {
      hint: 'it is truncated (an interrupted copy?), or a database file copied from a data directory by hand. Take snapshots with `etcd-lab snapshot save`; a bare db file can be restored with --skip-hash-check',
      exitCode: ExitCode.badInput,
    });
  }
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(file, { end: bytes - SHA256_BYTES - 1 })
      .on('data', (chunk) => hash.update(chunk))
      .on('end', resolve)
      .on('error', reject);
  });
  const expected = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    createReadStream(file, { start: bytes - SHA256_BYTES })
      .on('data', (chunk) => chunks.push(chunk as Buffer))
      .on('end', () => resolve(Buffer.concat(chunks)))
      .on('error', reject);
  });
  if (!hash.digest().equals(expected)) {
    throw new UserError(`${file} is damaged: its contents do not match the sha256 etcd wrote at its end`, {
      hint: 'it was cut short or changed after it was saved; use another snapshot',
      exitCode: ExitCode.badInput,
    });
  }
  return { bytes, hashed };
}

export interface SnapshotTool {
  /** etcdutl for etcd 3.5+, else etcdctl (3.4, where snapshot status/restore still live). */
  command: string;
  env: string[];
  /** Its restore takes --bump-revision and --mark-compacted (etcdutl 3.5.10+). */
  bumpsRevision: boolean;
}

/** What the snapshot tools need of a lab: one-off runs of an image's tools, labelled as its own, and the removal of a kept one. */
export type ToolHost = Pick<LabObjects, 'runTool' | 'removeContainer'>;

const tools = new Map<string, SnapshotTool>();

/** Which tool an image has for offline snapshot work. */
export async function snapshotTool(host: ToolHost, image: string): Promise<SnapshotTool> {
  const known = tools.get(image);
  if (known) return known;
  let tool: SnapshotTool = { command: 'etcdctl', env: ['ETCDCTL_API=3'], bumpsRevision: false };
  try {
    // Its restore's help says whether it can bump the revision (3.5.10+), and that it exists at all.
    const probe = await host.runTool({ image, command: ['etcdutl', 'snapshot', 'restore', '--help'], timeoutMs: 30_000 });
    if (probe.exitCode === 0) tool = { command: 'etcdutl', env: [], bumpsRevision: probe.output.includes('--bump-revision') };
  } catch (error) {
    // The engine refuses to start a missing executable: that image predates etcdutl.
    if (!/executable file not found|no such file/i.test((error as Error).message)) throw error;
  }
  tools.set(image, tool);
  return tool;
}

/** The engine makes missing parent directories when it unpacks files into a container. */
function snapshotInput(file: string): { dir: string; files: ToolFile[] } {
  return { dir: '/tmp', files: [{ name: 'etcd-lab/snapshot.db', hostPath: file }] };
}

/** The labels of a short-lived tool container of a lab: found and removed with the lab. */
export function toolLabels(lab: string): Record<string, string> {
  return { [LABEL.lab]: lab, [LABEL.role]: 'tool' satisfies Role };
}

/** The line of a tool's output that says what went wrong (not the last line of a Go stack trace). */
function lastLine(output: string): string {
  const lines = output.trim().split('\n');
  return (lines.find((l) => /^(Error:|fatal error:|panic:)/.test(l)) ?? lines.at(-1) ?? '').trim();
}

/** `snapshot status -w json` on a host file, in a container of `image`. */
export async function snapshotStatus(host: ToolHost, image: string, file: string, opts: { skipHashCheck?: boolean } = {}): Promise<SnapshotInfo> {
  const { bytes, hashed } = await checkSnapshotFile(file, opts);
  const tool = await snapshotTool(host, image);
  const run = await host.runTool({
    image,
    command: [tool.command, 'snapshot', 'status', SNAPSHOT_IN_TOOL, '--write-out=json'],
    env: tool.env,
    inputs: snapshotInput(file),
    timeoutMs: TOOL_TIMEOUT_MS,
  });
  const json = run.output.split('\n').find((l) => l.trim().startsWith('{'));
  if (run.exitCode !== 0 || !json) {
    throw new UserError(`${tool.command} cannot read ${file} as an etcd database: ${lastLine(run.output).slice(0, 200)}`, { hint: 'use another snapshot', exitCode: ExitCode.badInput });
  }
  const s = JSON.parse(json) as { hash: number; revision: number; totalKey: number; totalSize: number; version?: string };
  return { file, bytes, hash: s.hash, revision: s.revision, totalKeys: s.totalKey, totalSize: s.totalSize, ...(s.version ? { version: s.version } : {}), hashed };
}

/** The certificate files a tool container presents in TLS mode, and the etcdctl flags naming them. */
function clientTlsFiles(tls: ClientTls | undefined): { files: ToolFile[]; flags: string[] } {
  if (!tls) return { files: [], flags: [] };
  return {
    files: [
      { name: 'etcd-lab/ca.crt', content: tls.ca },
      { name: 'etcd-lab/client.crt', content: tls.cert },
      { name: 'etcd-lab/client.key', content: tls.key },
    ],
    flags: [`--cacert=${IN_TOOL}/ca.crt`, `--cert=${IN_TOOL}/client.crt`, `--key=${IN_TOOL}/client.key`],
  };
}

/**
 * `etcdctl snapshot save` against one member, from a container on the lab network, into `file`
 * (written beside it first, checked, then renamed: a failure leaves no partial snapshot).
 */
export async function saveSnapshot(
  host: ToolHost,
  opts: { image: string; network: string; memberUrl: string; tls?: ClientTls; file: string },
): Promise<void> {
  const partial = `${opts.file}.part`;
  const { files, flags } = clientTlsFiles(opts.tls);
  try {
    const run = await host.runTool({
      image: opts.image,
      command: ['etcdctl', `--endpoints=${opts.memberUrl}`, ...flags, '--dial-timeout=5s', 'snapshot', 'save', SAVED_IN_TOOL],
      env: ['ETCDCTL_API=3'],
      network: opts.network,
      ...(files.length > 0 ? { inputs: { dir: '/tmp', files } } : {}),
      output: { from: SAVED_IN_TOOL, to: partial },
      timeoutMs: TOOL_TIMEOUT_MS,
    });
    if (run.exitCode !== 0) throw new Error(`etcdctl snapshot save failed: ${lastLine(run.output)}`);
    await checkSnapshotFile(partial);
    await rename(partial, opts.file);
  } finally {
    await rm(partial, { force: true });
  }
}

export interface RestoreTarget {
  name: string;
  peerUrl: string;
}

/**
 * `snapshot restore` for one member into a directory of a tool container, which is kept (exited) so
 * its files can be copied into the member's volume: etcdctl 3.4 refuses to restore into a directory
 * that exists, and a volume's mount point always does. Returns the container to copy from.
 */
export async function restoreForMember(
  host: ToolHost,
  opts: { image: string; file: string; member: RestoreTarget; initialCluster: string; token: string; skipHashCheck?: boolean; bumpRevision?: number },
): Promise<{ containerId: string; path: string; bumped: boolean }> {
  const tool = await snapshotTool(host, opts.image);
  const dataDir = `${IN_TOOL}/restored`;
  // etcdutl (3.5.10+) can move the revision past every one a client saw, all of them compacted: a
  // watcher resuming from before the restore is told so (an API server's client gets 410 Gone and
  // re-lists) instead of being handed the old numbers again for other changes. etcdctl 3.4 cannot.
  const bumped = tool.bumpsRevision && (opts.bumpRevision ?? 0) > 0;
  const run = await host.runTool({
    image: opts.image,
    command: [
      tool.command,
      'snapshot',
      'restore',
      SNAPSHOT_IN_TOOL,
      `--name=${opts.member.name}`,
      `--initial-cluster=${opts.initialCluster}`,
      `--initial-cluster-token=${opts.token}`,
      `--initial-advertise-peer-urls=${opts.member.peerUrl}`,
      `--data-dir=${dataDir}`,
      ...(opts.skipHashCheck ? ['--skip-hash-check'] : []),
      ...(bumped ? [`--bump-revision=${opts.bumpRevision}`, '--mark-compacted'] : []),
    ],
    env: tool.env,
    inputs: snapshotInput(opts.file),
    labels: { [LABEL.member]: opts.member.name },
    timeoutMs: TOOL_TIMEOUT_MS,
    keep: true,
  });
  if (run.exitCode !== 0) {
    await host.removeContainer({ id: run.containerId }, 0).catch(() => {});
    throw new Error(`${tool.command} snapshot restore for ${opts.member.name} failed: ${lastLine(run.output)}`);
  }
  return { containerId: run.containerId, path: dataDir, bumped };
}
