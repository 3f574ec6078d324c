// The lab's event log: every fault and procedure an etcd-lab command ran on the lab, with its start
// and end, one JSON line each in generated/events.jsonl. Any number of processes append to it at
// once (each line is one write on a file opened for appending, which the kernel never interleaves),
// and a reader tolerates a line torn by a process killed half-way.
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

export const EVENT_LOG_FILE = 'events.jsonl';

export interface LabEvent {
  /** Milliseconds since the epoch. */
  at: number;
  /** One operation's start, end and points share it. */
  id: string;
  phase: 'start' | 'end' | 'point';
  /** What ran: a command's name (kill, scale, snapshot restore, check …). */
  op: string;
  /** On what, in words: "etcd2 (the leader, term 3)", "3 → 5 members". */
  detail?: string;
  /** The end: whether it did what it was asked; and if not, why. */
  ok?: boolean;
  error?: string;
  pid: number;
}

export function eventLogPath(outDir: string): string {
  return join(outDir, EVENT_LOG_FILE);
}

/**
 * Appends one event. A file whose last line was torn (its writer killed mid-write) first gets the
 * line ended, so the new event stands on a line of its own. Never throws: a lab works on without
 * its log (a read-only checkout, a full disk), and says so nowhere else.
 */
export function appendEvent(outDir: string, event: Omit<LabEvent, 'at' | 'pid'> & { at?: number }): void {
  const line = `${JSON.stringify({ at: Date.now(), pid: process.pid, ...event })}\n`;
  let fd: number | undefined;
  try {
    fd = openSync(eventLogPath(outDir), 'a+');
    const size = fstatSync(fd).size;
    let lead = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      if (last.toString() !== '\n') lead = '\n';
    }
    writeSync(fd, lead + line);
  } catch {
    // The log is a picture of what happened, not a condition of doing it.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

let counter = 0;

/** An id unique among this lab's events: the process, the moment, a counter. */
export function newEventId(): string {
  return `${process.pid.toString(36)}-${Date.now().toString(36)}-${(counter++).toString(36)}`;
}

/** The events on whole lines; a line that does not parse (torn, or written by hand) is counted, not fatal. */
export function parseEvents(text: string): { events: LabEvent[]; skipped: number } {
  const events: LabEvent[] = [];
  let skipped = 0;
  const lines = text.split('\n');
  // The last piece has no newline yet: a write under way, or one torn; it is read when whole.
  const partial = lines.pop();
  if (partial) skipped++;
  for (const line of lines) {
    if (line.trim() === '') continue;
    try {
      const e = JSON.parse(line) as LabEvent;
      if (typeof e.at === 'number' && typeof e.op === 'string' && typeof e.id === 'string' && ['start', 'end', 'point'].includes(e.phase)) events.push(e);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  return { events, skipped };
}

/**
 * Follows the log from an offset: each call reads what whole lines were added since. A log removed
 * or cut shorter (a new `generate`, or by hand) is read again from its start.
 */
export class EventLogReader {
  private offset = 0;

  constructor(private readonly path: string) {}

  async read(): Promise<LabEvent[]> {
    const file = await open(this.path, 'r').catch(() => undefined);
    if (!file) {
      this.offset = 0;
      return [];
    }
    try {
      const { size } = await file.stat();
      if (size < this.offset) this.offset = 0;
      if (size === this.offset) return [];
      const buffer = Buffer.alloc(size - this.offset);
      await file.read(buffer, 0, buffer.length, this.offset);
      // Up to the last newline, counted in bytes (a line of bad UTF-8 must not shift the offset).
      const whole = buffer.lastIndexOf(0x0a) + 1;
      this.offset += whole;
      return parseEvents(buffer.subarray(0, whole).toString('utf8')).events;
    } finally {
      await file.close();
    }
  }
}

/**
 * Records an operation as a start and an end (ok, or the error's first line) around `work`; its
 * points (`mark`) in between carry the same id.
 */
export async function recorded<T>(outDir: string, op: string, detail: string | undefined, work: (mark: (detail: string) => void) => Promise<T>): Promise<T> {
  const id = newEventId();
  appendEvent(outDir, { id, phase: 'start', op, ...(detail ? { detail } : {}) });
  running.set(id, { outDir, op });
  endOnExit();
  try {
    const result = await work((d) => appendEvent(outDir, { id, phase: 'point', op, detail: d }));
    appendEvent(outDir, { id, phase: 'end', op, ok: true });
    return result;
  } catch (error) {
    appendEvent(outDir, { id, phase: 'end', op, ok: false, error: String((error as Error)?.message ?? error).split('\n')[0]!.slice(0, 200) });
    throw error;
  } finally {
    running.delete(id);
  }
}

/** Operations of this process under way: a process that exits mid-way (Ctrl-C twice) still writes their end. */
const running = new Map<string, { outDir: string; op: string }>();
let exitHooked = false;

function endOnExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', (code) => {
    for (const [id, { outDir, op }] of running) appendEvent(outDir, { id, phase: 'end', op, ok: false, error: `the process exited (code ${code}) before it finished` });
  });
}
