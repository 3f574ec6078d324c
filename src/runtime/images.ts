// Local images for machines that cannot pull: a Debian trixie base (pulled if a registry answers,
// else made with debootstrap + docker import), then etcd and HAProxy from Debian's packages.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { Interrupted } from '../interrupt.js';
import type { Reporter } from '../progress.js';
import { TEMPLATES_DIR } from '../render/templates.js';
import { run } from '../engine/child-process.js';
import { DEADLINES } from '../engine/deadlines.js';
import { DockerEngine } from '../engine/docker.js';
import type { Engine } from '../engine/engine.js';
import { ExitCode } from '../exit-codes.js';
import { LABEL } from '../config/topology.js';

export const UPSTREAM_BASE = 'debian:trixie-slim';
export const LOCAL_BASE = { repo: 'etcd-lab/debian', tag: 'trixie-minbase' } as const;
export const LOCAL_BASE_REF = `${LOCAL_BASE.repo}:${LOCAL_BASE.tag}`;
export const LOCAL_IMAGES = {
  etcd: 'etcd-lab/etcd:trixie',
  haproxy: 'etcd-lab/haproxy:3.2',
} as const;

/**
 * etcd versions Debian packages, as local images: two real versions for rehearsing a rolling
 * upgrade without a registry. 3.5 is the lab's usual local image.
 */
export const LOCAL_ETCD_VERSIONS = {
  '3.4': { suite: 'bookworm', ref: 'etcd-lab/etcd:3.4-bookworm' },
  '3.5': { suite: 'trixie', ref: LOCAL_IMAGES.etcd },
} as const;
export type LocalEtcdVersion = keyof typeof LOCAL_ETCD_VERSIONS;

/**
 * Kubernetes' generic API server (apiextensions-apiserver) and kubectl, built from Debian sid's Go
 * sources: lab-templates/images/apiserver/. `etcd-lab apiserver` runs it.
 */
export const APISERVER_IMAGE = 'etcd-lab/apiserver:sid';

/** iptables and Node from Debian trixie: run in a member's network namespace by `loss`, `blackhole` and `delay`. */
export const NETTOOLS_IMAGE = 'etcd-lab/nettools:trixie';
/** The label a recipe's throwaway build stage carries (lab-templates/images/apiserver/Dockerfile). */
const BUILD_STAGE_LABEL = 'io.etcd-lab.build-stage';
const APISERVER_RECIPE_DIR = join(TEMPLATES_DIR, 'images', 'apiserver');

/** A fingerprint of the API server image's recipe (its Dockerfile and patches): an image built from another is rebuilt. */
export function apiServerRecipe(): string {
  return fingerprint(APISERVER_RECIPE_DIR, ['Dockerfile', ...readdirSync(join(APISERVER_RECIPE_DIR, 'patches')).sort().map((f) => `patches/${f}`)]);
}

/** The same for the network-fault helper (its Dockerfile): one from an older recipe lacks what `delay` needs. */
export function nettoolsRecipe(): string {
  return fingerprint(join(TEMPLATES_DIR, 'images', 'nettools'), ['Dockerfile']);
}

