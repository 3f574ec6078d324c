// The lab's event log: many writers at once lose nothing, a torn last line costs only itself, and a
// reader follows whole lines only.
import { execFile } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendEvent, EventLogReader, eventLogPath, parseEvents, recorded } from '../../src/runtime/event-log.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'etcd-lab-events-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const read = () => parseEvents(readFileSync(eventLogPath(dir), 'utf8'));

describe('the event log', () => {
  it('keeps every event of 8 processes appending 250 each at once, each on a line of its own', async () => {
    // The built module, as the lock test uses it: these are real processes (npm test builds first).
    const module = new URL('../../dist/runtime/event-log.js', import.meta.url).href;
    const writer = `import { appendEvent } from ${JSON.stringify(module)};
      for (let i = 0; i < 250; i++) appendEvent(process.argv[1], { id: 'w' + process.pid + '-' + i, phase: 'point', op: 'kill', detail: 'x'.repeat(i % 7 * 100) });`;
    await Promise.all(
      Array.from({ length: 8 }, () => promisify(execFile)(process.execPath, ['--input-type=module', '-e', writer, dir])),
    );
    const { events, skipped } = read();
    expect(skipped).toBe(0);
    expect(events).toHaveLength(2000);
    expect(new Set(events.map((e) => e.id)).size).toBe(2000);
    expect(new Set(events.map((e) => e.pid)).size).toBe(8);
  }, 60_000);

  it('a line torn by a writer killed half-way costs only that line: the next event ends it and stands on its own', () => {
    appendEvent(dir, { id: 'a', phase: 'start', op: 'scale', detail: 'to 5 members' });
    appendFileSync(eventLogPath(dir), '{"at":1,"id":"b","phase":"st');
    appendEvent(dir, { id: 'a', phase: 'end', op: 'scale', ok: true });
    const { events, skipped } = read();
    expect(events.map((e) => `${e.id} ${e.phase}`)).toEqual(['a start', 'a end']);
    expect(skipped).toBe(1);
  });

  it('a reader takes whole lines only, the rest once it is whole, and starts again when the log is cut', async () => {
    const reader = new EventLogReader(eventLogPath(dir));
    expect(await reader.read()).toEqual([]); // no log yet
    appendEvent(dir, { id: 'a', phase: 'point', op: 'kill', detail: 'etcd1' });
    const line = JSON.stringify({ at: 5, id: 'b', phase: 'point', op: 'pause', pid: 1 });
    appendFileSync(eventLogPath(dir), line.slice(0, 10));
    expect((await reader.read()).map((e) => e.id)).toEqual(['a']);
    appendFileSync(eventLogPath(dir), `${line.slice(10)}\n`);
    expect((await reader.read()).map((e) => e.id)).toEqual(['b']);
    expect(await reader.read()).toEqual([]);
    writeFileSync(eventLogPath(dir), `${JSON.stringify({ at: 6, id: 'c', phase: 'point', op: 'heal', pid: 1 })}\n`);
    expect((await reader.read()).map((e) => e.id)).toEqual(['c']);
  });

  it('records an operation as its start and its end, with the error when it fails', async () => {
    await recorded(dir, 'leader', 'to etcd2', async (mark) => mark('etcd1 → etcd2'));
    await expect(recorded(dir, 'scale', 'to 5 members', async () => Promise.reject(new Error('member add refused\nmore')))).rejects.toThrow('member add refused');
    const { events } = read();
    expect(events.map((e) => [e.op, e.phase, e.detail ?? e.error ?? (e.ok === undefined ? '' : String(e.ok))])).toEqual([
      ['leader', 'start', 'to etcd2'],
      ['leader', 'point', 'etcd1 → etcd2'],
      ['leader', 'end', 'true'],
      ['scale', 'start', 'to 5 members'],
      ['scale', 'end', 'member add refused'],
    ]);
    expect(new Set(events.slice(0, 3).map((e) => e.id)).size).toBe(1);
  });

  it('a process that exits mid-operation (Ctrl-C twice) still writes the operation\'s end', async () => {
    const module = new URL('../../dist/runtime/event-log.js', import.meta.url).href;
    const script = `import { recorded } from ${JSON.stringify(module)};
      void recorded(process.argv[1], 'scale', 'to 5 members', () => new Promise(() => setTimeout(() => process.exit(130), 50)));`;
    await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, dir]).catch(() => {});
    const { events } = read();
    expect(events.map((e) => `${e.phase} ${e.op} ${e.ok ?? ''}`.trim())).toEqual(['start scale', 'end scale false']);
    expect(events[1]!.error).toContain('exited (code 130)');
  });

  it('a log that cannot be written (no generated/ yet) costs the command nothing', () => {
    expect(() => appendEvent(join(dir, 'missing'), { id: 'x', phase: 'point', op: 'kill' })).not.toThrow();
  });
});
