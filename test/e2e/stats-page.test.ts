// The HAProxy stats page as a person sees it, in a real browser (headless Chromium): with a member
// down, its row says DOWN. A screenshot is kept in test-artifacts/.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpResult } from '../../src/lab/up.js';
import type { LabStatus } from '../../src/runtime/status.js';
import { createTestLab, skipE2E, type TestLab } from './lab-fixture.js';

const run = promisify(execFile);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

/** Headless Chromium as this machine allows it: no sandbox as root, no background networking. */
async function chromium(profile: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      ...args,
    ],
    { timeout: 60_000, maxBuffer: 32 * 1024 * 1024 },
  );
  return stdout;
}

describe.skipIf(skipE2E)('the stats page in a browser', () => {
  let lab: TestLab;
  let profile: string;
  beforeAll(async () => {
    expect(statSync(CHROMIUM, { throwIfNoEntry: false }), `no Chromium at ${CHROMIUM}: run scripts/setup-host.sh --browser, or set CHROMIUM`).toBeDefined();
    profile = mkdtempSync(join(tmpdir(), 'etcd-lab-chromium-'));
    lab = await createTestLab('stats');
    await lab.json<UpResult>(['up']);
  });
  afterAll(async () => {
    await lab?.remove();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('shows a killed member DOWN, and the others UP', async () => {
    const status = await lab.json<LabStatus>(['status']);
    const victim = status.members.find((m) => !m.isLeader)!.name;
    await lab.json(['kill', victim]);
    // Wait (bounded) until HAProxy itself has marked it DOWN.
    const deadline = Date.now() + 15_000;
    let s = await lab.json<LabStatus>(['status']);
    while (s.members.find((m) => m.name === victim)!.backend !== 'DOWN' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      s = await lab.json<LabStatus>(['status']);
    }

    const env = readFileSync(join(lab.dir, 'generated/.env'), 'utf8');
    const user = /^ETCD_LAB_STATS_USER=(.*)$/m.exec(env)![1];
    const password = /^ETCD_LAB_STATS_PASSWORD=(.*)$/m.exec(env)![1];
    const url = `http://${user}:${password}@127.0.0.1:${lab.statsPort}/stats`;

    const dom = await chromium(profile, '--dump-dom', url);
    // A server's row runs from its <tr> to the next server's anchor; hover tips (nested tables) aside,
    // its text is what a person reads, and its class is how the page colours it.
    const row = (member: string) => {
      const anchor = dom.indexOf(`<a name="etcd_members/${member}">`);
      expect(anchor, `no row for ${member} on the stats page`).toBeGreaterThan(0);
      const start = dom.lastIndexOf('<tr', anchor);
      const next = dom.indexOf('<a name="etcd_members/', anchor + 1);
      const html = dom.slice(start, next > 0 ? dom.lastIndexOf('<tr', next) : dom.indexOf('</table>', anchor));
      const text = html.replace(/<div class="tips">[\s\S]*?<\/div>/g, ' ').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
      return { cls: /^<tr class="([^"]+)"/.exec(html)?.[1] ?? '', text };
    };
    // Each member has two rows: under its own name (a backup: used while no member leads) and as
    // `-leading` (the leader's route, where clients go). The page colours each by its state.
    expect(row(victim).text, `row of ${victim}`).toMatch(/\bDOWN\b/);
    expect(row(victim).cls).toBe('backup_down');
    for (const m of s.members.filter((x) => x.name !== victim)) {
      expect(row(m.name).text, `row of ${m.name}`).toMatch(/\bUP\b/);
      expect(row(m.name).cls).toBe('backup_up');
    }
    expect(s.leader).toBeDefined();
    for (const m of s.members) {
      const route = row(`${m.name}-leading`);
      expect(route.text, `row of ${m.name}-leading`).toMatch(m.name === s.leader ? /\bUP\b/ : /\bDOWN\b/);
      expect(route.cls).toBe(m.name === s.leader ? 'active_up' : 'active_down');
    }

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, `stats-page-${victim}-down.png`);
    await chromium(profile, '--window-size=1400,1000', `--screenshot=${shot}`, url);
    expect(statSync(shot).size).toBeGreaterThan(10_000);
  });
});
