// `etcd-lab export hosts|swarm`: the lab's topology for several machines, from the same
// etcd-lab.yaml — a bundle per host, or a stack for a Docker Swarm. Writes files only: no Docker.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import type { Reporter } from '../progress.js';
import { loadLab, type LoadOptions } from '../config/load.js';
import { memberNames } from '../config/topology.js';
import { newStatsPassword, parseDotenv } from '../config/local.js';
import { checkHosts, hostsCertRequests, renderHostsExport, type HostsExportInput } from '../render/export-hosts.js';
import { HAPROXY_NODE_LABEL, memberNodeLabel, renderSwarmHaproxyCfg, renderSwarmRunbook, renderSwarmStack, SWARM_STACK_FILE, swarmCertRequests, swarmTopology, type SwarmExportInput } from '../render/export-swarm.js';
import { writeFileAtomic } from '../files.js';
import { ensurePki } from '../runtime/pki.js';
import { ExitCode } from '../exit-codes.js';

export interface ExportHostsOptions extends LoadOptions {
  /** "etcd1=10.0.0.11", one per member. */
  hosts: string[];
  loadBalancer?: string;
  /** Where the bundle goes (default generated/export/hosts/). */
  to?: string;
  etcdBinary?: string;
  /** Members that join the running cluster on a new host (the runbook's member replace). */
  joining?: string[];
}

export interface ExportHostsResult {
  dir: string;
  files: string[];
  hosts: Record<string, string>;
  loadBalancer?: string;
}

export async function exportHosts(opts: ExportHostsOptions, reporter: Reporter): Promise<ExportHostsResult> {
  const lab = loadLab(opts);
  const hosts: Record<string, string> = {};
  const problems: string[] = [];
  for (const pair of opts.hosts) {
    const [name, address, ...rest] = pair.split('=');
    if (!name || !address || rest.length > 0) problems.push(`--host ${pair}: write it as MEMBER=ADDRESS (etcd1=10.0.0.11)`);
    else if (hosts[name]) problems.push(`${name} is given twice`);
    else hosts[name] = address;
  }
  problems.push(...checkHosts(lab.spec, hosts, opts.loadBalancer));
  for (const name of opts.joining ?? []) if (!Object.hasOwn(hosts, name)) problems.push(`--joining ${name}: not a member given with --host`);
  if (problems.length > 0) {
    throw new UserError(`cannot export lab "${lab.spec.name}" to hosts: ${problems.length === 1 ? problems[0] : `${problems.length} problems`}`, {
      ...(problems.length > 1 ? { problems: problems.map((message) => ({ path: '--host', message })) } : {}),
      hint: `name one host per member: ${memberNames(lab.spec.members).map((name) => `--host ${name}=ADDRESS`).join(' ')} [--load-balancer ADDRESS]`,
      exitCode: ExitCode.badInput,
    });
  }
  const dir = resolve(opts.to ?? join(lab.outDir, 'export', 'hosts'));
  // The stats password of an earlier export is kept: a load balancer set up with it stays right.
  const statsFile = join(dir, 'haproxy', 'etcd-lab-stats.env');
  const previous = parseDotenv(await readFile(statsFile, 'utf8').catch(() => undefined));
  const input: HostsExportInput = {
    spec: lab.spec,
    hosts,
    loadBalancer: opts.loadBalancer,
    etcdBinary: opts.etcdBinary ?? '/usr/local/bin/etcd',
    statsUser: previous.ETCD_LAB_STATS_USER || lab.local.statsUser,
    statsPassword: previous.ETCD_LAB_STATS_PASSWORD || newStatsPassword(),
    ...(opts.joining?.length ? { joining: opts.joining } : {}),
  };
  const files = renderHostsExport(input);
  await reporter.step(`write ${files.size} files to ${dir}`, () => writeAll(dir, files));
  await reporter.step("certificates (a CA of the export's own; ca.key stays here)", () => ensurePki(dir, hostsCertRequests(input), lab.spec.tls));
  return { dir, files: await filesUnder(dir), hosts, ...(opts.loadBalancer ? { loadBalancer: opts.loadBalancer } : {}) };
}

export interface ExportSwarmOptions extends LoadOptions {
  /** Addresses or names clients dial HAProxy on, besides 127.0.0.1 and localhost. */
  clientAddresses?: string[];
  to?: string;
}

export interface ExportSwarmResult {
  dir: string;
  stackFile: string;
  files: string[];
  /** The node labels to set, and what for. */
  nodeLabels: string[];
}

export async function exportSwarm(opts: ExportSwarmOptions, reporter: Reporter): Promise<ExportSwarmResult> {
  const lab = loadLab(opts);
  const dir = resolve(opts.to ?? join(lab.outDir, 'export', 'swarm'));
  // The stats credentials of an earlier export are kept (its secret may be deployed).
  const statsFile = join(dir, 'stats.env');
  const previous = parseDotenv(await readFile(statsFile, 'utf8').catch(() => undefined));
  const input: SwarmExportInput = {
    spec: lab.spec,
    etcdImage: lab.local.etcdImage,
    haproxyImage: lab.local.haproxyImage,
    clientAddresses: opts.clientAddresses ?? [],
    clientPort: lab.local.clientPort,
    statsPort: lab.local.statsPort,
    statsUser: previous.ETCD_LAB_STATS_USER || lab.local.statsUser,
    statsPassword: previous.ETCD_LAB_STATS_PASSWORD || newStatsPassword(),
  };
  const files = new Map<string, { content: string; mode: number }>([
    [SWARM_STACK_FILE, { content: renderSwarmStack(input), mode: 0o644 }],
    ['secrets/haproxy.cfg', { content: renderSwarmHaproxyCfg(input), mode: 0o600 }],
    ['stats.env', { content: `ETCD_LAB_STATS_USER=${input.statsUser}\nETCD_LAB_STATS_PASSWORD=${input.statsPassword}\n`, mode: 0o600 }],
    ['README.md', { content: renderSwarmRunbook(input), mode: 0o644 }],
  ]);
  await reporter.step(`write ${files.size} files to ${dir}`, () => writeAll(dir, files));
  await reporter.step("certificates (a CA of the export's own; ca.key stays here)", () => ensurePki(dir, swarmCertRequests(input), lab.spec.tls));
  return {
    dir,
    stackFile: join(dir, SWARM_STACK_FILE),
    files: await filesUnder(dir),
    nodeLabels: [...swarmTopology(lab.spec).map((m) => `${memberNodeLabel(m.name)}=true`), `${HAPROXY_NODE_LABEL}=true`],
  };
}

async function writeAll(dir: string, files: Map<string, { content: string; mode: number }>): Promise<void> {
  for (const [name, { content, mode }] of files) {
    const path = join(dir, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, content, { mode });
  }
}

/** Every file of the export, relative to its folder, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dir.length + 1))
    .sort();
}
