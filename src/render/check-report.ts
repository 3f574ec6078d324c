// history + verdict → one self-contained HTML page (inline SVG, no scripts, nothing fetched): a
// timeline of every client's operations (ok / failed / unknown) with the fault windows shaded, the
// watch streams beneath, latency and throughput over time, each fault's before/during/after, and a
// violation's operations outlined. Drawn in bounded size whatever the history's: past MAX_DRAWN
// operations the timeline and the latency dots are downsampled (and say so); outlined ones stay exact.
import { lowerBound, type CheckResult } from '../checker/check.js';
import { describeOperation, isWrite, type History, type Operation } from '../checker/history.js';

const WIDTH = 1400;
const LEFT = 150;
const LANE = 14;
/** Operations drawn one by one; beyond this a lane is drawn in columns of its worst outcome. */
export const MAX_DRAWN = 20_000;
const COLUMN_PX = 2;
const COLOURS = { ok: '#43a047', failed: '#e53935', unknown: '#fb8c00', fault: 'rgba(120,120,120,0.18)', violation: '#d500f9' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

/** Time → x on every chart of the page. */
function scale(history: History): { x: (ms: number) => number; endMs: number } {
  // A loop, not Math.max(...): a spread of a million arguments overflows the stack.
  let endMs = 1;
  for (const op of history.operations) endMs = Math.max(endMs, op.returnMs);
  for (const f of history.faults) endMs = Math.max(endMs, f.endMs);
  for (const w of history.watches) endMs = Math.max(endMs, w.endMs);
  return { x: (ms: number) => LEFT + (ms / endMs) * (WIDTH - LEFT - 10), endMs };
}

const maxOf = (values: Iterable<number>, floor: number) => {
  let max = floor;
  for (const v of values) if (v > max) max = v;
  return max;
};

function faultShading(history: History, x: (ms: number) => number, top: number, height: number, labels: boolean): string {
  return history.faults
    .map((f, i) => {
      // Three rows of labels, so short faults side by side stay readable.
      const label = labels ? `<text x="${fmt(x(f.startMs) + 2)}" y="${top + 10 + (i % 3) * 11}" class="fault">${esc(`${f.kind} ${f.target}`)}</text>` : '';
      return `<rect x="${fmt(x(f.startMs))}" y="${top}" width="${fmt(Math.max(1, x(f.endMs) - x(f.startMs)))}" height="${height}" fill="${COLOURS.fault}"><title>${esc(`${f.kind} ${f.target}: ${Math.round(f.startMs)}–${Math.round(f.endMs)} ms`)}</title></rect>${label}`;
    })
    .join('');
}

function timeAxis(x: (ms: number) => number, endMs: number, y: number): string {
  const step = [100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000, 7_200_000].find((s) => endMs / s <= 12) ?? 21_600_000;
  const ticks: string[] = [];
  for (let t = 0; t <= endMs; t += step) ticks.push(`<line x1="${fmt(x(t))}" x2="${fmt(x(t))}" y1="${y}" y2="${y + 4}" stroke="#666"/><text x="${fmt(x(t))}" y="${y + 15}" class="tick">${t >= 1000 ? `${t / 1000} s` : `${t} ms`}</text>`);
  return ticks.join('');
}

/** One lane per client, then one per watcher. */
function timeline(history: History, result: CheckResult, marked: Set<number>): string {
  const { x, endMs } = scale(history);
  const clients = [...new Set(history.operations.map((op) => op.client))].sort((a, b) => a - b);
  const watchers = [...new Set(history.watches.map((w) => w.watcher))].sort((a, b) => a - b);
  const top = 40;
  const height = top + (clients.length + watchers.length) * LANE + 24;
  const via = new Map(history.operations.map((op) => [op.client, op.via]));
  const lanes = clients.map((c, i) => `<text x="4" y="${top + i * LANE + 11}" class="lane">c${c} → ${esc(via.get(c) ?? '')}</text>`);
  const drawOne = (op: Operation) => {
    const lane = clients.indexOf(op.client);
    const x1 = x(op.callMs);
    const w = Math.max(1, x(op.returnMs) - x1);
    const committed = result.committedAt[op.id];
    const title = `${describeOperation(op)}${committed !== undefined ? `; committed at ${committed}` : ''}`;
    const outline = marked.has(op.id) ? ` stroke="${COLOURS.violation}" stroke-width="2"` : '';
    const isRead = !isWrite(op.request);
    return `<rect x="${fmt(x1)}" y="${top + lane * LANE + (isRead ? 4 : 2)}" width="${fmt(w)}" height="${isRead ? 6 : 10}" fill="${COLOURS[op.outcome]}"${outline}><title>${esc(title)}</title></rect>`;
  };
  let ops: string[];
  if (history.operations.length <= MAX_DRAWN) ops = history.operations.map(drawOne);
  else {
    // Each lane in columns: a column shows the worst outcome among the calls that started in it.
    const rank = { ok: 0, failed: 1, unknown: 2 } as const;
    const columns = new Map<string, { lane: number; col: number; outcome: Operation['outcome']; n: number }>();
    for (const op of history.operations) {
      const lane = clients.indexOf(op.client);
      const col = Math.floor((x(op.callMs) - LEFT) / COLUMN_PX);
      const id = `${lane}/${col}`;
      const c = columns.get(id);
      if (!c) columns.set(id, { lane, col, outcome: op.outcome, n: 1 });
      else {
        c.n += 1;
        if (rank[op.outcome] > rank[c.outcome]) c.outcome = op.outcome;
      }
    }
    ops = [...columns.values()].map((c) => `<rect x="${fmt(LEFT + c.col * COLUMN_PX)}" y="${top + c.lane * LANE + 2}" width="${COLUMN_PX}" height="10" fill="${COLOURS[c.outcome]}"><title>${c.n} operations</title></rect>`);
    ops.push(...history.operations.filter((op) => marked.has(op.id)).map(drawOne));
  }
  const wTop = top + clients.length * LANE;
  const streams = history.watches.map((s) => {
    const lane = watchers.indexOf(s.watcher);
    const y = wTop + lane * LANE + 3;
    const title = `watch ${s.id} via ${s.via}: from revision ${s.fromRevision}, ${s.events.length} events, ${s.end}${s.upToRevision ? ` up to ${s.upToRevision}` : ''}`;
    return `<rect x="${fmt(x(s.startMs))}" y="${y}" width="${fmt(Math.max(1, x(s.endMs) - x(s.startMs)))}" height="8" fill="${s.end === 'closed' ? '#1e88e5' : '#90caf9'}" stroke="#fff"><title>${esc(title)}</title></rect>`;
  });
  const wLanes = watchers.map((w, i) => `<text x="4" y="${wTop + i * LANE + 11}" class="lane">watcher ${w}</text>`);
  return `<svg class="timeline" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" xmlns="http://www.w3.org/2000/svg">${faultShading(history, x, 0, height - 22, true)}${lanes.join('')}${ops.join('')}${wLanes.join('')}${streams.join('')}${timeAxis(x, endMs, height - 22)}</svg>`;
}

/** Latency of each completed call (dots), and completed calls per 250 ms (a line), over time. */
function rates(history: History): string {
  const { x, endMs } = scale(history);
  const height = 200;
  const plot = 160;
  const done = history.operations.filter((op) => op.outcome === 'ok');
  const maxLatency = maxOf(
    done.map((op) => op.returnMs - op.callMs),
    10,
  );
  // At most MAX_DRAWN dots: every k-th completed call.
  const every = Math.max(1, Math.ceil(done.length / MAX_DRAWN));
  const dots = done.filter((_, i) => i % every === 0).map((op) => `<circle cx="${fmt(x(op.returnMs))}" cy="${fmt(plot - ((op.returnMs - op.callMs) / maxLatency) * (plot - 10))}" r="1.2" fill="#546e7a"/>`);
  const bucket = Math.max(250, Math.ceil(endMs / 2000));
  const counts = new Array<number>(Math.ceil(endMs / bucket) + 1).fill(0);
  for (const op of done) counts[Math.floor(op.returnMs / bucket)]! += 1;
  const maxCount = maxOf(counts, 1);
  const line = counts.map((c, i) => `${fmt(x(i * bucket))},${fmt(plot - (c / maxCount) * (plot - 10))}`).join(' ');
  const perSecond = Math.round((maxCount * 1000) / bucket);
  return `<svg class="rates" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" xmlns="http://www.w3.org/2000/svg">${faultShading(history, x, 0, plot, false)}${dots.join('')}<polyline points="${line}" fill="none" stroke="#1e88e5" stroke-width="1.5"/><text x="4" y="14" class="lane">latency (dots${every > 1 ? `, every ${every}th call` : ''}), up to ${Math.round(maxLatency)} ms</text><text x="4" y="30" class="lane" fill="#1e88e5">ok/s (line), up to ${perSecond}</text>${timeAxis(x, endMs, plot)}</svg>`;
}

/** Each fault: acknowledged calls per second and the share that succeeded, before, during and after it. */
function aroundFaults(history: History): string {
  if (history.faults.length === 0) return '';
  const calls = [...history.operations].sort((a, b) => a.callMs - b.callMs);
  const starts = calls.map((op) => op.callMs);
  const window = (from: number, to: number) => {
    const ops = calls.slice(lowerBound(starts, from), lowerBound(starts, to));
    const ok = ops.filter((op) => op.outcome === 'ok').length;
    const seconds = Math.max(0.001, (to - from) / 1000);
    return ops.length === 0 ? '<td>—</td><td>—</td>' : `<td>${Math.round(ok / seconds)}</td><td>${Math.round((100 * ok) / ops.length)} %</td>`;
  };
  const rows = history.faults.map((f) => {
    const span = Math.max(1000, f.endMs - f.startMs);
    return `<tr><td>${esc(`${f.kind} ${f.target}`)}</td><td>${Math.round(f.startMs)}–${Math.round(f.endMs)} ms</td>${window(f.startMs - span, f.startMs)}${window(f.startMs, f.endMs)}${window(f.endMs, f.endMs + span)}</tr>`;
  });
  return `<table class="faults"><tr><th rowspan="2">fault</th><th rowspan="2">when</th><th colspan="2">before</th><th colspan="2">during</th><th colspan="2">after</th></tr><tr><th>ok/s</th><th>ok</th><th>ok/s</th><th>ok</th><th>ok/s</th><th>ok</th></tr>${rows.join('')}</table>`;
}


function summary(history: History, result: CheckResult): string {
  const c = result.counts;
  const byKind = new Map<string, number>();
  for (const f of history.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  const faults = [...byKind].map(([k, n]) => `${n} ${esc(k)}`).join(', ') || 'none';
  return `<p class="verdict ${result.ok ? 'pass' : 'fail'}">${result.ok ? 'PASS' : 'FAIL'}: ${c.operations} operations (${c.ok} ok, ${c.failed} failed, ${c.unknown} unknown: ${c.unknownCommitted} committed, ${c.unknownNotCommitted} not), ${c.committedRevisions} committed revisions, ${c.watchEvents} watch events in ${c.watchStreams} streams${c.staleSerializableReads ? `, ${c.staleSerializableReads} stale serializable reads (allowed)` : ''}${c.leaseExpiries ? `, ${c.leaseExpiries} leases expired` : ''}; faults: ${faults}; checked in ${Math.round(result.elapsedMs)} ms</p>`;
}

function violations(history: History, result: CheckResult): string {
  if (result.violations.length === 0) return '<p>No violation: every operation has its place in one order that respects real time, and every watch delivered every change it covered.</p>';
  const byId = new Map<number, Operation>(history.operations.map((op) => [op.id, op]));
  const items = result.violations.map(
    (v) => `<li><b>${esc(v.kind)}</b>: ${esc(v.message)}${v.operations.length ? `<ul>${v.operations.map((id) => `<li><code>#${id} ${esc(byId.get(id) ? describeOperation(byId.get(id)!) : '')}</code></li>`).join('')}</ul>` : ''}</li>`,
  );
  const more = Object.entries(result.more).map(([k, n]) => `<li>${n} more ${esc(k)}</li>`);
  return `<ol class="violations">${items.join('')}${more.join('')}</ol>`;
}

export function renderCheckReport(history: History, result: CheckResult): string {
  const marked = new Set(result.violations.flatMap((v) => v.operations));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>etcd-lab check: ${esc(history.lab)} ${esc(history.startedAt)}</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 16px; color: #212121; }
h1 { font-size: 18px; } h2 { font-size: 15px; margin-top: 20px; }
.verdict { font-size: 14px; padding: 6px 10px; border-radius: 4px; } .pass { background: #e8f5e9; } .fail { background: #fce4ec; }
.lane, .tick, .fault { font-size: 10px; fill: #424242; } .fault { fill: #616161; font-style: italic; }
.legend span { display: inline-block; margin-right: 14px; } .legend i { display: inline-block; width: 12px; height: 10px; margin-right: 4px; vertical-align: middle; }
svg { display: block; border: 1px solid #eee; margin: 6px 0; }
table.faults { border-collapse: collapse; } table.faults td, table.faults th { border: 1px solid #ddd; padding: 2px 8px; text-align: right; } table.faults td:first-child { text-align: left; }
</style></head><body>
<h1>etcd-lab check: lab ${esc(history.lab)}, ${esc(history.startedAt)}</h1>
${summary(history, result)}
<p class="legend"><span><i style="background:${COLOURS.ok}"></i>ok</span><span><i style="background:${COLOURS.failed}"></i>failed</span><span><i style="background:${COLOURS.unknown}"></i>unknown outcome</span><span><i style="background:${COLOURS.fault}"></i>fault</span><span><i style="border:2px solid ${COLOURS.violation}"></i>in a violation</span><span>thin bars: reads; thick: writes; blue: watch streams</span></p>
<h2>Timeline</h2>
${history.operations.length > MAX_DRAWN ? `<p>${history.operations.length} operations: each lane drawn in ${COLUMN_PX}-pixel columns of the worst outcome among the calls that started there; operations in a violation drawn one by one.</p>` : ''}
${timeline(history, result, marked)}
<h2>Latency and throughput</h2>
${rates(history)}
${history.faults.length > 0 ? `<h2>Around each fault (windows as long as the fault, at least 1 s)</h2>\n${aroundFaults(history)}` : ''}
<h2>Violations</h2>
${violations(history, result)}
</body></html>
`;
}
