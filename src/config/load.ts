// Disk side of the spec: finds and parses etcd-lab.yaml, the .env beside it and the last
// generated .env, then hands everything to the pure readers. Throws one UserError with every problem.
import { readFileSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { fileError, formatProblem, UserError, type Problem } from '../errors.js';
import { resolveLocalSettings, type LocalOverrides, type LocalSettings } from './local.js';
import { readSpec, type SpecOverride } from './read.js';
import type { LabSpec } from './types.js';
import { ExitCode } from '../exit-codes.js';

export const CONFIG_FILE = 'etcd-lab.yaml';
export const DEFAULT_OUT_DIR = 'generated';

export interface LoadOptions {
  /** Path to etcd-lab.yaml; default ./etcd-lab.yaml. */
  config?: string;
  /** Where generated files go; default generated/ beside etcd-lab.yaml. */
  out?: string;
  overrides?: SpecOverride[];
  local?: LocalOverrides;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

export interface LoadedLab {
  spec: LabSpec;
  local: LocalSettings;
  warnings: Problem[];
  /** Absolute path of etcd-lab.yaml, or undefined when none exists and defaults are used. */
  configPath: string | undefined;
  /** Directory holding etcd-lab.yaml (and the per-person .env). */
  projectDir: string;
  outDir: string;
  /** Who owns the lab in Docker: the absolute path of this checkout's spec file, present or not. */
  owner: string;
}

/** What a path is when it is not a regular file ("a directory"), for messages; undefined for a regular file. */
function fileKind(stats: Stats): string | undefined {
  if (stats.isFile()) return undefined;
  if (stats.isDirectory()) return 'a directory';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isFIFO()) return 'a named pipe';
  if (stats.isSocket()) return 'a socket';
  return 'a special file';
}

/** A file's text, or undefined when it does not exist; any other problem is the user's to fix. */
function readIfExists(path: string, what: string, fix: string): string | undefined {
  try {
    // Not a device, a pipe or a directory: /dev/null would read as empty and put generated/ in /dev.
    const kind = fileKind(statSync(path));
    if (kind) throw new UserError(`${what} ${path} is ${kind}, not a regular file`, { hint: fix, exitCode: ExitCode.badInput });
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileError(error, path, what, fix);
  }
}

/** Parses YAML text strictly (duplicate keys are errors). Problems carry line numbers. */
export function parseSpecYaml(text: string, file: string): { input: unknown; problems: Problem[] } {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    return {
      input: undefined,
      problems: doc.errors.map((e) => ({
        path: `${file}:${e.linePos?.[0]?.line ?? '?'}`,
        message: e.message.split('\n')[0]!,
        fix: 'fix the YAML syntax',
      })),
    };
  }
  return { input: doc.toJS(), problems: [] };
}

export function loadLab(opts: LoadOptions = {}): LoadedLab {
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.config !== undefined;
  const configPath = resolve(cwd, opts.config ?? CONFIG_FILE);
  const text = readIfExists(
    configPath,
    'the lab spec',
    explicit ? 'point --config at your etcd-lab.yaml file' : 'etcd-lab reads ./etcd-lab.yaml: move that out of the way, or point --config at your spec file',
  );
  if (text === undefined && explicit) {
    throw new UserError(`${configPath} does not exist`, { hint: 'run `etcd-lab init` to write one, or point --config at yours', exitCode: ExitCode.badInput });
  }
  const projectDir = dirname(configPath);
  const outDir = resolve(cwd, opts.out ?? join(projectDir, DEFAULT_OUT_DIR));

  const parsed = text === undefined ? { input: undefined, problems: [] } : parseSpecYaml(text, CONFIG_FILE);
  const { spec, problems, warnings } = readSpec(parsed.input, opts.overrides);
  const localResult = resolveLocalSettings(spec, {
    flags: opts.local,
    env: opts.env ?? process.env,
    dotenv: readIfExists(join(projectDir, '.env'), 'the per-person settings file', 'it must be a readable file of NAME=value lines (or absent)'),
    dotenvFile: join(projectDir, '.env'),
    previous: readIfExists(join(outDir, '.env'), 'the generated settings file', `remove it (\`etcd-lab generate\` writes it anew), or choose another --out`),
  });
  // One mistake seen by two readers is one problem.
  const all = [...parsed.problems, ...problems, ...localResult.problems].filter(
    (p, i, every) => every.findIndex((q) => formatProblem(q) === formatProblem(p)) === i,
  );
  if (all.length > 0) {
    const where = text === undefined ? 'The default spec with your flags' : configPath;
    throw new UserError(`${where}: ${all.length === 1 ? '1 problem' : `${all.length} problems`}`, {
      problems: all,
      hint: 'Fix them and run the command again. Every setting is described in README.md and in `etcd-lab init`\'s commented etcd-lab.yaml.',
      exitCode: ExitCode.badInput,
    });
  }
  if (text === undefined) {
    warnings.unshift({ path: CONFIG_FILE, message: `not found in ${projectDir}: using the defaults`, fix: 'run `etcd-lab init` to write one' });
  }
  warnings.push(...localResult.warnings);
  return { spec, local: localResult.settings, warnings, configPath: text === undefined ? undefined : configPath, projectDir, outDir, owner: configPath };
}
