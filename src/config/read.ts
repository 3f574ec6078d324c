// LabSpecInput (whatever etcd-lab.yaml holds, plus flag overrides) → LabSpec, collecting every
// problem with its path. Unknown keys are problems too. Cross-field rules live in validate.ts.
import type { Problem } from '../errors.js';
import { DEFAULTS } from './defaults.js';
import {
  acceptedValues,
  boolean,
  duration,
  editDistance,
  image,
  integer,
  Invalid,
  oneOf,
  parser,
  size,
  text,
  type FieldParser,
  type JsonSchema,
} from './fields.js';
import {
  API_VERSION,
  BALANCE_ALGORITHMS,
  COMPACTION_MODES,
  KIND_ENDPOINT_MODES,
  MEMBER_COUNTS,
  type LabSpec,
} from './types.js';
import { CIDR_PATTERN, IPV4_PATTERN, parseIpv4 } from './network.js';
import { validateSpec } from './validate.js';

/** A value set from outside the file (a CLI flag), applied on top of etcd-lab.yaml. */
export interface SpecOverride {
  /** Dotted spec path, e.g. "members" or "network.subnet". */
  path: string;
  value: unknown;
  /** Where it came from, for messages: "--members". */
  source: string;
}

export interface SpecResult {
  spec: LabSpec;
  problems: Problem[];
  warnings: Problem[];
}

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** DNS-label-like names: they become compose project, container, network and volume names. */
const NAME = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;
const NAME_RULE = 'lowercase letters, digits and dashes, at most 40 characters, starting and ending with a letter or digit';

/** A member count etcd is safe with (1, 3, 5 or 7), or why not; `scale` checks its argument with it too. */
export const memberCount = parser((raw) => {
  const n = integer(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 'use 1, 3, 5 or 7')(raw);
  if (n instanceof Invalid) return n;
  if (n < 1) return new Invalid(`must be at least 1 (got ${n}): a lab is its members`, 'use 1, 3, 5 or 7');
  if (n % 2 === 0) {
    const tolerated = (n - 1 - ((n - 1) % 2)) / 2;
    return new Invalid(
      `must be odd (got ${n}): ${n} members tolerate ${tolerated} failure${tolerated === 1 ? '' : 's'}, ` +
        `like ${n - 1}, and a ${n / 2}:${n / 2} split leaves neither side a quorum`,
      `use ${n - 1} or ${n + 1}`,
    );
  }
  if (n > 7) {
    return new Invalid(`must be at most 7 (got ${n}): every write waits for a majority, so more members only slow it`, 'use 3, 5 or 7');
  }
  return n;
}, { type: 'integer', enum: [...MEMBER_COUNTS] });

const bindAddress = parser(
  (raw) => {
    if (typeof raw !== 'string' || parseIpv4(raw) === undefined) {
      return new Invalid(`must be an IPv4 address such as 127.0.0.1 (got ${JSON.stringify(raw)})`);
    }
    return raw as string;
  },
  { type: 'string', pattern: IPV4_PATTERN, description: 'an IPv4 address such as 127.0.0.1' },
);


const apiVersion = parser(
  (raw) =>
    raw === API_VERSION
      ? API_VERSION
      : new Invalid(`must be ${API_VERSION} (got ${JSON.stringify(raw)})`, `this etcd-lab reads ${API_VERSION} only`),
  { type: 'string', enum: [API_VERSION] },
);

