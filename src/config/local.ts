// Per-person settings: host ports, bind address, image overrides and the stats credentials.
// They never go into etcd-lab.yaml or the generated files meant to be committed; they are resolved
// from flags > environment > the .env beside etcd-lab.yaml > the spec, and written to the
// generated .env that docker compose reads.
import { randomBytes } from 'node:crypto';
import { parseEnv } from 'node:util';
import type { Problem } from '../errors.js';
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
  /** Contents of the .env generated last time, so credentials survive regeneration. */
  previous?: string;
}

export function parseDotenv(text: string | undefined): Record<string, string> {
  return text ? (parseEnv(text) as Record<string, string>) : {};
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
  const warnings: Problem[] = [];
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

  function portOf(key: 'clientPort' | 'statsPort', fallback: number): number {
    const { value, from } = pick(key, () => fallback);
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > 65535) {
      problems.push({ path: from || key, message: `must be a port number from 1 to 65535 (got ${JSON.stringify(value)})` });
      return fallback;
    }
    return n;
  }

  const bind = pick('bindAddress', () => spec.haproxy.bindAddress);
  const settings: LocalSettings = {
    clientPort: portOf('clientPort', spec.haproxy.clientPort),
    statsPort: portOf('statsPort', spec.haproxy.statsPort),
    bindAddress: bind.value,
    etcdImage: pick('etcdImage', () => spec.etcd.image).value,
    haproxyImage: pick('haproxyImage', () => spec.haproxy.image).value,
    statsUser: pick('statsUser', () => previous[ENV_VARS.statsUser] || 'etcd-lab').value,
    statsPassword: pick('statsPassword', () => previous[ENV_VARS.statsPassword] || makePassword()).value,
  };
  if (!/^(\d{1,3}\.){3}\d{1,3}$/.test(settings.bindAddress)) {
    problems.push({ path: 'bind address', message: `must be an IPv4 address such as 127.0.0.1 (got ${settings.bindAddress})` });
  } else if (!settings.bindAddress.startsWith('127.') && !spec.tls.enabled) {
    warnings.push(exposedWarning(settings, bind.from || 'haproxy.bindAddress'));
  }
  if (settings.clientPort === settings.statsPort) {
    problems.push({ path: 'stats port', message: `is the same as the client port (${settings.clientPort})`, fix: 'give each its own port' });
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
