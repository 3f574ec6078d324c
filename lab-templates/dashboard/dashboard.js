// The dashboard's page: no build step, no library. It follows the server's event stream (one
// "hello" with everything so far, then a "tick" a second) and draws the members, the timeline, the
// event log and the leaders; its buttons POST to the server with the token in a header.
'use strict';

const token = document.querySelector('meta[name="etcd-lab-token"]').content;
/** The timeline shows the last two minutes, or less while there is less to show (never under 30 s). */
const WINDOW_MS = 120_000;
const MIN_WINDOW_MS = 30_000;
const ROLES = ['leader', 'follower', 'learner', 'no leader', 'down', 'paused', 'cut off', 'unreachable'];
const state = { meta: undefined, samples: [], events: [], probes: [], busy: false };

const $ = (selector) => document.querySelector(selector);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
};
const svg = (tag, attrs = {}, text) => {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};
const roleClass = (role) => `role-${role.replace(/ /g, '-')}`;
const time = (at) => new Date(at).toLocaleTimeString([], { hour12: false });
const bytes = (n) => (n === undefined ? '' : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`);
const seconds = (ms) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

function connect() {
  const source = new EventSource(`events?token=${encodeURIComponent(token)}`);
  source.addEventListener('hello', (e) => {
    const picture = JSON.parse(e.data);
    state.meta = picture;
    state.samples = picture.samples;
    state.events = picture.events;
    state.probes = picture.probes;
    $('#connection').textContent = `live · every ${picture.intervalMs / 1000} s${picture.probe ? ' · probing through HAProxy' : ''}`;
    render();
  });
  source.addEventListener('tick', (e) => {
    const tick = JSON.parse(e.data);
    if (tick.sample) state.samples.push(tick.sample);
    state.events.push(...tick.events);
    state.probes.push(...tick.probes);
    const since = Date.now() - state.meta.keepMs;
    for (const key of ['samples', 'events', 'probes']) state[key] = state[key].filter((x) => x.at >= since);
    render();
  });
  source.addEventListener('bye', (e) => {
    $('#connection').textContent = `stopped: ${JSON.parse(e.data).why}`;
    source.close();
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) $('#connection').textContent = 'disconnected (is `etcd-lab dashboard` still running?)';
    else $('#connection').textContent = 'reconnecting…';
  };
}

function render() {
  const last = state.samples.at(-1);
  if (last) {
    $('#leader').textContent = last.leader ?? 'none';
    $('#term').textContent = last.term !== undefined ? `term ${last.term}` : '';
    $('#quorum').textContent = last.summary;
    $('#routes').textContent = last.haproxy.error ? `? (${last.haproxy.error})` : last.haproxy.routesTo?.length ? last.haproxy.routesTo.join(', ') : 'every member (no leader)';
    renderMembers(last);
  }
  renderTimeline();
  renderEvents();
  renderLeaders();
  for (const b of document.querySelectorAll('button[data-action]')) b.disabled = state.busy;
}

function memberButtons(m) {
  const buttons = [];
  const add = (action, label) => buttons.push(el('button', { 'data-action': action, 'data-member': m.name, title: `etcd-lab ${action === 'leader' ? 'leader' : action} ${m.name}` }, label));
  if (m.role === 'down') add('start', 'start');
  else if (m.role === 'paused') add('unpause', 'unpause');
  else {
    add('kill', 'kill');
    add('pause', 'pause');
    if (m.role === 'cut off' || m.impaired) add('heal', 'heal');
    else add('partition', 'partition');
    if (m.role === 'follower') add('leader', 'make leader');
  }
  return buttons;
}

function renderMembers(sample) {
  const body = $('#members tbody');
  body.replaceChildren(
    ...sample.members.map((m) =>
      el(
        'tr',
        { 'data-member': m.name, 'data-role': m.role },
        el('td', {}, m.name),
        el('td', {}, el('span', { class: `role ${roleClass(m.role)}`, title: m.reason || m.state }, m.role + (m.impaired ? ` · ${m.impaired}` : ''))),
        el('td', { class: 'num' }, String(m.term ?? '')),
        el('td', { class: 'num' }, String(m.index ?? '')),
        el('td', { class: 'num' }, String(m.applied ?? '')),
        el('td', { class: 'num' }, m.lag === undefined ? '' : String(m.lag)),
        el('td', { class: 'num' }, m.dbSize === undefined ? '' : `${bytes(m.dbSize)} (${bytes(m.dbSizeInUse)})`),
        el('td', {}, m.alarms.join(', ')),
        el('td', {}, m.version ?? ''),
        el('td', {}, m.backend),
        el('td', {}, ...memberButtons(m)),
      ),
    ),
  );
}

/** Stretches without a leader: from when the old leader was last seen (or taken out) to the first sample with the new one. */
function leaderGaps(samples, events) {
  const gaps = [];
  let lastLed;
  let open;
  for (const s of samples) {
    if (!s.leader) {
      if (!open && lastLed) open = { from: lastLed.at, old: lastLed.leader };
      continue;
    }
    if (lastLed && (open || s.leader !== lastLed.leader)) {
      const from = open ? open.from : lastLed.at;
      // The fault that took the leader out, when one did in between: the gap starts there.
      const cause = events.filter((e) => e.phase === 'point' && e.at >= from && e.at <= s.at).at(-1);
      gaps.push({ from: cause ? cause.at : from, to: s.at, old: lastLed.leader, next: s.leader, cause });
    }
    open = undefined;
    lastLed = s;
  }
  return gaps;
}

function probeErrorRuns(probes) {
  const runs = [];
  let run;
  for (const p of probes) {
    if (!p.ok) run ??= { from: p.at, to: p.at + p.ms, count: 0, error: p.error };
    if (!p.ok) (run.to = p.at + p.ms), run.count++;
    else if (run) runs.push(run), (run = undefined);
  }
  if (run) runs.push(run);
  return runs;
}

function renderTimeline() {
  const host = $('#timeline');
  const width = Math.max(600, host.clientWidth || 900);
  const now = Date.now();
  const first = Math.min(...[state.samples[0], state.events[0], state.probes[0]].filter(Boolean).map((x) => x.at), now);
  const span = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, now - first + 5000));
  const from = now - span;
  const names = state.samples.at(-1)?.members.map((m) => m.name) ?? [];
  const lane = 22;
  const left = 70;
  const probeHeight = state.meta?.probe ? 70 : 0;
  const routesTop = 20 + names.length * lane + 4;
  const eventsTop = routesTop + lane + 4;
  const probeTop = eventsTop + 34;
  const height = probeTop + probeHeight + 22;
  const x = (at) => left + ((at - from) / span) * (width - left - 10);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, height });
  $('#window').textContent = `(the last ${Math.round(span / 1000)} s)`;

  const tick = span > 60_000 ? 10_000 : 5000;
  for (let s = Math.ceil(from / tick) * tick; s <= now; s += tick) {
    chart.append(svg('line', { x1: x(s), x2: x(s), y1: 14, y2: height - 18, stroke: '#2a333d' }));
    chart.append(svg('text', { x: x(s) - 22, y: height - 4 }, time(s)));
  }
  names.forEach((name, i) => {
    const y = 20 + i * lane;
    chart.append(svg('text', { x: 8, y: y + 14, class: 'lane-label' }, name));
    const samples = state.samples.filter((s) => s.at >= from - 5000);
    samples.forEach((s, k) => {
      const m = s.members.find((mm) => mm.name === name);
      if (!m) return;
      const end = samples[k + 1]?.at ?? now;
      if (end < from) return;
      const rect = svg('rect', { x: x(Math.max(s.at, from)), y, width: Math.max(1, x(end) - x(Math.max(s.at, from))), height: lane - 4, class: roleClass(m.role), 'data-role': m.role });
      rect.append(svg('title', {}, `${name}: ${m.role}${m.term !== undefined ? `, term ${m.term}` : ''}${m.lag ? `, ${m.lag} behind` : ''} at ${time(s.at)}`));
      chart.append(rect);
    });
  });
  // Without a leader: drawn over every member's lane.
  for (const g of leaderGaps(state.samples, state.events)) {
    if (g.to < from) continue;
    const rect = svg('rect', { x: x(Math.max(g.from, from)), y: 16, width: Math.max(2, x(g.to) - x(Math.max(g.from, from))), height: names.length * lane + 4, fill: 'var(--gap)', stroke: 'var(--no-leader)', 'data-gap': String(g.to - g.from) });
    rect.append(svg('title', {}, `no leader the page saw for ≤ ${seconds(g.to - g.from)}: ${g.old} → ${g.next}${g.cause ? ` (after ${g.cause.op} ${g.cause.detail ?? ''})` : ''}`));
    chart.append(rect);
    chart.append(svg('text', { x: Math.min(x(Math.max(g.from, from)) + 3, width - 50), y: 12 }, `≤ ${seconds(g.to - g.from)}`));
  }
  // Where HAProxy sent clients: the leader's route, or every member while none leads; named where it changes.
  chart.append(svg('text', { x: 8, y: routesTop + 14, class: 'lane-label' }, 'HAProxy →'));
  const recent = state.samples.filter((s) => s.at >= from - 5000);
  let lastRoute;
  recent.forEach((s, k) => {
    const route = s.haproxy.error ? '?' : s.haproxy.routesTo?.length ? s.haproxy.routesTo.join(',') : 'all';
    const end = recent[k + 1]?.at ?? now;
    if (end < from) return;
    const start = Math.max(s.at, from);
    const rect = svg('rect', { x: x(start), y: routesTop, width: Math.max(1, x(end) - x(start)), height: lane - 4, class: route === 'all' || route === '?' ? 'role-no-leader' : 'role-leader', opacity: 0.55, 'data-routes': route });
    rect.append(svg('title', {}, `HAProxy routes clients to ${route === 'all' ? 'every member (no leader)' : route} at ${time(s.at)}`));
    chart.append(rect);
    if (route !== lastRoute) chart.append(svg('text', { x: x(start) + 3, y: routesTop + 13, class: 'lane-label' }, route));
    lastRoute = route;
  });
  // The event log: spans as bars, the moments faults happened as lines across the lanes.
  chart.append(svg('text', { x: 8, y: eventsTop + 14, class: 'lane-label' }, 'events'));
  for (const span of spans(state.events)) {
    const end = span.end?.at ?? now;
    if (end < from) continue;
    const bar = svg('rect', { x: x(Math.max(span.start.at, from)), y: eventsTop + 2, width: Math.max(3, x(end) - x(Math.max(span.start.at, from))), height: 10, fill: span.end && !span.end.ok ? 'var(--probe-error)' : '#5b6b7b', 'data-event': span.start.op });
    bar.append(svg('title', {}, `${span.start.op} ${span.start.detail ?? ''} ${time(span.start.at)}–${span.end ? time(span.end.at) : 'running'}`));
    chart.append(bar);
  }
  for (const p of state.events.filter((e) => e.phase === 'point' && e.at >= from)) {
    chart.append(svg('line', { x1: x(p.at), x2: x(p.at), y1: 16, y2: eventsTop + 30, stroke: '#e6e6e6', 'stroke-dasharray': '3 2', 'data-event': p.op }));
    chart.append(svg('text', { x: x(p.at) + 3, y: eventsTop + 28 }, `${p.op} ${p.detail ?? ''}`));
  }
  if (state.meta?.probe) {
    chart.append(svg('text', { x: 8, y: probeTop + 14, class: 'lane-label' }, 'client'));
    const shown = state.probes.filter((p) => p.at >= from);
    const ok = shown.filter((p) => p.ok).map((p) => p.ms).sort((a, b) => a - b);
    const top = Math.max(50, ok[Math.floor(ok.length * 0.99)] ?? 50);
    const y = (ms) => probeTop + probeHeight - 4 - (Math.min(ms, top) / top) * (probeHeight - 10);
    chart.append(svg('text', { x: 8, y: probeTop + 30 }, `≤ ${top} ms`));
    const points = shown.filter((p) => p.ok).map((p) => `${x(p.at).toFixed(1)},${y(p.ms).toFixed(1)}`);
    if (points.length > 1) chart.append(svg('polyline', { points: points.join(' '), fill: 'none', stroke: '#6fb3ff', 'stroke-width': 1.2 }));
    for (const run of probeErrorRuns(shown)) {
      const rect = svg('rect', { x: x(run.from), y: probeTop, width: Math.max(2, x(run.to) - x(run.from)), height: probeHeight - 4, fill: 'var(--probe-error)', opacity: 0.6, 'data-probe-errors': String(run.count) });
      rect.append(svg('title', {}, `${run.count} failed reads through HAProxy for ${seconds(run.to - run.from)}: ${run.error}`));
      chart.append(rect);
    }
  }
  host.replaceChildren(chart);
}

/** Each operation's start with its end (undefined while it runs). */
function spans(events) {
  const byId = new Map();
  for (const e of events) {
    if (e.phase === 'start') byId.set(e.id, { start: e });
    else if (e.phase === 'end' && byId.has(e.id)) byId.get(e.id).end = e;
  }
  return [...byId.values()];
}

function renderEvents() {
  const items = [];
  for (const span of spans(state.events)) {
    const ended = span.end ? `${seconds(span.end.at - span.start.at)}${span.end.ok ? '' : ` · failed: ${span.end.error ?? ''}`}` : 'running';
    items.push({ at: span.start.at, op: span.start.op, text: `${span.start.detail ?? ''} · ${ended}`, failed: span.end && !span.end.ok });
  }
  for (const p of state.events.filter((e) => e.phase === 'point')) items.push({ at: p.at, op: p.op, text: p.detail ?? '', point: true });
  items.sort((a, b) => b.at - a.at);
  $('#events').replaceChildren(
    ...items.slice(0, 200).map((i) =>
      el('li', { 'data-event': i.op, class: i.failed ? 'failed' : undefined }, el('span', { class: 'time' }, time(i.at)), el('span', { class: 'op' }, `${i.point ? '↯ ' : ''}${i.op}`), i.text),
    ),
  );
}

function renderLeaders() {
  const changes = [];
  for (const s of state.samples) {
    const previous = changes.at(-1);
    if (s.leader && (!previous || previous.leader !== s.leader || previous.term !== s.term)) changes.push({ at: s.at, leader: s.leader, term: s.term });
  }
  $('#leaders').replaceChildren(
    ...changes.reverse().map((c) => el('li', { 'data-leader': c.leader }, el('span', { class: 'time' }, time(c.at)), el('span', { class: 'op' }, c.leader), `term ${c.term ?? '?'}`)),
  );
}

function toast(text, error) {
  const t = $('#toast');
  t.textContent = text;
  t.className = `shown${error ? ' error' : ''}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.className = ''), error ? 10_000 : 5000);
}

document.addEventListener('click', async (e) => {
  const button = e.target.closest('button[data-action]');
  if (!button || state.busy) return;
  const { action, member } = button.dataset;
  state.busy = true;
  render();
  toast(`${action} ${member}…`);
  try {
    const res = await fetch('api/action', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Etcd-Lab-Token': token }, body: JSON.stringify({ action, member }) });
    const body = await res.json();
    if (body.ok) toast(body.message);
    else toast(`${body.error}${body.hint ? ` — ${body.hint}` : ''}`, true);
  } catch (error) {
    toast(String(error), true);
  } finally {
    state.busy = false;
    render();
  }
});

connect();
setInterval(() => state.meta && renderTimeline(), 1000);
