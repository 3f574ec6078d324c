// docs/architecture.md's layer list as the tests read it, and the source files it must cover.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The layers as the page's first code block lists them: each line's paths, before its description. */
export function layersOf(page: string): string[][] {
  const block = /```\n([\s\S]*?)```/.exec(page)?.[1] ?? '';
  return block
    .split('\n')
    .filter((line) => /^src\//.test(line))
    .map((line) => line.split(/\s{2,}/)[0]!.split(/,\s*/).map((p) => p.trim()));
}

/** Every .ts file below `dir`. */
export function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : [];
  });
}
