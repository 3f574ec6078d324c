// Per-person settings: host ports, bind address, image overrides and the stats credentials.
// They never go into etcd-lab.yaml or the generated files meant to be committed; they are resolved
// from flags > environment > the .env beside etcd-lab.yaml > the spec, and written to the
// generated .env that docker compose reads.
import { randomBytes } from 'node:crypto';
import { parseEnv } from 'node:util';
import type { Problem } from '../errors.js';
import { editDistance, imageReferenceProblem } from './fields.js';
import { parseIpv4 } from './network.js';
import type { LabSpec } from './types.js';

export interface LocalSettings {
  clientPort: number;
  statsPort: number;
  bindAddress: string;
  etcdImage: string;
  haproxyImage: string;
  statsUser: string;
  statsPassword: string;
}

/** The variables compose interpolates, each with the LocalSettings field it carries. */
export const ENV_VARS = {
  clientPort: 'ETCD_LAB_CLIENT_PORT',
  statsPort: 'ETCD_LAB_STATS_PORT',
  bindAddress: 'ETCD_LAB_BIND_ADDRESS',
  etcdImage: 'ETCD_LAB_ETCD_IMAGE',
  haproxyImage: 'ETCD_LAB_HAPROXY_IMAGE',
  statsUser: 'ETCD_LAB_STATS_USER',
  statsPassword: 'ETCD_LAB_STATS_PASSWORD',
} as const satisfies Record<keyof LocalSettings, string>;

/** Per-person values as given on the command line (validated like the rest). */
export type LocalOverrides = { [K in keyof LocalSettings]?: string };

export interface LocalSources {
  /** From CLI flags. */
  flags?: LocalOverrides;
  /** process.env (or a stand-in in tests). */
  env?: Record<string, string | undefined>;
  /** Contents of the .env beside etcd-lab.yaml, if any. */
  dotenv?: string;
  /** Its path, for warnings about its lines (default ".env"). */
  dotenvFile?: string;
  /** Contents of the .env generated last time, so credentials survive regeneration. */
  previous?: string;
}

/** One NAME=value of a .env file, with the lines it spans (a quoted value may take several). */
export interface DotenvEntry {
  name: string;
  value: string;
  /** 1-based. */
  line: number;
  lines: number;
}

const DOTENV_ENTRY = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/;

/**
 * Reads a .env file line by line: every NAME=value (values unquoted as Node's parseEnv does) and
 * every line that is neither that, a comment nor blank. Node's parser alone would skip such a line
 * silently, or read it together with the next one.
 */
export function scanDotenv(text: string): { entries: DotenvEntry[]; malformed: { line: number; text: string }[] } {
  const entries: DotenvEntry[] = [];
  const malformed: { line: number; text: string }[] = [];
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    const m = DOTENV_ENTRY.exec(line);
    if (!m) {
      malformed.push({ line: i + 1, text: line });
      continue;
    }
    // A quoted value not closed on its line goes on to the line that closes it.
    let end = i;
    const rest = m[2]!.trimStart();
    const quote = rest[0];
    if ((quote === '"' || quote === "'" || quote === '`') && !rest.slice(1).includes(quote)) {
      const closing = lines.findIndex((l, j) => j > i && l.includes(quote));
      if (closing > i) end = closing;
    }
    const value = (parseEnv(lines.slice(i, end + 1).join('\n')) as Record<string, string>)[m[1]!] ?? '';
    entries.push({ name: m[1]!, value, line: i + 1, lines: end - i + 1 });
    i = end;
  }
  return { entries, malformed };
}

export function parseDotenv(text: string | undefined): Record<string, string> {
  // The last of a name wins, as with Node's parser and docker compose.
  return Object.fromEntries((text ? scanDotenv(text).entries : []).map((e) => [e.name, e.value]));
}