const retention = parser(
  (raw) => (typeof raw === 'number' ? String(raw) : text(/^\S+$/, 'a duration such as 1h, or a revision count')(raw)),
  { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^\\S+$' }], description: 'a duration such as 1h (periodic mode), or a revision count (revision mode)' },
);

const DAY = 86_400_000;

/** An IPv4 CIDR; what makes it usable (private, no host bits, big enough) is validate.ts's. */
const CIDR = new RegExp(CIDR_PATTERN);

const port = (what: string) => integer(1, 65535, `choose a free ${what} port, or set it per person in .env`);

class SpecReader {
  readonly problems: Problem[] = [];
  /** Paths whose value was refused: cross-field rules skip them rather than report twice. */
  readonly refused = new Set<string>();
  /** Every path the spec knows, leaves and the mappings above them. */
  private readonly known = new Set<string>();
  /** Every leaf with its parser and default, in the order read: what the JSON Schema is built from. */
  readonly leaves: { path: string; parse: FieldParser<unknown>; fallback: unknown; description: string }[] = [];

  constructor(
    private readonly input: Mapping,
    private readonly sources: Map<string, string>,
  ) {}

  label(path: string): string {
    const source = this.sources.get(path);
    return source ? `${path} (from ${source})` : path;
  }

  field<T>(path: string, fallback: T, parse: FieldParser<T>, description: string): T {
    this.leaves.push({ path, parse: parse as FieldParser<unknown>, fallback, description });
    const parts = path.split('.');
    parts.forEach((_, i) => this.known.add(parts.slice(0, i + 1).join('.')));
    let node: unknown = this.input;
    for (const [i, part] of parts.entries()) {
      if (node === undefined || node === null) return fallback;
      if (!isMapping(node)) {
        // Reported once, by unknownKeys' walk of the parent, so skip silently here.
        return fallback;
      }
      node = node[part];
      if (i < parts.length - 1 && node !== undefined && node !== null && !isMapping(node)) {
        const parent = parts.slice(0, i + 1).join('.');
        if (!this.problems.some((p) => p.path === parent)) {
          this.problems.push({ path: parent, message: 'must be a mapping of settings' });
        }
        return fallback;
      }
    }
    if (node === undefined) return fallback;
    const parsed = parse(node);
    if (parsed instanceof Invalid) {
      this.refused.add(path);
      this.problems.push({ path: this.label(path), message: parsed.message, fix: parsed.fix });
      return fallback;
    }
    return parsed;
  }

  /** Reports keys the spec does not know, suggesting the nearest known sibling. */
  unknownKeys(node: unknown = this.input, prefix = ''): void {
    if (!isMapping(node)) return;
    for (const [key, value] of Object.entries(node)) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (this.known.has(path)) {
        this.unknownKeys(value, path);
        continue;
      }
      const siblings = [...this.known].filter((k) => k.startsWith(prefix ? `${prefix}.` : '') && k.split('.').length === path.split('.').length).map((k) => k.split('.').pop()!);
      const near = siblings.filter((s) => editDistance(s, key) <= Math.max(2, Math.floor(key.length / 3)));
      this.problems.push({
        path,
        message: 'is not a setting etcd-lab knows',
        fix: near.length > 0 ? `did you mean ${near.join(' or ')}?` : `settings here: ${siblings.join(', ')}`,
      });
    }
  }
}

function setPath(target: Mapping, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (!isMapping(node[part])) node[part] = {};
    node = node[part] as Mapping;
  }
  node[parts.at(-1)!] = value;
}

/**
 * Reads a spec from the parsed etcd-lab.yaml (undefined or null: no file, all defaults) and flag
 * overrides. Never throws for bad input: everything wrong is in `problems`.
 */
export function readSpec(input: unknown, overrides: SpecOverride[] = []): SpecResult {
  if (input !== undefined && input !== null && !isMapping(input)) {
    return {
      spec: structuredClone(DEFAULTS),
      problems: [{ path: '(top level)', message: 'must be a mapping of settings', fix: 'run `etcd-lab init` for a commented example' }],
      warnings: [],
    };
  }
  const merged: Mapping = structuredClone(input ?? {}) as Mapping;
  const sources = new Map<string, string>();
  for (const o of overrides) {
    setPath(merged, o.path, o.value);
    sources.set(o.path, o.source);
  }

  const r = new SpecReader(merged, sources);
  const spec = readFields(r);
  r.unknownKeys();
  const checked = validateSpec(spec, { label: (path) => r.label(path), refused: r.refused });
  return { spec, problems: [...r.problems, ...checked.problems], warnings: checked.warnings };
}

