// What the benchmarks share: flags, free loopback ports, the images to use, a scratch project
// with its own lab name, subnet and ports, and the CLI run as a child process.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/etcd-lab.js', import.meta.url));
export const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

/** `--name value` from the command line, or the fallback. */
export function option(name, fallback) {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}

/** `n` distinct free loopback ports, all held until all are found (one at a time, the kernel can give one twice). */
export async function freePorts(n) {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise((resolve) => { const s = createServer().listen(0, '127.0.0.1', () => resolve(s)); })));
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export async function freePort() {
  return (await freePorts(1))[0];
}

const imageExists = (ref) => spawnSync('docker', ['image', 'inspect', ref], { stdio: 'ignore' }).status === 0;

/** The spec's official images where this machine has them, else the local stand-ins; all present. */
export function benchImages() {
  const etcd = imageExists('gcr.io/etcd-development/etcd:v3.5.33') ? 'gcr.io/etcd-development/etcd:v3.5.33' : 'etcd-lab/etcd:trixie';
  const haproxy = imageExists('haproxy:3.2-alpine') ? 'haproxy:3.2-alpine' : 'etcd-lab/haproxy:3.2';
  for (const image of [etcd, haproxy]) {
    if (!imageExists(image)) throw new Error(`image ${image} is missing: run \`make images\` first (the benchmarks run with images present)`);
  }
  return { etcd, haproxy };
}

export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * A scratch project: etcd-lab.yaml with the given name, member count and subnet, and a .env with
 * free loopback ports and the images. `cli(...)` runs etcd-lab there and returns its time and output.
 */
export async function scratchLab({ name, members = 3, subnet, images, extraYaml = '' }) {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const [clientPort, statsPort] = await freePorts(2);
  writeFileSync(join(dir, 'etcd-lab.yaml'), `apiVersion: etcd-lab/v1alpha1\nname: ${name}\nmembers: ${members}\nnetwork:\n  subnet: ${subnet}\n${extraYaml}`);
  writeFileSync(
    join(dir, '.env'),
    `ETCD_LAB_CLIENT_PORT=${clientPort}\nETCD_LAB_STATS_PORT=${statsPort}\nETCD_LAB_ETCD_IMAGE=${images.etcd}\nETCD_LAB_HAPROXY_IMAGE=${images.haproxy}\n`,
  );
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_LAB_')));
  const cli = (...command) => {
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [BIN, ...command], { cwd: dir, env: { ...env, CI: 'true' }, encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) throw new Error(`etcd-lab ${command.join(' ')} failed (${r.status}):\n${r.stderr}`);
    return { ms, stdout: r.stdout };
  };
  return { dir, clientPort, statsPort, cli };
}

/**
 * One sequential writer through `client` (2 s deadline per put, the next put at once): it records
 * when each write was acknowledged. `stop()` ends it.
 */
export function ackWriter(putKey, client, prefix) {
  const acked = [];
  let failed = 0;
  // Connections HAProxy itself refused (its listening socket gone), apart from other failures.
  let refused = 0;
  let stop = false;
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      try {
        await putKey(client, `${prefix}${i}`, 'v', 2000);
        acked.push(Date.now());
      } catch (error) {
        failed += 1;
        if (error.code === 'ECONNREFUSED') refused += 1;
      }
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
      return { acked, failed, refused };
    },
  };
}

/** The longest time between acknowledged writes within [from, to]. */
export function longestGap(acked, from, to) {
  const inside = [from, ...acked.filter((t) => t >= from && t <= to), to];
  let gap = 0;
  for (let i = 1; i < inside.length; i++) gap = Math.max(gap, inside[i] - inside[i - 1]);
  return gap;
}

/** The CLI in `dir` without blocking the event loop (a writer keeps going meanwhile); resolves with stdout. */
export function cliAsync(dir, ...command) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_LAB_')));
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [BIN, ...command], { cwd: dir, env: { ...env, CI: 'true' }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`etcd-lab ${command.join(' ')}: ${stderr}`)) : resolve(stdout),
    ),
  );
}
