// docs/: the generated pages are what the code generates now, and every relative link in
// README.md and docs/ leads to a file that exists and, with an #anchor, to a heading in it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectGolden } from './golden.js';
import { renderCommandReference, renderSpecReference } from './reference.js';
import { buildProgram } from '../../src/cli.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DOCS = join(ROOT, 'docs');
const pages = () => ['README.md', ...readdirSync(DOCS).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];

/** GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to dashes. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]+>/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = !fenced && /^#{1,6}\s+(.*)$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Relative links outside code: [text](target) where target is not a URL. */
function relativeLinks(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/i.test(t));
}

describe('docs/', () => {
  it('the spec reference is generated from the spec’s field definitions', () => {
    expectGolden(join(DOCS, 'spec.md'), renderSpecReference());
  });

  it('the command reference is generated from the CLI’s own help', () => {
    expectGolden(join(DOCS, 'commands.md'), renderCommandReference());
  });

  it("docs/README.md's table at a glance names every command the CLI has", () => {
    const table = readFileSync(join(DOCS, 'README.md'), 'utf8').split('\n').filter((line) => line.startsWith('| `etcd-lab '));
    // A row's first cell: `etcd-lab kill <…>`, or several commands joined by " / " (`pause` / `unpause [member…]`).
    const named = new Set(table.flatMap((row) => row.split('|')[1]!.split(' / ').map((part) => /`(?:etcd-lab )?([a-z-]+)/.exec(part)?.[1])));
    // Hidden ones (the completion script's `__complete`) are for the shell, not for people.
    const shown = buildProgram().commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
    const missing = shown.map((c) => c.name()).filter((name) => !named.has(name));
    expect(missing).toEqual([]);
  });

  it('every relative link in README.md and docs/ resolves, anchors included', () => {
    const broken: string[] = [];
    for (const page of pages()) {
      const text = readFileSync(join(ROOT, page), 'utf8');
      for (const link of relativeLinks(text)) {
        const [path, anchor] = link.split('#') as [string, string | undefined];
        const target = path === '' ? join(ROOT, page) : resolve(dirname(join(ROOT, page)), path);
        if (!existsSync(target)) broken.push(`${page}: ${link} (no such file)`);
        else if (anchor !== undefined && target.endsWith('.md') && !anchorsOf(readFileSync(target, 'utf8')).has(anchor)) broken.push(`${page}: ${link} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('the link check itself: finds a heading GitHub would, and not one that is not there', () => {
    const page = '# Title\n## KIND on the lab’s etcd\n```\n# not a heading\n```\n## Title\n';
    expect([...anchorsOf(page)]).toEqual(['title', 'kind-on-the-labs-etcd', 'title-1']);
    expect(relativeLinks('see [a](docs/a.md#x), `[b](c.md)` and [web](https://x.y)')).toEqual(['docs/a.md#x']);
  });
});
