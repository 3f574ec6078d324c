// `check` at length: many faults of every kind on 3- and 5-member labs, in both TLS modes. `make
// soak` runs 100 faults on each (ETCD_LAB_CHECK_FAULTS=100); CI runs 10 (one of each kind) on the 5-member labs (the
// 3-member ones are in check.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult } from '../../src/lab/check.js';
import type { UpResult } from '../../src/lab/up.js';
import { createTestLab, skipE2E, type TestLab } from './lab-fixture.js';

const FAULTS = Number(process.env.ETCD_LAB_CHECK_FAULTS ?? '10');
const soak = FAULTS > 10;
const labs = [
  { members: 5, tls: false },
  { members: 5, tls: true },
  ...(soak ? [{ members: 3, tls: false }, { members: 3, tls: true }] : []),
];

describe.skipIf(skipE2E).each(labs)('check with $members members, TLS $tls', ({ members, tls }) => {
  let lab: TestLab;
  beforeAll(async () => {
    lab = await createTestLab(`soak${members}${tls ? 't' : ''}`, { members, tls: { enabled: tls } });
    await lab.json<UpResult>(['up']);
  });
  afterAll(async () => lab?.remove());

  it(`${FAULTS} faults of every kind, 8 clients, 2 watchers: no violation`, async () => {
    const r = await lab.cli(['check', '--faults', String(FAULTS), '--hold', '1', '--json']);
    expect(r).toExitWith(0);
    const result = JSON.parse(r.stdout) as CheckResult;
    expect(result.checker.violations).toEqual([]);
    expect(new Set(result.faults.map((f) => f.kind)).size).toBe(Math.min(10, FAULTS));
    const c = result.checker.counts;
    // The figures for the closing note: `make soak` prints them.
    process.stdout.write(
      `check soak: ${members} members, TLS ${tls}: ${result.faults.length} faults, ${c.operations} operations (ok ${c.ok}, failed ${c.failed}, unknown ${c.unknown}: ${c.unknownCommitted} committed), ` +
        `${c.committedRevisions} revisions, ${c.watchEvents} watch events in ${c.watchStreams} streams, longest unavailability ${result.longestUnavailableMs} ms, checked in ${Math.round(result.checker.elapsedMs)} ms, ${Math.round(result.durationMs / 1000)} s in all\n`,
    );
  }, 60_000 + FAULTS * 8_000);
});
