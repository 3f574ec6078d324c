// Small parsers for spec values. Each returns the parsed value or an Invalid carrying
// the message and the fix, so the reader can collect every problem at once. Each also says, as a
// JSON Schema fragment, what it accepts: the schema editors use is built from these very parsers.

export class Invalid {
  constructor(
    readonly message: string,
    readonly fix?: string,
  ) {}
}

export type Parsed<T> = T | Invalid;

/** A JSON Schema (draft-07) fragment; its `description` says in words what the parser accepts. */
export type JsonSchema = Record<string, unknown>;

export interface FieldParser<T> {
  (raw: unknown): Parsed<T>;
  /** What the parser accepts, as a JSON Schema fragment (see acceptedValues for the same in words). */
  schema: JsonSchema;
  /** How a parsed value is written in etcd-lab.yaml (1000 ms → "1s"), for the schema's defaults. */
  show?: (value: T) => unknown;
}

/** Attaches the schema (and how values are written) to a parse function. */
export function parser<T>(parse: (raw: unknown) => Parsed<T>, schema: JsonSchema, show?: (value: T) => unknown): FieldParser<T> {
  return Object.assign(parse, { schema, show });
}

/** What a parser accepts, in words, for the spec reference: its schema's own words, or its values or range. */
export function acceptedValues(schema: JsonSchema): string {
  if (typeof schema.description === 'string') return schema.description;
  if (Array.isArray(schema.enum)) return `one of ${schema.enum.join(', ')}`;
  if (schema.type === 'boolean') return 'true or false';
  if (schema.type === 'integer') return `a whole number from ${String(schema.minimum)} to ${String(schema.maximum)}`;
  return String(schema.type);
}

function describe(raw: unknown): string {
  if (raw === null) return 'null';
  if (Array.isArray(raw)) return 'a list';
  if (typeof raw === 'object') return 'a mapping';
  return typeof raw === 'string' ? JSON.stringify(raw) : String(raw);
}

export function integer(min: number, max: number, fix?: string): FieldParser<number> {
  return parser((raw) => {
    const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
    if (typeof n !== 'number' || !Number.isInteger(n)) {
      return new Invalid(`must be a whole number (got ${describe(raw)})`, fix);
    }
    if (n < min || n > max) return new Invalid(`must be between ${min} and ${max} (got ${n})`, fix);
    return n;
  }, { type: 'integer', minimum: min, maximum: max });
}

export function oneOf<T extends string>(choices: readonly T[]): FieldParser<T> {
  return parser(
    (raw) =>
      typeof raw === 'string' && (choices as readonly string[]).includes(raw)
        ? (raw as T)
        : new Invalid(`must be one of ${choices.join(', ')} (got ${describe(raw)})`),
    { type: 'string', enum: [...choices] },
  );
}

export function text(pattern: RegExp, what: string, fix?: string): FieldParser<string> {
  return parser(
    (raw) => (typeof raw === 'string' && pattern.test(raw) ? raw : new Invalid(`must be ${what} (got ${describe(raw)})`, fix)),
    { type: 'string', pattern: pattern.source, description: what },
  );
}

export const boolean = parser(
  (raw): Parsed<boolean> => (typeof raw === 'boolean' ? raw : new Invalid(`must be true or false (got ${describe(raw)})`)),
  { type: 'boolean' },
);

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** "100ms", "1.5s", "2m" → milliseconds, within [minMs, maxMs]. */
export function duration(minMs: number, maxMs: number): FieldParser<number> {
  return parser((raw) => {
    const m = typeof raw === 'string' ? DURATION.exec(raw.trim()) : null;
    if (!m) return new Invalid(`must be a duration such as 500ms or 2s (got ${describe(raw)})`);
    const ms = Number(m[1]) * DURATION_UNITS[m[2]!]!;
    if (!Number.isInteger(ms)) return new Invalid(`must be a whole number of milliseconds (got ${String(raw)})`);
    if (ms < minMs || ms > maxMs) {
      return new Invalid(`must be between ${formatDuration(minMs)} and ${formatDuration(maxMs)} (got ${String(raw)})`);
    }
    return ms;
  }, { type: 'string', pattern: DURATION.source, description: `a duration from ${formatDuration(minMs)} to ${formatDuration(maxMs)}, such as 500ms or 2s` }, formatDuration);
}