/** `text` with NAME set to `value`: its (last) line replaced, else a line added; every other line kept as it was. */
export function setDotenvValue(text: string, name: string, value: string): string {
  const line = `${name}=${/^[^\s#'"`\\]*$/.test(value) ? value : JSON.stringify(value)}`;
  const at = scanDotenv(text).entries.filter((e) => e.name === name).at(-1);
  if (!at) return `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${line}\n`;
  const lines = text.split('\n');
  lines.splice(at.line - 1, at.lines, line);
  return lines.join('\n');
}

/** Problems a .env file's lines have, as warnings: lines that say nothing, names etcd-lab does not read. */
function dotenvWarnings(text: string | undefined, file: string): Problem[] {
  if (!text) return [];
  const { entries, malformed } = scanDotenv(text);
  const known: string[] = Object.values(ENV_VARS);
  return [
    ...malformed.map((m) => ({
      path: `${file}:${m.line}`,
      message: `is not NAME=value, a comment or blank, so it is ignored (got ${JSON.stringify(m.text.length > 60 ? `${m.text.slice(0, 60)}…` : m.text)})`,
      fix: 'write it as NAME=value, or start it with # to keep it as a comment',
    })),
    ...entries
      .filter((e) => e.name.startsWith('ETCD_LAB_') && !known.includes(e.name))
      .map((e) => {
        const near = known.filter((k) => editDistance(k, e.name) <= 3);
        return {
          path: `${file}:${e.line}`,
          message: `${e.name} is not a variable etcd-lab reads, so it is ignored`,
          fix: near.length > 0 ? `did you mean ${near.join(' or ')}?` : `etcd-lab reads ${known.join(', ')}`,
        };
      }),
  ];
}

export function newStatsPassword(): string {
  return randomBytes(18).toString('base64url');
}

export function resolveLocalSettings(
  spec: LabSpec,
  sources: LocalSources,
  makePassword: () => string = newStatsPassword,
): { settings: LocalSettings; problems: Problem[]; warnings: Problem[] } {
  const problems: Problem[] = [];
  const warnings: Problem[] = dotenvWarnings(sources.dotenv, sources.dotenvFile ?? '.env');
  const dotenv = parseDotenv(sources.dotenv);
  const previous = parseDotenv(sources.previous);
  const env = sources.env ?? {};

  function pick<K extends keyof LocalSettings>(key: K, fallback: () => string | number): { value: string; from: string } {
    const flag = sources.flags?.[key];
    if (flag !== undefined) return { value: String(flag), from: `--${kebab(key)}` };
    const variable = ENV_VARS[key];
    if (env[variable] !== undefined && env[variable] !== '') return { value: env[variable]!, from: `$${variable}` };
    if (dotenv[variable] !== undefined && dotenv[variable] !== '') return { value: dotenv[variable]!, from: `${variable} in .env` };
    return { value: String(fallback()), from: '' };
  }

  function portOf(key: 'clientPort' | 'statsPort', fallback: number): { value: number; from: string } {
    const { value, from } = pick(key, () => fallback);
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > 65535) {
      problems.push({ path: from || key, message: `must be a port number from 1 to 65535 (got ${JSON.stringify(value)})` });
      return { value: fallback, from: '' };
    }
    return { value: n, from };
  }

  function imageOf(key: 'etcdImage' | 'haproxyImage', fallback: string): string {
    const { value, from } = pick(key, () => fallback);
    // A bad image in the spec is reported there.
    const problem = from ? imageReferenceProblem(value) : undefined;
    if (problem) problems.push({ path: from, message: `${problem} (got ${JSON.stringify(value)})`, fix: `use a reference such as ${fallback}` });
    return value;
  }

  const bind = pick('bindAddress', () => spec.haproxy.bindAddress);
  const ports = { client: portOf('clientPort', spec.haproxy.clientPort), stats: portOf('statsPort', spec.haproxy.statsPort) };
  const settings: LocalSettings = {
    clientPort: ports.client.value,
    statsPort: ports.stats.value,
    bindAddress: bind.value,
    etcdImage: imageOf('etcdImage', spec.etcd.image),
    haproxyImage: imageOf('haproxyImage', spec.haproxy.image),
    statsUser: pick('statsUser', () => previous[ENV_VARS.statsUser] || 'etcd-lab').value,
    statsPassword: pick('statsPassword', () => previous[ENV_VARS.statsPassword] || makePassword()).value,
  };
  if (parseIpv4(settings.bindAddress) === undefined) {
    // A bad value in the spec is the spec's problem, reported there.
    if (bind.from) problems.push({ path: bind.from, message: `must be an IPv4 address such as 127.0.0.1 (got ${JSON.stringify(settings.bindAddress)})` });
  } else if (!settings.bindAddress.startsWith('127.') && !spec.tls.enabled) {
    warnings.push(exposedWarning(settings, bind.from || 'haproxy.bindAddress'));
  }
  // Both from the spec: the spec's problem, reported there.
  if (settings.clientPort === settings.statsPort && (ports.client.from || ports.stats.from)) {
    problems.push({ path: ports.stats.from || ports.client.from, message: `makes the client port and the stats port both ${settings.clientPort}: etcd clients and the stats page cannot share a port`, fix: 'give each its own port' });
  }
  // HAProxy reads "user:password" from one quoted word: keep both free of quotes, colons and spaces.
  for (const key of ['statsUser', 'statsPassword'] as const) {
    if (!/^[A-Za-z0-9._~+\-]+$/.test(settings[key])) {
      problems.push({ path: ENV_VARS[key], message: 'may hold only letters, digits and . _ ~ + -' });
    }
  }
  return { settings, problems, warnings };
}

/** Any address but loopback puts the lab's ports where other machines can reach them. */
function exposedWarning(settings: LocalSettings, from: string): Problem {
  const where = settings.bindAddress === '0.0.0.0' ? 'every network interface of this machine' : `${settings.bindAddress}, reachable from other machines`;
  return {
    path: from,
    message:
      `the lab's ports (etcd clients ${settings.clientPort}, stats ${settings.statsPort}) listen on ${where}. ` +
      'This etcd has no TLS and no authentication: whoever reaches that address can read and change everything in it',
    fix: 'keep 127.0.0.1 unless you mean that; to serve other machines, set tls.enabled: true in etcd-lab.yaml (TLS with client certificates: only holders of a lab certificate get in)',
  };
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
