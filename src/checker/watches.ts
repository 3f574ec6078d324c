// The watch streams: each one's shape (in order, no duplicates, one response per revision), the
// log of committed revisions they agree on, and whether every revision reached every stream that
// should have delivered it (reliability, resumption, compaction).
import type { History, WatchEvent, WatchStream } from './history.js';
import { byBytes } from './model.js';
import { eventText, Findings, lowerBound, sameEvent, type Commit } from './findings.js';

function wants(stream: WatchStream, e: { key: string; type: 'put' | 'delete' }): boolean {
  if (stream.prefix !== undefined && !e.key.startsWith(stream.prefix)) return false;
  return !((stream.filter === 'noput' && e.type === 'put') || (stream.filter === 'nodelete' && e.type === 'delete'));
}

/** The revisions a stream promises to have delivered in full: [from, to]. A compacted stream: up to its last event. */
function coverage(stream: WatchStream): [number, number] {
  const progressed = Math.max(0, ...(stream.progress ?? []).map((p) => p.revision));
  if (stream.end === 'closed' && stream.upToRevision !== undefined) return [stream.fromRevision, Math.max(stream.upToRevision, progressed)];
  const last = stream.events.at(-1)?.revision ?? stream.fromRevision - 1;
  return [stream.fromRevision, Math.max(last, progressed)];
}

/** Each stream on its own: ordered, no duplicates, one revision per response, progress notifications kept. */
function checkStreamShape(stream: WatchStream, findings: Findings): void {
  const seen = new Set<string>();
  const batchOf = new Map<number, number>();
  let last = 0;
  const where = `watch ${stream.id} (${stream.via})`;
  for (const e of stream.events) {
    if (e.revision < last) findings.add('watch-order', `${where} delivered revision ${e.revision} after ${last}`, [], [stream.id], e.revision);
    last = Math.max(last, e.revision);
    const id = `${e.revision}/${e.key}`;
    if (seen.has(id)) findings.add('watch-duplicate', `${where} delivered ${eventText(e)} at revision ${e.revision} twice`, [], [stream.id], e.revision);
    seen.add(id);
    const batch = batchOf.get(e.revision);
    if (batch !== undefined && batch !== e.batch) findings.add('watch-order', `${where} split revision ${e.revision} over two responses`, [], [stream.id], e.revision);
    batchOf.set(e.revision, e.batch);
    if (e.revision < stream.fromRevision) findings.add('watch-order', `${where} asked from revision ${stream.fromRevision} and got ${e.revision}`, [], [stream.id], e.revision);
    if (e.type === 'put' && e.modRevision !== e.revision) findings.add('watch-event', `${where}: ${eventText(e)} at revision ${e.revision} says its mod_revision is ${e.modRevision}`, [], [stream.id], e.revision);
    if (!wants(stream, e)) findings.add('watch-order', `${where} delivered ${eventText(e)}, which it did not ask for (${stream.prefix !== undefined ? `prefix ${stream.prefix}` : ''}${stream.filter ? ` ${stream.filter}` : ''})`, [], [stream.id], e.revision);
  }
  // "Everything up to R has been sent": nothing at or below R may come after it.
  for (const p of stream.progress ?? []) {
    const late = stream.events.find((e) => e.batch > p.batch && e.revision <= p.revision);
    if (late) findings.add('watch-order', `${where} said at ${Math.round(p.atMs)} ms that it had sent everything up to revision ${p.revision}, then delivered ${eventText(late)} at revision ${late.revision}`, [], [stream.id], late.revision);
  }
}

