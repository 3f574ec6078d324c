// docs/architecture.md lists the layers of src/, top to bottom, and says a file imports only from its
// own layer or the ones under it. This reads that list from the page and holds every import in src/
// (static and dynamic) to it, so neither the page nor the code can drift from the other.
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { layersOf, sources } from './layers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Every relative import of a file, resolved to a path from the root (`src/lab/up.ts`). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => relative(ROOT, resolve(dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
}

describe('the layers docs/architecture.md states', () => {
  const layers = layersOf(readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8'));
  const layerOf = (path: string) => layers.findIndex((paths) => paths.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p)));
  const files = sources(join(ROOT, 'src')).map((f) => relative(ROOT, f));

  it('name every file of src/ once', () => {
    expect(layers.length).toBeGreaterThan(8);
    expect(files.filter((f) => layerOf(f) < 0)).toEqual([]);
  });

  it('hold: no import points up', () => {
    const upward: string[] = [];
    for (const file of files) {
      for (const target of importsOf(join(ROOT, file))) {
        if (layerOf(target) < layerOf(file)) upward.push(`${file} imports ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('are read the way the page means them (an upward import would be found)', () => {
    const sample = layersOf('```\nsrc/a.ts          top\nsrc/b/             middle\n                   more words\nsrc/c.ts, src/d.ts   bottom\n```\n');
    expect(sample).toEqual([['src/a.ts'], ['src/b/'], ['src/c.ts', 'src/d.ts']]);
  });
});

describe('the operations and commands', () => {
  // Reaching the engine: a client of it (`x.engine.volumes`, `engine.containers` after taking it
  // apart), or taking it out of the runtime or a step's context. Passing an injected engine on
  // (`opts.engine ?? new DockerEngine()`, `engine?: Engine`) is not reaching through.
  const REACHING = /\bengine\s*\.\s*(containers|images|networks|volumes|compose|tools|ping|info)\b|\{[^}]*\bengine\b[^}]*\}\s*=\s*(runtime|ctx|current|this)\b|\(\s*\{[^})]*\bengine\b[^})]*\}\s*,|\b(runtime|ctx|current)\.engine\b/;

  it('are held to it by a rule that sees the ways of reaching through', () => {
    for (const line of [
      'await runtime.engine.volumes.remove(v);',
      'pause: async ({ engine }, c) => {',
      'const { engine } = runtime;',
      'const { lab, engine } = ctx.runtime;',
      'await engine.containers.pause(c.id);',
      'new LabRuntime(x, current.engine)',
    ]) {
      expect(REACHING.test(line), line).toBe(true);
    }
    for (const line of ['const runtime = new LabRuntime(lab, opts.engine ?? new DockerEngine());', 'engine?: Engine;', 'await runtime.removeVolume(v);']) {
      expect(REACHING.test(line), line).toBe(false);
    }
  });

  it('reach the engine only through LabRuntime: not in src/lab, not in src/commands', () => {
    const reaching: string[] = [];
    for (const dir of ['src/lab', 'src/commands']) {
      for (const file of sources(join(ROOT, dir))) {
        readFileSync(file, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            if (REACHING.test(line)) reaching.push(`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
          });
      }
    }
    expect(reaching).toEqual([]);
  });
});

describe('every command ends through one path', () => {
  const commands = sources(join(ROOT, 'src/commands')).filter((f) => !f.endsWith('shared.ts') && !f.endsWith('index.ts'));

  it('each action is wrapped by `ends` (its return value is the exit code), and none sets process.exitCode', () => {
    const bare: string[] = [];
    for (const file of commands) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/\.action\(\s*(\S+)/g)) if (!m[1]!.startsWith('ends(')) bare.push(`${relative(ROOT, file)}: .action(${m[1]}`);
      if (/process\.exitCode\s*=/.test(text)) bare.push(`${relative(ROOT, file)} sets process.exitCode`);
    }
    expect(commands.length).toBeGreaterThan(15);
    expect(bare).toEqual([]);
  });
});
