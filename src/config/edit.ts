// The two files a person owns, edited in place by the commands that change a lab's shape:
// `members:` in etcd-lab.yaml (scale) and one variable of the per-person .env (upgrade). Every
// comment and other line is kept; each write is whole or not at all. And a lab at another size,
// as scale passes through it, made from the loaded one and validated again.
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { UserError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { writeFileAtomic } from '../files.js';
import type { LoadedLab } from './load.js';
import { setDotenvValue } from './local.js';
import { validateSpec } from './validate.js';

/** Sets `members:` in etcd-lab.yaml, every comment and other line kept. */
export async function writeMemberCount(specPath: string, members: number): Promise<void> {
  const doc = parseDocument(await readFile(specPath, 'utf8'));
  doc.set('members', members);
  await writeFileAtomic(specPath, doc.toString());
}

/** Sets one variable in the per-person .env beside the spec, keeping every other line (an absent file is made). */
export async function setInDotenv(file: string, name: string, value: string): Promise<void> {
  const text = await readFile(file, 'utf8').catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  });
  await writeFileAtomic(file, setDotenvValue(text, name, value));
}

/**
 * The lab with `members` members: its spec changed there and validated again (the subnet must
 * hold them). Between the steps of a scale a lab has even counts too (4 on the way from 3 to 5),
 * so any count from 1 to 7 is taken here; the count a person asks for is checked where it is read.
 */
export function resizedLab(lab: LoadedLab, members: number): LoadedLab {
  if (!Number.isInteger(members) || members < 1 || members > 7) throw new Error(`a lab is resized to 1 … 7 members, not ${members}`);
  const spec = { ...lab.spec, members };
  const { problems } = validateSpec(spec);
  if (problems.length > 0) {
    throw new UserError(`lab "${lab.spec.name}" cannot have ${members} members: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, {
      hint: problems.find((p) => p.fix)?.fix ?? 'change etcd-lab.yaml so that it can',
      exitCode: ExitCode.badInput,
    });
  }
  return { ...lab, spec };
}
