// Local images for machines that cannot pull: a Debian trixie base (pulled if a registry answers,
// else made with debootstrap + docker import), then etcd and HAProxy from Debian's packages.
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { Interrupted } from '../interrupt.js';
import type { Reporter } from '../progress.js';
import { TEMPLATES_DIR } from '../render/templates.js';
import { DEADLINES, DockerEngine, run } from './docker.js';
import type { Engine } from './engine.js';
import { ExitCode } from '../exit-codes.js';
import { LABEL } from '../config/topology.js';

export const UPSTREAM_BASE = 'debian:trixie-slim';
export const LOCAL_BASE = { repo: 'etcd-lab/debian', tag: 'trixie-minbase' } as const;
export const LOCAL_BASE_REF = `${LOCAL_BASE.repo}:${LOCAL_BASE.tag}`;
export const LOCAL_IMAGES = {
  etcd: 'etcd-lab/etcd:trixie',
  haproxy: 'etcd-lab/haproxy:trixie',
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
    await engine.importImage(createReadStream(`${dir}.tar`), LOCAL_BASE.repo, LOCAL_BASE.tag);
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
      for (const ref of [UPSTREAM_BASE, LOCAL_BASE_REF]) if (await engine.imageExists(ref)) return ref;
    }
    step.update(`pulling ${UPSTREAM_BASE}`);
    const pulled = await engine.pullImage(UPSTREAM_BASE);
    if (pulled.ok) return UPSTREAM_BASE;
    step.update(`no registry (${pulled.reason.slice(0, 80)}); debootstrap --variant=minbase trixie`);
    await debootstrapBase(engine, (line) => step.update(line.slice(0, 100)));
    return LOCAL_BASE_REF;
  });
}

export async function buildLocalImages(
  opts: { force?: boolean; engine?: Engine; /** Also these etcd versions (the usual pair is always there). */ etcdVersions?: LocalEtcdVersion[] },
  reporter: Reporter,
): Promise<ImagesResult> {
  const engine = opts.engine ?? new DockerEngine();
  await engine.ping();
  const present: string[] = [];
  const candidates: { name: keyof typeof LOCAL_IMAGES; ref: string; suite: string }[] = [
    { name: 'etcd', ref: LOCAL_IMAGES.etcd, suite: 'trixie' },
    { name: 'haproxy', ref: LOCAL_IMAGES.haproxy, suite: 'trixie' },
    ...(opts.etcdVersions ?? []).filter((v) => v !== '3.5').map((v) => ({ name: 'etcd' as const, ref: LOCAL_ETCD_VERSIONS[v].ref, suite: LOCAL_ETCD_VERSIONS[v].suite })),
  ];
  const wanted: typeof candidates = [];
  for (const candidate of candidates) {
    if (!opts.force && (await engine.imageExists(candidate.ref))) present.push(candidate.ref);
    else wanted.push(candidate);
  }
  let base = '';
  if (wanted.length > 0) base = await ensureBase(engine, reporter, Boolean(opts.force));
  for (const { name, ref, suite } of wanted) {
    await reporter.step(`build ${ref} from Debian ${suite} packages`, async (step) => {
      await engine
        .buildImage({
          context: join(TEMPLATES_DIR, 'images', name),
          tag: ref,
          buildArgs: { BASE: base, SUITE: suite, MIRROR: aptMirror() ?? 'http://deb.debian.org/debian' },
          labels: { [LABEL.image]: name },
          onLine: (line) => step.update(line.slice(0, 100)),
        })
        .catch((error: unknown) => {
          if (error instanceof Interrupted || error instanceof UserError) throw error;
          // The engine's own failure (a RUN step, the runtime, the disk): what it said, not "a bug".
          throw new UserError(`the Docker engine could not build ${ref}: ${lastLine(error)}`, {
            hint: `the build runs apt-get inside a container, so it needs the Debian mirror and a working engine; \`etcd-lab images build\` retries it with its output`,
            exitCode: ExitCode.refused,
            cause: error,
          });
        });
    });
  }
  const built = wanted.map((w) => w.ref);
  const summary = [
    built.length > 0 ? `built ${built.join(', ')} (base ${base})` : `already present: ${present.join(', ')} (--force rebuilds)`,
    `to use them, put these in the .env beside etcd-lab.yaml (\`etcd-lab up\` does this by itself when the official images cannot be pulled):`,
    `  ETCD_LAB_ETCD_IMAGE=${LOCAL_IMAGES.etcd}`,
    `  ETCD_LAB_HAPROXY_IMAGE=${LOCAL_IMAGES.haproxy}`,
  ].join('\n');
  return { base, built, present, summary };
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
    if (await engine.imageExists(ref)) continue;
    // A failed pull shows as a failed step; the fallback below says what happens instead.
    const pulled = await reporter
      .step(`pull ${ref}`, async (step) => {
        const result = await engine.pullImage(ref, (line) => step.update(line.slice(0, 80)));
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
