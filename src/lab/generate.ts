// `etcd-lab generate`: spec → files in generated/ (or --out).
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileError, formatProblem } from '../errors.js';
import type { Reporter } from '../progress.js';
import { ENV_FILE, renderLab } from '../render/index.js';
import { resolveEndpointMode, type ResolvedEndpointMode } from '../render/kind.js';
import { loadLab, type LoadedLab, type LoadOptions } from '../config/load.js';
import { writeFileAtomic } from '../files.js';
import { gitIgnores, inGitWorkTree } from '../runtime/git.js';
import { ensurePki, type PkiReport } from '../runtime/pki.js';
import { certRequests, pkiDirOf } from '../render/pki.js';

export interface GenerateResult {
  outDir: string;
  files: string[];
  /** TLS mode: which certificates were issued or kept, and the earliest expiry. */
  pki?: PkiReport;
  endpointMode: ResolvedEndpointMode;
  lab: LoadedLab;
}

/**
 * Renders and writes the lab's files. Without Docker at hand, `auto` endpoint mode is taken from the
 * platform (Docker Desktop on macOS/Windows); `etcd-lab kind` asks the engine and rewrites the file.
 */
export async function writeLabFiles(lab: LoadedLab, endpointMode?: ResolvedEndpointMode): Promise<GenerateResult> {
  const mode = endpointMode ?? resolveEndpointMode(lab.spec.kind.endpoint, process.platform !== 'linux');
  const files = renderLab({ spec: lab.spec, local: lab.local, endpointMode: mode, owner: lab.owner, hostPkiDir: pkiDirOf(lab.outDir) });
  try {
    await mkdir(lab.outDir, { recursive: true });
    for (const [name, content] of files) {
      // Whole or not at all: a reader never sees half a compose file.
      await mkdir(dirname(join(lab.outDir, name)), { recursive: true });
      await writeFileAtomic(join(lab.outDir, name), content, { mode: name === ENV_FILE ? 0o600 : 0o644 });
    }
    // Where haproxy.cfg was before it had a folder of its own (etcd-lab 0.x): nothing reads it now.
    await rm(join(lab.outDir, 'haproxy.cfg'), { force: true }).catch(() => {});
  } catch (error) {
    throw fileError(error, lab.outDir, 'the directory for generated files', 'it must be a directory you can write: fix or remove what is there, or choose another with --out');
  }
  const pki = await ensureLabPki(lab);
  return { outDir: lab.outDir, files: [...files.keys()], endpointMode: mode, lab, pki };
}

export async function generate(opts: LoadOptions, reporter: Reporter): Promise<GenerateResult> {
  const lab = loadLab(opts);
  for (const w of lab.warnings) reporter.warn(formatProblem(w));
  await warnIfEnvCommittable(lab, reporter);
  return writeLabFiles(lab);
}

/** A per-person .env that git would stage (a repository set up without `etcd-lab init`) gets a warning. */
export async function warnIfEnvCommittable(lab: LoadedLab, reporter: Reporter): Promise<void> {
  const env = join(lab.projectDir, ENV_FILE);
  if (!existsSync(env) || !(await inGitWorkTree(lab.projectDir)) || (await gitIgnores(lab.projectDir, ENV_FILE))) return;
  reporter.warn(`${env} is not ignored by git: a \`git add -A\` would commit your own ports and images — add a line \`.env\` to ${join(lab.projectDir, '.gitignore')}`);
}

export function describeFiles(result: GenerateResult, cwd = process.cwd()): string[] {
  const what: Record<string, string> = {
    'docker-compose.yml': `the stack: ${result.lab.spec.members} etcd members + HAProxy (\`docker compose -f … up -d\` works on its own)`,
    'haproxy/haproxy.cfg': 'HAProxy: etcd client front end, health checks on /health, stats page (reloaded in place)',
    'kind-config.yaml': `KIND cluster using this etcd (${result.endpointMode} endpoint mode)`,
    '.env': 'this machine\'s ports, images and stats credentials (never commit)',
    '.gitignore': 'keeps this folder out of git, in any repository',
  };
  const lines = result.files.map((f) => `  ${relative(cwd, join(result.outDir, f)) || f}  ${what[f] ?? ''}`);
  if (result.pki) lines.push(`  ${relative(cwd, result.pki.dir)}/  ${describePki(result.pki)}`);
  return lines;
}

/** TLS mode: the lab's certificates, kept or issued as render/pki.ts asks (nothing in plain mode). */
export async function ensureLabPki(lab: LoadedLab): Promise<PkiReport | undefined> {
  return lab.spec.tls.enabled ? ensurePki(pkiDirOf(lab.outDir), certRequests(lab.spec, lab.local), lab.spec.tls) : undefined;
}

export function describePki(pki: PkiReport): string {
  const issued = pki.issued.length > 0 ? `issued ${pki.issued.length}` : 'nothing issued';
  return `TLS: CA and certificates (${issued}, kept ${pki.kept.length}; keys 0600; first to expire: ${pki.earliest.name} on ${pki.earliest.notAfter})`;
}