/** The committed changes, from every stream; streams that see a revision must agree on it. */
export function buildLog(history: History, findings: Findings): Map<number, Commit> {
  const log = new Map<number, Commit>();
  for (const stream of history.watches) {
    checkStreamShape(stream, findings);
    const byRevision = new Map<number, WatchEvent[]>();
    for (const e of stream.events) {
      const events = byRevision.get(e.revision) ?? [];
      // A duplicate is reported above; it is not a second change.
      if (!events.some((x) => sameEvent(x, e))) byRevision.set(e.revision, [...events, e]);
    }
    for (const [revision, events] of byRevision) {
      const known = log.get(revision);
      if (!known) {
        log.set(revision, { revision, events: [...events].sort((a, b) => byBytes(a.key, b.key)), stream: stream.id });
        continue;
      }
      // Compared on what both watch: this stream's events must be the commit's, seen through its prefix and filter.
      const mine = [...events].sort((a, b) => byBytes(a.key, b.key));
      const theirs = known.events.filter((e) => wants(stream, e));
      const extra = mine.filter((e) => !known.events.some((k) => k.key === e.key));
      const agree = extra.length === 0 && theirs.length === mine.length && theirs.every((e, i) => sameEvent(e, mine[i]!));
      if (!agree && extra.length > 0 && theirs.every((e) => mine.some((m) => sameEvent(m, e)))) {
        // It sees more of the revision than the streams before it (a wider prefix): the commit grows.
        known.events = [...known.events, ...extra].sort((a, b) => byBytes(a.key, b.key));
        continue;
      }
      if (!agree) {
        findings.add('watch-mismatch', `watches ${known.stream} and ${stream.id} disagree on revision ${revision}: ${theirs.map(eventText).join(', ') || 'nothing'} vs ${mine.map(eventText).join(', ')}`, [], [known.stream, stream.id], revision);
      }
    }
  }
  return log;
}

/** Every stream delivered every committed change it asked for in the revisions it covers, and before any progress notification past it. */
export function checkReliable(history: History, revisions: number[], log: Map<number, Commit>, findings: Findings): void {
  for (const stream of history.watches) {
    const [from, to] = coverage(stream);
    const delivered = new Map<number, number>(); // revision → batch
    for (const e of stream.events) delivered.set(e.revision, e.batch);
    const progress = [...(stream.progress ?? [])].sort((a, b) => a.batch - b.batch);
    for (let i = lowerBound(revisions, from); i < revisions.length && revisions[i]! <= to; i++) {
      const r = revisions[i]!;
      const commit = log.get(r)!;
      if (!commit.events.some((e) => wants(stream, e))) continue;
      const batch = delivered.get(r);
      if (batch === undefined) {
        findings.add('watch-gap', `watch ${stream.id} (${stream.via}) skipped revision ${r} (${commit.events.filter((e) => wants(stream, e)).map(eventText).join(', ')}), which watch ${commit.stream} delivered`, [], [stream.id, commit.stream], r);
        continue;
      }
      const promised = progress.find((p) => p.revision >= r && p.batch < batch);
      if (promised) findings.add('watch-order', `watch ${stream.id} (${stream.via}) said everything up to revision ${promised.revision} was sent, before it delivered revision ${r}`, [], [stream.id], r);
    }
  }
}

/** Revisions after the start that no stream covers: nothing can be said about them. */
export function uncovered(history: History, upTo: number): [number, number][] {
  const ranges = history.watches
    .filter((s) => (s.prefix === undefined || s.prefix === history.prefix) && s.filter === undefined)
    .map(coverage)
    .filter(([a, b]) => b >= a)
    .sort((x, y) => x[0] - y[0]);
  const gaps: [number, number][] = [];
  let next = history.startRevision + 1;
  for (const [a, b] of ranges) {
    if (a > next) gaps.push([next, a - 1]);
    next = Math.max(next, b + 1);
  }
  if (next <= upTo) gaps.push([next, upTo]);
  return gaps;
}

/** The watch events that carry a key's details (prev_kv, create revision, version), by revision. */
export function streamsByRevision(history: History): Map<number, { stream: WatchStream; event: WatchEvent }[]> {
  const streamsAt = new Map<number, { stream: WatchStream; event: WatchEvent }[]>();
  for (const stream of history.watches) {
    for (const event of stream.events) {
      if (event.prev === undefined && event.createRevision === undefined && event.version === undefined) continue;
      const list = streamsAt.get(event.revision);
      if (list) list.push({ stream, event });
      else streamsAt.set(event.revision, [{ stream, event }]);
    }
  }
  return streamsAt;
}
