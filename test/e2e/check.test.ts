// `etcd-lab check` passes on a healthy lab, and its verdict fails when an acknowledged write is gone.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult } from '../../src/lab/check.js';
import type { UpResult } from '../../src/lab/up.js';
import { deleteKey, getKey, type Endpoint } from '../../src/runtime/etcd-http.js';
import type { WriteOp } from '../../src/runtime/history.js';
import { clientOf, createTestLab, once, skipE2E, type TestLab } from './lab-fixture.js';

describe.skipIf(skipE2E).each([{ tls: false }, { tls: true }])('etcd-lab check, TLS $tls', ({ tls }) => {
  let lab: TestLab;
  let endpoint: Endpoint;
  // The first check's result, which the last test damages a write of.
  const firstCheck = once(async () => {
    const r = await lab.cli(['check', '--faults', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as CheckResult;
  });

  beforeAll(async () => {
    lab = await createTestLab(tls ? 'checkt' : 'check', { tls: { enabled: tls } });
    endpoint = clientOf(lab, (await lab.json<UpResult>(['up'])).clientEndpoint);
  });
  afterAll(async () => lab?.remove());

  it('passes on a healthy lab through leader kills and a minority partition', async () => {
    const result = await firstCheck();
    expect(result.verdict.ok).toBe(true);
    expect(result.faults).toHaveLength(3);
    expect(result.faults[0]).toMatch(/^kill etcd\d → etcd\d leads after \d+ ms$/);
    expect(result.faults[1]).toMatch(/^partition etcd\d/);
    expect(result.verdict.counts.acknowledged).toBeGreaterThan(50);
    // The writer waits out the election the leader's kill caused: at least what the kill reported,
    // less how late its poll can see a new leader (every 100 ms, each status up to 500 ms); and no
    // client waits there for ever.
    const electionMs = Number(/leads after (\d+) ms$/.exec(result.faults[0]!)![1]);
    expect(result.verdict.longestGapMs).toBeGreaterThanOrEqual(electionMs - 600);
    expect(result.verdict.longestGapMs).toBeLessThan(30_000);
    // The people's output says the same.
    const again = await lab.cli(['check', '--faults', '1']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/writes: \d+ \(acknowledged \d+, failed \d+, unknown outcome \d+\)/);
    expect(again.stdout).toMatch(/longest gap between acknowledged writes: \d+ ms/);
    expect(again.stdout).toMatch(/^PASS:/m);
  });

  it('--verify with a file that is not a saved history says so', async () => {
    const missing = await lab.cli(['check', '--verify', 'no-such-history.json']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no-such-history\.json does not exist/);
    expect(missing.stderr).not.toMatch(/bug in etcd-lab/);
  });

  it('fails when an acknowledged write has disappeared', async () => {
    const result = await firstCheck();
    const history = JSON.parse(readFileSync(result.historyFile, 'utf8')) as { writes: WriteOp[] };
    const victim = history.writes.find((w) => w.outcome === 'ok')!;
    expect(await getKey(endpoint, victim.key)).toBe(victim.value);
    await deleteKey(endpoint, victim.key);

    const r = await lab.cli(['check', '--verify', result.historyFile, '--json']);
    expect(r.code).toBe(5);
    const verdict = (JSON.parse(r.stdout) as CheckResult).verdict;
    expect(verdict.ok).toBe(false);
    expect(verdict.lost).toEqual([{ key: victim.key, value: victim.value }]);

    const human = await lab.cli(['check', '--verify', result.historyFile]);
    expect(human.code).toBe(5);
    expect(human.stdout).toContain(`PROBLEM lost: ${victim.key}`);
    expect(human.stdout).toMatch(/^FAIL: 1 problem$/m);
  });
});