/** Every field of the spec: its path, its default and the parser that reads it, in one place. */
function readFields(r: SpecReader): LabSpec {
  const d = DEFAULTS;
  r.field('apiVersion', API_VERSION, apiVersion, 'The spec format this file is written in.');
  const name = r.field('name', d.name, text(NAME, NAME_RULE), 'Names the compose project, the containers, network and volumes, and their labels. Two labs on one machine need two names.');
  return {
    apiVersion: API_VERSION,
    name,
    members: r.field('members', d.members, memberCount, 'How many etcd members: 1, 3, 5 or 7. N members tolerate (N−1)/2 failures; an even count tolerates no more than the odd count below it.'),
    network: {
      subnet: r.field('network.subnet', d.network.subnet, text(CIDR, 'an IPv4 CIDR such as 10.79.0.0/24'), "The lab's private (RFC 1918) subnet: HAProxy gets .2, members .11, .12, … A /28 holds 3 members, 5 or 7 need a /27; the default stays clear of Docker's own pools."),
    },
    etcd: {
      image: r.field('etcd.image', d.etcd.image, image('gcr.io/etcd-development/etcd:v3.5.33'), 'The etcd image (per person: ETCD_LAB_ETCD_IMAGE, --etcd-image). kubeadm needs 3.5.24 or later for an external etcd; an older one is accepted with a warning.'),
      heartbeatIntervalMs: r.field('etcd.heartbeatInterval', d.etcd.heartbeatIntervalMs, duration(10, 5000), "etcd's --heartbeat-interval: how often the leader tells followers it is alive."),
      electionTimeoutMs: r.field('etcd.electionTimeout', d.etcd.electionTimeoutMs, duration(50, 50_000), "etcd's --election-timeout: how long a follower waits without a heartbeat before it starts an election. At least 5 × heartbeatInterval."),
      autoCompaction: {
        mode: r.field('etcd.autoCompaction.mode', d.etcd.autoCompaction.mode, oneOf(COMPACTION_MODES), "etcd's --auto-compaction-mode: periodic (retention is a duration) or revision (retention is a revision count)."),
        retention: r.field('etcd.autoCompaction.retention', d.etcd.autoCompaction.retention, retention, "etcd's --auto-compaction-retention: how much history is kept."),
      },
      // etcd warns above 8 GiB: beyond it, defragmentation and recovery get slow.
      quotaBackendBytes: r.field('etcd.quotaBackendBytes', d.etcd.quotaBackendBytes, size(16 * 1024 ** 2, 8 * 1024 ** 3), "etcd's --quota-backend-bytes: the database size at which etcd raises NOSPACE and refuses writes (16MiB … 8GiB)."),
      snapshotCount: r.field('etcd.snapshotCount', d.etcd.snapshotCount, integer(100, 10_000_000), "etcd's --snapshot-count: applied entries between raft snapshots."),
    },
    haproxy: {
      image: r.field('haproxy.image', d.haproxy.image, image('haproxy:3.2-alpine'), 'The HAProxy image (per person: ETCD_LAB_HAPROXY_IMAGE, --haproxy-image).'),
      bindAddress: r.field('haproxy.bindAddress', d.haproxy.bindAddress, bindAddress, 'Where the published ports listen on the host (per person: ETCD_LAB_BIND_ADDRESS, --bind-address). Outside 127.0.0.0/8 without TLS, a warning.'),
      clientPort: r.field('haproxy.clientPort', d.haproxy.clientPort, port('client'), 'The host port etcd clients connect to (per person: ETCD_LAB_CLIENT_PORT, --client-port).'),
      statsPort: r.field('haproxy.statsPort', d.haproxy.statsPort, port('stats'), "The host port of HAProxy's stats page (/stats) and Prometheus metrics (/metrics) (per person: ETCD_LAB_STATS_PORT, --stats-port)."),
      balance: r.field('haproxy.balance', d.haproxy.balance, oneOf(BALANCE_ALGORITHMS), 'How HAProxy spreads connections among the members it may use: the leader, or during an election those that follow a leader.'),
      healthCheck: {
        intervalMs: r.field('haproxy.healthCheck.interval', d.haproxy.healthCheck.intervalMs, duration(100, 60_000), "How often HAProxy asks each member's status (POST /v3/maintenance/status)."),
        timeoutMs: r.field('haproxy.healthCheck.timeout', d.haproxy.healthCheck.timeoutMs, duration(100, 60_000), 'How long a status check may take before it counts as failed.'),
        rise: r.field('haproxy.healthCheck.rise', d.haproxy.healthCheck.rise, integer(1, 10), 'Passed checks before a member that follows a leader is back in rotation.'),
        fall: r.field('haproxy.healthCheck.fall', d.haproxy.healthCheck.fall, integer(1, 10), 'Failed checks before a member is taken out and the connections HAProxy sent it are closed.'),
      },
    },
    kind: {
      name: r.field('kind.name', name, text(NAME, NAME_RULE), "The KIND cluster's name; the lab's name unless set."),
      nodeImage: r.field('kind.nodeImage', d.kind.nodeImage, image('kindest/node:v1.32.2', { empty: true }), "The kindest/node image; empty: the kind binary's default."),
      endpoint: r.field('kind.endpoint', d.kind.endpoint, oneOf(KIND_ENDPOINT_MODES), 'How the KIND control plane reaches the lab: host (host.docker.internal, Docker Desktop), network (HAProxy on the kind network, a Linux engine), or auto (from the engine).'),
      workers: r.field('kind.workers', d.kind.workers, integer(0, 3), 'KIND worker nodes beside the control plane.'),
    },
    tls: {
      enabled: r.field('tls.enabled', d.tls.enabled, boolean, "TLS on every hop with client certificates: clients, peers, HAProxy's checks and the KIND API server."),
      caValidityMs: r.field('tls.caValidity', d.tls.caValidityMs, duration(DAY, 100 * 365 * DAY), "The lab CA's lifetime (kubeadm's: 10 years)."),
      certValidityMs: r.field('tls.certValidity', d.tls.certValidityMs, duration(DAY, 100 * 365 * DAY), "Member and client certificates' lifetime (kubeadm's: 1 year); re-issued by up or generate when close to expiry."),
    },
  };
}

