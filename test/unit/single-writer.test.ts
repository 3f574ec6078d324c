// The single writer's verdict (what tests that run an operation under writes rely on) must be able
// to fail: doctored histories. And how a failed call is classified, for `check`'s clients too.
import { describe, expect, it } from 'vitest';
import { classifyWriteError } from '../../src/runtime/clients.js';
import { verifyHistory, type WriteOp } from '../single-writer.js';

function history(n: number): WriteOp[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `k${i}`,
    value: `v${i}`,
    startMs: i * 100,
    endMs: i * 100 + 10,
    outcome: 'ok' as const,
    revision: i + 2,
  }));
}

const stored = (writes: WriteOp[]) => new Map(writes.map((w) => [w.key, w.value]));

describe('verifyHistory', () => {
  it('passes a clean history and counts it', () => {
    const writes = history(5);
    writes.push({ key: 'k5', value: 'v5', startMs: 600, endMs: 1600, outcome: 'unknown' });
    writes.push({ key: 'k6', value: 'v6', startMs: 1700, endMs: 1710, outcome: 'failed' });
    const values = stored(history(5));
    values.set('k5', 'v5'); // an unknown write that committed after all: allowed
    const verdict = verifyHistory(writes, values);
    expect(verdict.ok).toBe(true);
    expect(verdict.counts).toEqual({ writes: 7, acknowledged: 5, failed: 1, unknown: 1 });
    expect(verdict.longestGapMs).toBe(100);
  });

  it('fails on a lost acknowledged write', () => {
    const writes = history(5);
    const values = stored(writes);
    values.delete('k3');
    const verdict = verifyHistory(writes, values);
    expect(verdict.ok).toBe(false);
    expect(verdict.lost).toEqual([{ key: 'k3', value: 'v3' }]);
    expect(verdict.problems.join()).toMatch(/lost: k3/);
  });

  it('fails on a wrong value, even for an unacknowledged write that committed', () => {
    const writes = history(3);
    writes.push({ key: 'k3', value: 'v3', startMs: 300, endMs: 900, outcome: 'unknown' });
    const values = stored(writes);
    values.set('k1', 'tampered');
    values.set('k3', 'other');
    const verdict = verifyHistory(writes, values);
    expect(verdict.ok).toBe(false);
    expect(verdict.wrong.map((w) => w.key).sort()).toEqual(['k1', 'k3']);
  });

  it('fails when revisions go backwards', () => {
    const writes = history(4);
    writes[2]!.revision = 2;
    const verdict = verifyHistory(writes, stored(writes));
    expect(verdict.ok).toBe(false);
    expect(verdict.revisionRegressions).toEqual([{ key: 'k2', revision: 2, previous: 3 }]);
  });

  it('measures the longest gap between acknowledgements', () => {
    const writes = history(3);
    writes[2]!.endMs = 5000;
    expect(verifyHistory(writes, stored(writes)).longestGapMs).toBe(5000 - 110);
  });
});

describe('classifyWriteError', () => {
  it('only refusals before raft count as failed; the rest is unknown', () => {
    expect(classifyWriteError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:2379'), { code: 'ECONNREFUSED' })).outcome).toBe('failed');
    expect(classifyWriteError(new Error('/v3/kv/put: HTTP 503 {"error":"etcdserver: no leader"}')).outcome).toBe('failed');
    expect(classifyWriteError(Object.assign(new Error('deadline'), { name: 'TimeoutError' })).outcome).toBe('unknown');
    expect(classifyWriteError(new Error('etcdserver: request timed out')).outcome).toBe('unknown');
    expect(classifyWriteError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })).outcome).toBe('unknown');
  });
});
