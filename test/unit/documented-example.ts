import { readFileSync } from 'node:fs';

/** The YAML block in docs/configuration.md after the example-spec marker: the documented example is a fixture. */
export function documentedExampleSpec(): string {
  const page = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const m = /<!-- example-spec -->\s*```yaml\n([\s\S]*?)```/.exec(page);
  if (!m) throw new Error('docs/configuration.md has no ```yaml block after <!-- example-spec -->');
  return m[1]!;
}