/**
 * The JSON Schema of etcd-lab.yaml, for editors: built from the same fields and parsers that read
 * the file, so the two cannot drift. Rules across fields (a private subnet big enough for the
 * members, election timeout at least 5 × heartbeat, …) are the validator's alone.
 */
export function specJsonSchema(): JsonSchema {
  const root: JsonSchema = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'etcd-lab.yaml',
    description: 'An etcd-lab spec: every field is optional and has a default (see `etcd-lab init`).',
    type: 'object',
    properties: {},
    additionalProperties: false,
  };
  for (const field of specFields()) {
    const parts = field.path.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const properties = node.properties as Record<string, JsonSchema>;
      node = properties[part] ??= { type: 'object', properties: {}, additionalProperties: false };
    }
    const withDefault = field.default === undefined ? {} : { default: field.default };
    (node.properties as Record<string, JsonSchema>)[parts.at(-1)!] = { ...field.schema, description: `${field.description} Accepts ${field.accepts}.`, ...withDefault };
  }
  return root;
}

/** Every field of the spec, in the order of the file, with its default as written, what it accepts and what it does. */
export function specFields(): { path: string; default?: unknown; accepts: string; description: string; schema: JsonSchema }[] {
  const r = new SpecReader({}, new Map());
  readFields(r);
  return r.leaves.map(({ path, parse, fallback, description }) => ({
    path,
    // kind.name follows the lab's name: its default is not one value.
    ...(path === 'kind.name' ? {} : { default: parse.show ? parse.show(fallback) : fallback }),
    accepts: acceptedValues(parse.schema),
    description,
    schema: parse.schema,
  }));
}
