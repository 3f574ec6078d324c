// `etcd-lab check` on a real lab: concurrent clients and watchers through every kind of fault pass
// in both TLS modes; serializable reads from a member cut off from the others are caught as stale
// reads; a saved history checks again, and fails once a change is taken out of it; the report is a
// page a browser draws with its lanes and shaded faults.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { History } from '../../src/checker/history.js';
import type { CheckResult } from '../../src/lab/check.js';
import type { UpResult } from '../../src/lab/up.js';
import { createTestLab, once, skipE2E, type TestLab } from './lab-fixture.js';

const NEMESES = ['kill', 'pause', 'partition', 'leader', 'defrag', 'compact', 'replace', 'loss', 'blackhole', 'delay'];
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

describe.skipIf(skipE2E).each([{ tls: false }, { tls: true }])('etcd-lab check, TLS $tls', ({ tls }) => {
  let lab: TestLab;
  // One run through each kind of fault, which the later tests read.
  const everyFault = once(async () => {
    const r = await lab.cli(['check', '--faults', String(NEMESES.length), '--hold', '1', '--json']);
    expect(r).toExitWith(0);
    return JSON.parse(r.stdout) as CheckResult;
  });

  beforeAll(async () => {
    lab = await createTestLab(tls ? 'checkt' : 'check', { tls: { enabled: tls } });
    await lab.json<UpResult>(['up']);
  });
  afterAll(async () => lab?.remove());

  it('8 clients and 2 watchers through each kind of fault (a member replaced among them): no violation', async () => {
    const result = await everyFault();
    expect(result.checker.violations).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.faults.map((f) => f.kind)).toEqual(NEMESES);
    const c = result.checker.counts;
    expect(c.operations).toBeGreaterThan(500);
    expect(c.committedRevisions).toBeGreaterThan(100);
    expect(c.watchStreams).toBeGreaterThanOrEqual(2);
    // Someone noticed the faults: a call failed or timed out, and no client waited for ever.
    expect(c.failed + c.unknown).toBeGreaterThan(0);
    expect(result.longestUnavailableMs).toBeLessThan(30_000);
    const history = JSON.parse(readFileSync(result.historyFile, 'utf8')) as History;
    expect(new Set(history.operations.map((op) => op.via))).toEqual(new Set(['etcd1', 'etcd2', 'etcd3', 'haproxy', 'control']));
    expect(existsSync(result.reportFile)).toBe(true);
  });

  it('says what it found in words, with exit 0', async () => {
    const r = await lab.cli(['check', '--faults', '1', '--nemesis', 'kill']);
    expect(r).toExitWith(0);
    expect(r.stdout).toMatch(/^fault: kill etcd\d \(\d+–\d+ ms\)$/m);
    expect(r.stdout).toMatch(/^operations: \d+ \(ok \d+, failed \d+, unknown outcome \d+: \d+ committed, \d+ not\); \d+ committed revisions$/m);
    expect(r.stdout).toMatch(/^longest unavailability through HAProxy: \d+ ms$/m);
    expect(r.stdout).toMatch(/^PASS: linearizable/m);
    expect(r.stdout).toMatch(/^report: .*check-.*\.html$/m);
  });

  it('serializable reads from a member cut off from the others: stale, which etcd allows, counted; no violation', async () => {
    const r = await lab.cli(['check', '--reads', 'serializable', '--nemesis', 'partition', '--faults', '2', '--hold', '3']);
    expect(r).toExitWith(0);
    expect(r.stdout).toMatch(/; [1-9]\d* serializable reads answered from an older state \(allowed\)$/m);
    expect(r.stdout).toMatch(/^PASS: /m);
  });

  // Kubernetes' storage traffic and lease traffic, through one of each kind of fault.
  if (!tls || process.env.ETCD_LAB_CHECK_TRAFFIC_BOTH_MODES === '1') {
    for (const traffic of ['kubernetes', 'leases']) {
      it(`--traffic ${traffic}: through each kind of fault, no violation`, async () => {
        const r = await lab.cli(['check', '--traffic', traffic, '--faults', String(NEMESES.length), '--hold', '1', '--json']);
        expect(r).toExitWith(0);
        const result = JSON.parse(r.stdout) as CheckResult;
        expect(result.checker.violations).toEqual([]);
        expect(result.faults.map((f) => f.kind)).toEqual(NEMESES);
        const history = JSON.parse(readFileSync(result.historyFile, 'utf8')) as History;
        expect(history.traffic).toBe(traffic);
        // The traffic's own operations (the workload's end marker, a put, is the control client's).
        const ops = new Set(history.operations.filter((op) => op.via !== 'control').map((op) => op.request.op));
        if (traffic === 'kubernetes') {
          expect(ops).toEqual(new Set(['get', 'list', 'txn']));
          // Paged lists at one revision, reads of the past, guarded deletes: what the storage layer sends.
          expect(history.operations.some((op) => op.request.op === 'list' && op.request.start !== undefined && op.request.revision !== undefined)).toBe(true);
          expect(history.operations.some((op) => op.request.op === 'get' && op.request.revision !== undefined)).toBe(true);
          expect(history.operations.some((op) => op.request.op === 'txn' && op.request.success.some((o) => o.op === 'delete') && op.response?.op === 'txn' && op.response.succeeded)).toBe(true);
        } else {
          expect(ops).toEqual(new Set(['lease-grant', 'lease-keepalive', 'lease-revoke', 'put', 'delete', 'get']));
          // Leases left alone expired, and took their keys: checked against their TTLs.
          expect(result.checker.counts.leaseExpiries).toBeGreaterThan(0);
        }
      });
    }
  }

  it('--verify checks a saved history again without the lab, and fails once a committed change is taken out of it', async () => {
    const result = await everyFault();
    const again = await lab.cli(['check', '--verify', result.historyFile, '--json']);
    expect(again).toExitWith(0);
    expect((JSON.parse(again.stdout) as CheckResult).checker.counts).toEqual(result.checker.counts);

    const history = JSON.parse(readFileSync(result.historyFile, 'utf8')) as History;
    const victim = history.operations.find((op) => op.request.op === 'put' && op.outcome === 'ok')!;
    for (const w of history.watches) w.events = w.events.filter((e) => e.revision !== victim.response!.revision);
    const damaged = join(lab.dir, 'damaged.json');
    writeFileSync(damaged, JSON.stringify(history));
    const r = await lab.cli(['check', '--verify', damaged]);
    expect(r).toExitWith(5);
    expect(r.stdout).toContain(`VIOLATION lost-write: c${victim.client}→${victim.via} put ${victim.request.op === 'put' ? victim.request.key : ''}`);

    const missing = await lab.cli(['check', '--verify', 'no-such-history.json']);
    expect(missing).toExitWith(2);
    expect(missing.stderr).toMatch(/no-such-history\.json does not exist/);
  });

  // Once, in plain mode: the page does not depend on TLS.
  if (!tls) it('the report in a browser: a lane per client and the faults shaded', async () => {
    expect(statSync(CHROMIUM, { throwIfNoEntry: false }), `no Chromium at ${CHROMIUM}: run scripts/setup-host.sh --browser, or set CHROMIUM`).toBeDefined();
    const result = await everyFault();
    const profile = mkdtempSync(join(tmpdir(), 'etcd-lab-chromium-'));
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'check-report.png');
    try {
      await promisify(execFile)(
        CHROMIUM,
        ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', `--user-data-dir=${profile}`, '--window-size=1440,900', `--screenshot=${shot}`, `file://${result.reportFile}`],
        { timeout: 60_000 },
      );
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
    const png = PNG.sync.read(readFileSync(shot));
    // Count the pixels of each colour the page draws with: ok operations (green), the watch streams
    // (blue) and the fault shading (grey over white).
    const count = (r: number, g: number, b: number, within = 12) => {
      let n = 0;
      for (let i = 0; i < png.data.length; i += 4) if (Math.abs(png.data[i]! - r) < within && Math.abs(png.data[i + 1]! - g) < within && Math.abs(png.data[i + 2]! - b) < within) n++;
      return n;
    };
    expect(count(0x43, 0xa0, 0x47), 'green: ok operations').toBeGreaterThan(2000);
    expect(count(0x1e, 0x88, 0xe5), 'blue: watch streams').toBeGreaterThan(500);
    // rgba(120,120,120,0.18) over white is (231,231,231): six fault windows, each lanes high.
    expect(count(231, 231, 231, 4), 'grey: faults shaded').toBeGreaterThan(5000);
  });
});