function fingerprint(dir: string, files: string[]): string {
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${file}\0`).update(readFileSync(join(dir, file))).update('\0');
  return hash.digest('hex').slice(0, 16);
}

export interface ImagesResult {
  base: string;
  built: string[];
  present: string[];
  summary: string;
}

/** The Debian mirror this machine's apt uses, so debootstrap fetches from the same place. */
export function aptMirror(): string | undefined {
  for (const file of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const uri = /^URIs:\s*(\S+)/m.exec(text)?.[1] ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+/m.exec(text)?.[1];
    if (uri && !uri.includes('security')) return uri;
  }
  return undefined;
}

async function debootstrapBase(engine: Engine, onLine: (line: string) => void): Promise<void> {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    throw new UserError(`cannot make a base image: ${UPSTREAM_BASE} cannot be pulled and debootstrap needs root on Linux`, {
      hint: `pull ${UPSTREAM_BASE} on a machine with registry access (docker save | docker load), or run this as root on Debian`,
    });
  }
  try {
    await run('debootstrap', ['--version'], { timeoutMs: DEADLINES.engineMs });
  } catch {
    throw new UserError('debootstrap is not installed', { hint: 'apt-get install -y debootstrap (or run `etcd-lab setup-host`)' });
  }
  const dir = await mkdtemp(join(tmpdir(), 'etcd-lab-rootfs-'));
  try {
    const mirror = aptMirror();
    // It prints a line per package it fetches and unpacks: a deadline of inactivity, not of the whole.
    await run('debootstrap', ['--variant=minbase', 'trixie', dir, ...(mirror ? [mirror] : [])], { onLine, timeoutMs: DEADLINES.idleMs, idle: true }).catch((error: unknown) => {
      if (error instanceof UserError) throw error; // Ctrl-C, or silent past its deadline
      throw new UserError(`debootstrap could not make a Debian trixie root file system: ${lastLine(error)}`, {
        hint: `it needs the Debian mirror (${mirror ?? 'the default one'}) and root; see its output above`,
        exitCode: ExitCode.refused,
        cause: error,
      });
    });
    // Packed whole and checked before the engine sees it: a tar that fails half-way must not become an image.
    await packRootfs(dir, `${dir}.tar`);
    await engine.images.importRootfs(createReadStream(`${dir}.tar`), LOCAL_BASE.repo, LOCAL_BASE.tag);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(`${dir}.tar`, { force: true });
  }
}

/** `tar` of a root file system into `archive`; a failure (exit code or error) says what tar said. */
export async function packRootfs(dir: string, archive: string): Promise<void> {
  // tar prints nothing while it works: a plain deadline, far above the seconds a minbase tree takes.
  await run('tar', ['-C', dir, '-c', '-f', archive, '.'], { timeoutMs: 600_000 }).catch(async (error: unknown) => {
    await rm(archive, { force: true });
    if (error instanceof Interrupted) throw error;
    const { code, stderr } = error as { code?: unknown; stderr?: unknown };
    const said = String(stderr ?? '').trim() || String((error as Error).message ?? error).trim();
    const exit = typeof code === 'number' ? ` (exit ${code})` : '';
    throw new UserError(`tar could not pack the Debian root file system in ${dir}${exit}: ${said.split('\n').slice(-3).join(' / ')}`, {
      hint: 'tar must be installed and the temporary directory must have room for the file system twice over (set TMPDIR elsewhere if not)',
      exitCode: ExitCode.refused,
      cause: error,
    });
  });
}

function lastLine(error: unknown): string {
  return String((error as Error).message ?? error).trim().split('\n').at(-1) ?? '';
}

/** Finds or makes a trixie base image: local first, then a pull, then debootstrap. */
async function ensureBase(engine: Engine, reporter: Reporter, force: boolean): Promise<string> {
  return reporter.step('Debian trixie base image', async (step) => {
    if (!force) {
      for (const ref of [UPSTREAM_BASE, LOCAL_BASE_REF]) if (await engine.images.exists(ref)) return ref;
    }
    step.update(`pulling ${UPSTREAM_BASE}`);
    const pulled = await engine.images.pull(UPSTREAM_BASE);
    if (pulled.ok) return UPSTREAM_BASE;
    step.update(`no registry (${pulled.reason.slice(0, 80)}); debootstrap --variant=minbase trixie`);
    await debootstrapBase(engine, (line) => step.update(line.slice(0, 100)));
    return LOCAL_BASE_REF;
  });
}

export interface BuildImagesOptions {
  force?: boolean;
  engine?: Engine;
  /** Also these etcd versions (the usual pair is always there). */
  etcdVersions?: LocalEtcdVersion[];
  /** Also the API server image (APISERVER_IMAGE): some minutes, the first time. */
  apiserver?: boolean;
  /** Only the API server image (`etcd-lab apiserver`: the lab's own images are not its business). */
  apiserverOnly?: boolean;
  /** Only the network-fault helper (NETTOOLS_IMAGE), which `loss` and `blackhole` build when first needed. */
  nettoolsOnly?: boolean;
}

/** One image etcd-lab builds: from lab-templates/images/<name>/, labelled with what it is. */
interface ImageRecipe {
  name: 'etcd' | 'haproxy' | 'apiserver' | 'nettools';
  ref: string;
  suite: string;
  labels: Record<string, string>;
}

export async function buildLocalImages(opts: BuildImagesOptions, reporter: Reporter): Promise<ImagesResult> {
  const engine = opts.engine ?? new DockerEngine();
  await engine.ping();
  const present: string[] = [];
  const candidates: ImageRecipe[] = [
    ...(opts.apiserverOnly || opts.nettoolsOnly
      ? []
      : [
          { name: 'etcd' as const, ref: LOCAL_IMAGES.etcd, suite: 'trixie', labels: {} },
          { name: 'haproxy' as const, ref: LOCAL_IMAGES.haproxy, suite: 'sid', labels: {} },
        ]),
    ...(opts.nettoolsOnly ? [{ name: 'nettools' as const, ref: NETTOOLS_IMAGE, suite: 'trixie', labels: { [LABEL.recipe]: nettoolsRecipe() } }] : []),
    ...(opts.etcdVersions ?? []).filter((v) => v !== '3.5').map((v) => ({ name: 'etcd' as const, ref: LOCAL_ETCD_VERSIONS[v].ref, suite: LOCAL_ETCD_VERSIONS[v].suite, labels: {} })),
    // Built on trixie from sid's sources; its recipe changes with etcd-lab, so it carries a fingerprint.
    ...(opts.apiserver || opts.apiserverOnly ? [{ name: 'apiserver' as const, ref: APISERVER_IMAGE, suite: 'sid', labels: { [LABEL.recipe]: apiServerRecipe() } }] : []),
  ];
  const wanted: ImageRecipe[] = [];
  for (const candidate of candidates) {
    const have = opts.force ? undefined : await engine.images.labels(candidate.ref);
    const current = have !== undefined && Object.entries(candidate.labels).every(([k, v]) => have[k] === v);
    if (current) present.push(candidate.ref);
    else wanted.push(candidate);
  }
  let base = '';
  if (wanted.length > 0) base = await ensureBase(engine, reporter, Boolean(opts.force));
  for (const recipe of wanted) await buildOne(engine, recipe, base, reporter);
  const built = wanted.map((w) => w.ref);
  // A multi-stage build leaves its build stage behind, untagged: the API server's is some 4.9 GB.
  if (wanted.some((w) => w.name === 'apiserver')) {
    await reporter.step('remove the API server build stage', async (step) => {
      const { removed, bytes } = await engine.images.removeDangling([`${BUILD_STAGE_LABEL}=apiserver`]);
      step.update(removed > 0 ? `${removed} image${removed === 1 ? '' : 's'}, ${(bytes / 1e9).toFixed(1)} GB freed` : 'nothing left behind');
    });
  }
  const summary = [
    built.length > 0 ? `built ${built.join(', ')} (base ${base})` : `already present: ${present.join(', ')} (--force rebuilds)`,
    `to use them, put these in the .env beside etcd-lab.yaml (\`etcd-lab up\` does this by itself when the official images cannot be pulled):`,
    `  ETCD_LAB_ETCD_IMAGE=${LOCAL_IMAGES.etcd}`,
    `  ETCD_LAB_HAPROXY_IMAGE=${LOCAL_IMAGES.haproxy}`,
    ...(opts.apiserver ? [`${APISERVER_IMAGE} is what \`etcd-lab apiserver\` runs`] : []),
  ].join('\n');
  return { base, built, present, summary };
}

