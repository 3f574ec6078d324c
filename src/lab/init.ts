// `etcd-lab init`: writes a commented etcd-lab.yaml with every setting at its default, and makes
// sure the per-person .env beside it can never be committed by accident.
import { existsSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileError, UserError } from '../errors.js';
import { SCHEMA_FILE, TEMPLATES_DIR } from '../render/templates.js';
import { CONFIG_FILE, DEFAULT_OUT_DIR } from '../config/load.js';
import { writeFileAtomic } from '../files.js';
import { gitIgnores, inGitWorkTree } from '../runtime/git.js';

export interface InitResult {
  spec: string;
  /** The .gitignore that now ignores the per-person .env, when init had to add the line. */
  ignoredEnvIn?: string;
  inGit: boolean;
}

export async function initSpec(opts: { config?: string; force?: boolean; cwd?: string }): Promise<InitResult> {
  const path = resolve(opts.cwd ?? process.cwd(), opts.config ?? CONFIG_FILE);
  if (existsSync(path) && !opts.force) {
    throw new UserError(`${path} already exists`, { hint: 'keep it, or run `etcd-lab init --force` to overwrite it with the defaults' });
  }
  const template = await readFile(`${TEMPLATES_DIR}etcd-lab.yaml`, 'utf8');
  // Editors that speak YAML (VS Code's YAML extension, JetBrains, Neovim) complete and check the file
  // against the schema shipped in the package: from a team's repository, in node_modules/etcd-lab.
  const schema = relative(dirname(path), SCHEMA_FILE).split(sep).join('/');
  const text = `# yaml-language-server: $schema=${schema.startsWith('.') ? schema : `./${schema}`}\n${template}`;
  await writeFileAtomic(path, text).catch((error: unknown) => {
    throw fileError(error, path, 'the lab spec', 'choose a path you can write with --config');
  });
  const dir = dirname(path);
  const inGit = await inGitWorkTree(dir);
  if (!inGit || (await gitIgnores(dir, '.env'))) return { spec: path, inGit };
  // generated/ ignores itself; the .env a teammate writes beside the spec is theirs to keep.
  const gitignore = join(dir, '.gitignore');
  const existing = existsSync(gitignore) ? await readFile(gitignore, 'utf8') : '';
  const lines = `${existing && !existing.endsWith('\n') ? '\n' : ''}# etcd-lab: each person's own ports and images; never commit\n.env\n`;
  await appendFile(gitignore, lines).catch((error: unknown) => {
    throw fileError(error, gitignore, 'the .gitignore', 'add a line `.env` to it yourself');
  });
  return { spec: path, ignoredEnvIn: gitignore, inGit };
}

/** What to commit and what not, for the person who just ran init. */
export function commitAdvice(result: InitResult): string[] {
  return [
    `commit ${CONFIG_FILE}: teammates get the same lab from it`,
    `never commit ${DEFAULT_OUT_DIR}/ (it ignores itself: it holds this machine's stats password) nor .env (your own ports and images)` +
      (result.ignoredEnvIn ? `; added .env to ${result.ignoredEnvIn}` : result.inGit ? '; .env is already ignored' : ''),
  ];
}
