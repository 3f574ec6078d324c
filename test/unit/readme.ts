import { readFileSync } from 'node:fs';

/** The YAML block in README.md between the example-spec markers: the README's example is a fixture. */
export function readmeExampleSpec(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const m = /<!-- example-spec -->\s*```yaml\n([\s\S]*?)```/.exec(readme);
  if (!m) throw new Error('README.md has no ```yaml block after <!-- example-spec -->');
  return m[1]!;
}
