// The diagrams in docs/ cannot drift from the code: the layers' diagram is generated from
// docs/architecture.md's list and the imports in src/ (UPDATE_GOLDEN=1 rewrites it), and every name
// the HAProxy and KIND diagrams show is checked against what the renderers write.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { layersOf, sources } from './layers.js';
import { readSpec } from '../../src/config/read.js';
import { leadingServerName, renderHaproxyCfg } from '../../src/render/haproxy.js';
import { kindEtcdEndpoint } from '../../src/render/kind.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const page = (name: string) => join(ROOT, 'docs', name);

/** A Mermaid flowchart of the layers, top to bottom, with an arrow wherever a file of one imports a file of another. */
function layersDiagram(text: string): string {
  const list = layersOf(text);
  const layerOf = (path: string) => list.findIndex((paths) => paths.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p)));
  const label = (i: number) => list[i]!.map((p) => p.replace(/^src\//, '')).join(', ');
  const edges = new Set<string>();
  for (const file of sources(join(ROOT, 'src'))) {
    const from = layerOf(relative(ROOT, file));
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:\bfrom|\bimport)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const to = layerOf(relative(ROOT, resolve(dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
      if (to !== from && to >= 0) edges.add(`  L${from} --> L${to}`);
    }
  }
  return ['```mermaid', 'flowchart TD', ...list.map((_, i) => `  L${i}["${label(i)}"]`), ...[...edges].sort((a, b) => a.localeCompare(b, 'en', { numeric: true })), '```'].join('\n');
}

describe('the diagrams in docs/', () => {
  it("architecture.md: the layers' diagram is the one the code draws", () => {
    const file = page('architecture.md');
    const text = readFileSync(file, 'utf8');
    const block = /<!-- layers: generated -->\n([\s\S]*?)<!-- \/layers -->/.exec(text);
    expect(block, 'architecture.md has the markers').not.toBeNull();
    const wanted = `${layersDiagram(text)}\n`;
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text.replace(block![0], `<!-- layers: generated -->\n${wanted}<!-- /layers -->`));
    else expect(block![1], 'UPDATE_GOLDEN=1 npx vitest run --project unit test/unit/diagrams.test.ts rewrites it').toBe(wanted);
  });

  it("architecture.md: the HAProxy diagram's names are the generated haproxy.cfg's", () => {
    const diagram = /## Where a client's request goes[\s\S]*?```mermaid\n([\s\S]*?)```/.exec(readFileSync(page('architecture.md'), 'utf8'))![1]!;
    const { spec } = readSpec({ name: 'demo', members: 3 });
    const cfg = renderHaproxyCfg(spec);
    for (const line of [
      'frontend etcd_client',
      'backend etcd_members',
      'backend etcd_health',
      'balance roundrobin',
      'option allbackups',
      'on-marked-down shutdown-sessions',
      `server ${leadingServerName('etcd1')} `,
      'server etcd1 ',
      'backup no-check track etcd_health/etcd1',
    ]) {
      expect(cfg, `haproxy.cfg has "${line}"`).toContain(line);
    }
    for (const name of ['etcd_client', 'etcd_members', 'etcd_health', leadingServerName('etcd1'), 'balance roundrobin', 'option allbackups', 'on-marked-down shutdown-sessions']) {
      expect(diagram, `the diagram shows ${name}`).toContain(name);
    }
  });

  it("kind.md: the two endpoints the diagram shows are the ones the KIND config is given", () => {
    const diagram = /```mermaid\n([\s\S]*?)```/.exec(readFileSync(page('kind.md'), 'utf8'))![1]!;
    const { spec } = readSpec({ name: 'demo' });
    expect(kindEtcdEndpoint(spec, 'host', 12379)).toBe('http://host.docker.internal:12379');
    expect(kindEtcdEndpoint(spec, 'network', 12379)).toBe('http://demo-haproxy:2379');
    expect(diagram).toContain('host.docker.internal:CLIENT_PORT');
    expect(diagram).toContain('LAB-haproxy:2379');
  });
});
