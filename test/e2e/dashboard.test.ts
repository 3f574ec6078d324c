// `etcd-lab dashboard` as a person uses it, in a real browser (Debian's Chromium driven by
// playwright-core; no browser download): a lab up, the page open, "kill leader" pressed — the new
// leader, the event and the stretch without a leader appear; a kill from another terminal appears
// too; `etcd-lab down` ends the dashboard by itself. A screenshot is kept in test-artifacts/
// (UPDATE_SCREENSHOTS=1 also writes docs/images/dashboard.png).
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpResult } from '../../src/lab/up.js';
import { parseEvents } from '../../src/runtime/event-log.js';
import { readFileSync } from 'node:fs';
import { createTestLab, skipE2E, spawnCli, type RunningCli, type TestLab } from './lab-fixture.js';

/** The page's document as the functions run in the browser see it (this project's types have no DOM). */
interface Node {
  textContent: string | null;
}
declare const document: { querySelector(selector: string): Node | null; querySelectorAll(selector: string): Iterable<Node> };

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const DOCS_IMAGE = fileURLToPath(new URL('../../docs/images/dashboard.png', import.meta.url));

describe.skipIf(skipE2E)('the dashboard in a browser', () => {
  let lab: TestLab;
  let server: RunningCli;
  let browser: Browser;
  let page: Page;
  let url: string;

  beforeAll(async () => {
    expect(statSync(CHROMIUM, { throwIfNoEntry: false }), `no Chromium at ${CHROMIUM}: run scripts/setup-host.sh --browser, or set CHROMIUM`).toBeDefined();
    lab = await createTestLab('dash');
    await lab.json<UpResult>(['up']);
    server = spawnCli(lab.dir, ['dashboard', '--probe', '--json']);
    await server.waitFor(/"url"/, 30_000);
    url = (JSON.parse(server.output().split('\n').find((l) => l.includes('"url"'))!) as { url: string }).url;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    server?.child.kill('SIGINT');
    await server?.exited;
    await lab?.remove();
  });

  const text = (selector: string) => page.locator(selector).first().textContent();

  it('shows the members and who leads', async () => {
    await page.goto(url);
    await page.waitForFunction(() => !['…', 'none', ''].includes(document.querySelector('#leader')?.textContent ?? ''), undefined, { timeout: 20_000 });
    expect(await page.locator('#members tbody tr').count()).toBe(3);
    expect(await page.locator('#members tr[data-role="leader"]').count()).toBe(1);
    expect(await page.locator('#members tr[data-role="follower"]').count()).toBe(2);
    expect(await text('#routes')).toBe(await text('#leader'));
  });

  it('"kill leader": the election, the new leader, HAProxy\'s switch and the event appear on the page', async () => {
    const before = (await text('#leader'))!;
    await page.click('#kill-leader');
    await page.waitForFunction((old) => {
      const now = document.querySelector('#leader')?.textContent ?? '';
      return now !== old && !['…', 'none', ''].includes(now);
    }, before, { timeout: 30_000 });
    const after = (await text('#leader'))!;
    await page.waitForFunction((leader) => document.querySelector('#routes')?.textContent === leader, after, { timeout: 15_000 });
    await expect.poll(() => text('#toast'), { timeout: 20_000 }).toContain(`${before}: SIGKILL`);
    expect(await page.locator(`#members tr[data-member="${before}"]`).getAttribute('data-role')).toBe('down');
    // The moment of the kill, on the list and on the timeline, and the stretch without a leader after it.
    await page.waitForSelector('#events li[data-event="kill"]', { timeout: 10_000 });
    expect(await page.locator('#events li[data-event="kill"]').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining(`${before} (the leader, term`)]));
    await page.waitForSelector('#timeline rect[data-gap]', { timeout: 10_000 });
    const gapMs = Number(await page.locator('#timeline rect[data-gap]').last().getAttribute('data-gap'));
    expect(gapMs).toBeGreaterThan(0);
    expect(gapMs).toBeLessThan(15_000);
    expect(await page.locator('#leaders li').first().getAttribute('data-leader')).toBe(after);
    // HAProxy's switch on the timeline: its lane routes to the old leader, then to the new one.
    const routes = await page.locator('#timeline rect[data-routes]').evaluateAll((rects) => rects.map((r) => (r as unknown as { getAttribute(n: string): string }).getAttribute('data-routes')));
    expect(routes.indexOf(before)).toBeGreaterThanOrEqual(0);
    expect(routes.lastIndexOf(after)).toBeGreaterThan(routes.indexOf(before));
    // The killed member's lane turns to "down" on the timeline.
    await page.waitForSelector('#timeline rect[data-role="down"]', { timeout: 10_000 });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.waitForTimeout(2000); // a little of the new leader's time on the timeline
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png') });
    if (process.env.UPDATE_SCREENSHOTS === '1') copyFileSync(join(ARTIFACTS, 'dashboard.png'), DOCS_IMAGE);
  }, 90_000);

  it('a kill from another terminal appears there too, its start and end in the lab\'s own log', async () => {
    const victim = await page.locator('#members tr[data-role="follower"]').first().getAttribute('data-member');
    const killed = await lab.cli(['kill', victim!]);
    expect(killed.code, killed.stderr).toBe(0);
    await page.waitForFunction((v) => [...document.querySelectorAll('#events li[data-event="kill"]')].some((li) => li.textContent?.includes(`${v}`) && !li.textContent.includes('leader')), victim, { timeout: 10_000 });
    // Both kills are in the lab's own log, with their start and end.
    const { events } = parseEvents(readFileSync(join(lab.dir, 'generated', 'events.jsonl'), 'utf8'));
    expect(events.filter((e) => e.op === 'kill' && e.phase === 'end' && e.ok).length).toBe(2);
    const started = await lab.cli(['start']);
    expect(started.code, started.stderr).toBe(0);
  }, 60_000);

  it('stops by itself when the lab goes down', async () => {
    const down = await lab.cli(['down']);
    expect(down.code, down.stderr).toBe(0);
    const ended = await server.exited;
    expect(ended.code, ended.stderr).toBe(0);
    expect(ended.stdout).toContain('the lab went down');
    await page.waitForFunction(() => document.querySelector('#connection')?.textContent?.includes('the lab went down'), undefined, { timeout: 10_000 });
  }, 60_000);
});
