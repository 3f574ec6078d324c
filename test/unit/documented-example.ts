import { readFileSync } from 'node:fs';

/** The YAML block in docs/getting-started.md after the example-spec marker: the documented example is a fixture. */
export function documentedExampleSpec(): string {
  const page = readFileSync(new URL('../../docs/getting-started.md', import.meta.url), 'utf8');
  const m = /<!-- example-spec -->\s*```yaml\n([\s\S]*?)```/.exec(page);
  if (!m) throw new Error('docs/getting-started.md has no ```yaml block after <!-- example-spec -->');
  return m[1]!;
}
