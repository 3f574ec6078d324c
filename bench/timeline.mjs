// One leader kill as a picture (SVG), drawn from what a real run logged: HAProxy's server states
// (its own log), the API server's connections through HAProxy (HAProxy's session log: when each was
// accepted, how long it lasted, how many bytes etcd sent back), the API server's own words about the
// connections that failed (gRPC's "createTransport failed"), and the writes, accepted or not.
const W = 1100;
const LEFT = 190;
const LANE = 16;

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** HAProxy's "Server etcd_members/etcd2-leading is UP" lines: each server's state changes. */
function serverChanges(haproxyLog) {
  const changes = new Map();
  for (const { at, text } of haproxyLog) {
    if (/\[WARNING\]/.test(text)) continue; // the same line again, on stderr
    const m = /(Backup )?Server etcd_members\/(\S+) is (UP|DOWN)/.exec(text);
    if (!m) continue;
    const list = changes.get(m[2]) ?? [];
    list.push({ at, up: m[3] === 'UP' });
    changes.set(m[2], list);
  }
  return changes;
}

/** HAProxy's tcplog lines: client, accept time, server, total time, bytes from the server, termination state. */
function sessions(haproxyLog) {
  const out = [];
  for (const { text } of haproxyLog) {
    const m = /^(\S+):(\d+) \[(\d\d)\/(\w{3})\/(\d{4}):(\d\d):(\d\d):(\d\d)\.(\d{3})\] etcd_client etcd_members\/(\S+) (-?\d+)\/(-?\d+)\/(\d+) (\d+) (\S\S)/.exec(text);
    if (!m) continue;
    const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].indexOf(m[4]);
    const start = Date.UTC(Number(m[5]), month, Number(m[3]), Number(m[6]), Number(m[7]), Number(m[8]), Number(m[9]));
    out.push({ client: m[1], port: m[2], start, end: start + Number(m[13]), server: m[10], bytes: Number(m[14]), state: m[15] });
  }
  return out;
}

/** gRPC's failed connection attempts in the API server's log, with the local port where it says. */
function failedAttempts(apiLog) {
  return apiLog
    .filter((l) => /createTransport failed/.test(l.text))
    .map((l) => ({
      at: l.at,
      port: /tcp [\d.]+:(\d+)->/.exec(l.text)?.[1],
      why: /use of closed network connection/.test(l.text) ? 'no answer: gRPC gave up at its 20 s connect deadline' : /EOF|broken pipe/.test(l.text) ? 'closed before etcd spoke: gRPC backs off' : 'failed',
      deadline: /use of closed network connection/.test(l.text),
    }));
}

export function renderKillTimeline({ t0, end, apiAcks, apiFails, haproxyLog, apiLog }, title) {
  const from = t0 - 1500;
  const to = Math.min(end, t0 + 26_000);
  const x = (t) => LEFT + ((Math.min(Math.max(t, from), to) - from) / (to - from)) * (W - LEFT - 20);
  const parts = [];
  let y = 40;
  const label = (text, yy) => parts.push(`<text x="6" y="${yy + 11}" class="l">${esc(text)}</text>`);

  // HAProxy's servers: green while UP.
  parts.push(`<text x="6" y="${y - 6}" class="h">HAProxy's servers (green: UP)</text>`);
  const changes = serverChanges(haproxyLog);
  // Every server the log names: one without a change in the window held its state throughout.
  for (const s of sessions(haproxyLog)) if (!changes.has(s.server) && !s.server.startsWith('<')) changes.set(s.server, []);
  for (const [server, all] of [...changes].sort()) {
    label(server, y);
    const before = all.filter((c) => c.at < from).at(-1);
    const list = all.filter((c) => c.at >= from);
    let state = before ? before.up : list.length > 0 ? !list[0].up : !server.endsWith('-leading');
    let since = from;
    for (const c of [...list, { at: to, up: undefined }]) {
      if (state) parts.push(`<rect x="${x(since)}" y="${y + 2}" width="${Math.max(1, x(c.at) - x(since))}" height="${LANE - 5}" fill="#66bb6a"/>`);
      if (c.up !== undefined) {
        state = c.up;
        since = c.at;
      }
    }
    y += LANE;
  }

  // The API server's connections through HAProxy, one lane each (reused when free).
  y += 14;
  parts.push(`<text x="6" y="${y - 6}" class="h">the API server's etcd connections through HAProxy</text>`);
  const all = sessions(haproxyLog).filter((s) => s.end >= from && s.start <= to);
  const attempts = failedAttempts(apiLog).filter((a) => a.at >= from && a.at <= to + 1000);
  // A connection that HAProxy never ended (frozen) is not in its log: gRPC's deadline line stands for it.
  for (const a of attempts) if (a.deadline && !all.some((s) => s.port === a.port)) all.push({ start: a.at - 20_000, end: a.at, server: '(frozen in HAProxy)', bytes: 0, state: '--', frozen: true });
  const lanes = [];
  for (const s of all.sort((a, b) => a.start - b.start)) {
    let lane = lanes.findIndex((endAt) => endAt < s.start);
    if (lane < 0) lane = lanes.push(0) - 1;
    lanes[lane] = s.end;
    const colour = s.frozen ? '#e53935' : s.bytes === 0 ? '#fb8c00' : '#1e88e5';
    parts.push(
      `<rect x="${x(s.start)}" y="${y + lane * 12 + 2}" width="${Math.max(2, x(s.end) - x(s.start))}" height="9" fill="${colour}"><title>${esc(`${s.server}: ${s.bytes} bytes from etcd, ${Math.round(s.end - s.start)} ms, ${s.state}`)}</title></rect>`,
    );
  }
  const connHeight = Math.max(1, lanes.length) * 12;
  for (const a of attempts) parts.push(`<text x="${x(a.at) - 4}" y="${y + connHeight + 12}" class="x" fill="#e53935">×<title>${esc(a.why)}</title></text>`);
  label('blue: etcd answered', y);
  label('orange: closed, no byte', y + 12);
  label('red: frozen, no byte', y + 24);
  y += Math.max(connHeight, 36) + 4;
  label('× gRPC: connect failed', y);
  y += 44;

  // The writes.
  parts.push(`<text x="6" y="${y - 6}" class="h">writes through the API server (1 s deadline)</text>`);
  for (const t of apiAcks.filter((t) => t >= from && t <= to)) parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${y}" y2="${y + 12}" stroke="#43a047"/>`);
  for (const t of apiFails.filter((t) => t >= from && t <= to)) parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${y}" y2="${y + 12}" stroke="#e53935"/>`);
  label('green: accepted, red: not', y);
  y += 24;

  // Time axis, the kill at 0.
  parts.push(`<line x1="${x(t0)}" x2="${x(t0)}" y1="24" y2="${y}" stroke="#000" stroke-dasharray="3,3"/><text x="${x(t0) + 3}" y="32" class="l">\`etcd-lab kill leader\` started</text>`);
  for (let s = -1; s * 1000 + t0 <= to; s++) parts.push(`<text x="${x(t0 + s * 1000) - 4}" y="${y + 12}" class="t">${s}s</text>`);
  y += 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}"><style>.h{font:bold 12px sans-serif}.l,.t{font:10px sans-serif;fill:#424242}.x{font:bold 12px sans-serif}</style><rect width="100%" height="100%" fill="#fff"/><text x="6" y="16" class="h">${esc(title)}</text>${parts.join('')}</svg>\n`;
}