export function formatDuration(ms: number): string {
  if (ms >= 86_400_000 && ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

const SIZE_UNITS: Record<string, number> = { '': 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
const SIZE = /^(\d+)\s*(KiB|MiB|GiB)?$/;

/** 2147483648, "2GiB", "512MiB" → bytes, within [min, max]. */
export function size(min: number, max: number): FieldParser<number> {
  return parser((raw) => {
    let bytes: number | undefined;
    if (typeof raw === 'number' && Number.isInteger(raw)) bytes = raw;
    const m = typeof raw === 'string' ? SIZE.exec(raw.trim()) : null;
    if (m) bytes = Number(m[1]) * SIZE_UNITS[m[2] ?? '']!;
    if (bytes === undefined) return new Invalid(`must be a size such as 2GiB or 512MiB (got ${describe(raw)})`);
    if (bytes < min || bytes > max) {
      return new Invalid(`must be between ${formatSize(min)} and ${formatSize(max)} (got ${formatSize(bytes)})`);
    }
    return bytes;
  }, {
    anyOf: [{ type: 'integer', minimum: min, maximum: max }, { type: 'string', pattern: SIZE.source }],
    description: `a size from ${formatSize(min)} to ${formatSize(max)}, such as 2GiB or 512MiB`,
  }, formatSize);
}

export function formatSize(bytes: number): string {
  for (const unit of ['GiB', 'MiB', 'KiB'] as const) {
    if (bytes >= SIZE_UNITS[unit]! && bytes % SIZE_UNITS[unit]! === 0) return `${bytes / SIZE_UNITS[unit]!}${unit}`;
  }
  return `${bytes} bytes`;
}

/** Levenshtein distance, for "did you mean" on unknown keys. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}

// An image reference as Docker reads it (github.com/distribution/reference): [host[:port]/]path
// [:tag] [@digest], the path lowercase. Checked here so a typo fails at `generate`, not at the engine.
const DOMAIN_PART = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_PART}(?:\\.${DOMAIN_PART})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const PATH_PART = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const IMAGE_REFERENCE = new RegExp(`^(?:${DOMAIN}/)?${PATH_PART}(?:/${PATH_PART})*(?::[\\w][\\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`);

/** Why `ref` is not an image reference Docker accepts, or undefined when it is one. */
export function imageReferenceProblem(ref: string): string | undefined {
  if (ref.trim() === '') return 'is empty';
  if (/\s/.test(ref)) return 'contains a space';
  if (IMAGE_REFERENCE.test(ref)) {
    const name = ref.replace(/@.*$/, '').replace(/:[^:/]*$/, '');
    return name.length > 255 ? 'has a repository name longer than 255 characters' : undefined;
  }
  // The first part is a registry host when it has a dot or a port, or is localhost (as Docker decides).
  const slash = ref.indexOf('/');
  const first = slash < 0 ? '' : ref.slice(0, slash);
  const hasHost = first !== '' && (/[.:]/.test(first) || first === 'localhost');
  const path = (hasHost ? ref.slice(slash + 1) : ref).replace(/@.*$/, '').replace(/:[^:/]*$/, '');
  if (/[A-Z]/.test(path)) return 'has capital letters in its repository name, which Docker refuses: repository names are lowercase';
  return 'is not an image reference Docker accepts: [registry[:port]/]name[:tag][@digest], the name in lowercase letters, digits and . _ - separators';
}

/** An image reference, such as `example`. */
export function image(example: string, opts: { empty?: boolean } = {}): FieldParser<string> {
  return parser(
    (raw) => {
      if (typeof raw !== 'string') return new Invalid(`must be an image reference such as ${example} (got ${describe(raw)})`);
      if (opts.empty && raw === '') return raw;
      const problem = imageReferenceProblem(raw);
      return problem ? new Invalid(`${problem} (got ${JSON.stringify(raw)})`, `use a reference such as ${example}${/[A-Z]/.test(raw) ? `, or ${raw.toLowerCase()}` : ''}`) : raw;
    },
    {
      type: 'string',
      pattern: opts.empty ? `^$|${IMAGE_REFERENCE.source}` : IMAGE_REFERENCE.source,
      description: `an image reference such as ${example}${opts.empty ? ', or empty' : ''}`,
    },
  );
}