async function buildOne(engine: Engine, { name, ref, suite, labels }: ImageRecipe, base: string, reporter: Reporter): Promise<void> {
  const slow = name === 'apiserver' ? ' (a Go build: about 15 min the first time on 2 cores)' : '';
  await reporter.step(`build ${ref} from Debian ${suite} packages${slow}`, async (step) => {
    // What the recipe itself says when it stops (a patch that no longer applies) comes before the engine's "returned a non-zero code".
    let said = '';
    await engine
      .images.build({
        context: join(TEMPLATES_DIR, 'images', name),
        tag: ref,
        buildArgs: { BASE: base, SUITE: suite, MIRROR: aptMirror() ?? 'http://deb.debian.org/debian' },
        labels: { [LABEL.image]: name, ...labels },
        onLine: (line) => {
          if (line.startsWith('etcd-lab: ')) said = line;
          step.update(line.slice(0, 100));
        },
      })
      .catch((error: unknown) => {
        if (error instanceof Interrupted || (error instanceof UserError && !said)) throw error;
        // The recipe's own words, else the engine's failure (a RUN step, the runtime, the disk): not "a bug".
        throw new UserError(`the Docker engine could not build ${ref}: ${said || lastLine(error)}`, {
          hint: `the build runs apt-get inside a container, so it needs the Debian mirror and a working engine; \`etcd-lab images build\` retries it with its output`,
          exitCode: ExitCode.refused,
          cause: error,
        });
      });
  });
}

export interface ImageChoice {
  etcd: string;
  haproxy: string;
  /** Set when the spec's images could not be pulled and local builds stand in. */
  fallback?: { reason: string };
}

/**
 * Makes sure the images a lab runs are on this machine: present, else pulled, else (only for the
 * spec's own images, not a per-person override) built locally from Debian packages.
 */
export async function ensureLabImages(
  engine: Engine,
  wanted: { etcd: string; haproxy: string },
  specImages: { etcd: string; haproxy: string },
  reporter: Reporter,
): Promise<ImageChoice> {
  const choice: ImageChoice = { ...wanted };
  const unpullable: string[] = [];
  for (const kind of ['etcd', 'haproxy'] as const) {
    const ref = wanted[kind];
    if (await engine.images.exists(ref)) continue;
    // A failed pull shows as a failed step; the fallback below says what happens instead.
    const pulled = await reporter
      .step(`pull ${ref}`, async (step) => {
        const result = await engine.images.pull(ref, (line) => step.update(line.slice(0, 80)));
        if (!result.ok) throw new Error(result.reason);
        return result;
      })
      .catch((error: unknown) => {
        if (error instanceof Interrupted) throw error;
        return { ok: false as const, reason: (error as Error).message };
      });
    if (pulled.ok) continue;
    if (ref !== specImages[kind] || ref === LOCAL_IMAGES[kind]) {
      throw new UserError(`image ${ref} is not on this machine and cannot be pulled: ${pulled.reason}`, {
        hint: `check the name and your registry access, or build local images with \`etcd-lab images build\` and set ETCD_LAB_${kind.toUpperCase()}_IMAGE=${LOCAL_IMAGES[kind]} in .env`,
        exitCode: ExitCode.refused,
      });
    }
    unpullable.push(`${ref} (${pulled.reason})`);
    choice[kind] = LOCAL_IMAGES[kind];
  }
  if (unpullable.length > 0) {
    reporter.warn(`cannot pull ${unpullable.join(', ')}: using local images built from Debian packages instead`);
    await buildLocalImages({ engine }, reporter);
    choice.fallback = { reason: unpullable.join('; ') };
  }
  return choice;
}
