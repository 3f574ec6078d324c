// `etcd-lab init`: writes a commented etcd-lab.yaml with every setting at its default.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileError, UserError } from '../errors.js';
import { TEMPLATES_DIR } from '../render/templates.js';
import { CONFIG_FILE } from '../config/load.js';

export async function initSpec(opts: { config?: string; force?: boolean; cwd?: string }): Promise<string> {
  const path = resolve(opts.cwd ?? process.cwd(), opts.config ?? CONFIG_FILE);
  if (existsSync(path) && !opts.force) {
    throw new UserError(`${path} already exists`, { hint: 'keep it, or run `etcd-lab init --force` to overwrite it with the defaults' });
  }
  const template = await readFile(`${TEMPLATES_DIR}etcd-lab.yaml`, 'utf8');
  await writeFile(path, template).catch((error: unknown) => {
    throw fileError(error, path, 'the lab spec', 'choose a path you can write with --config');
  });
  return path;
}
