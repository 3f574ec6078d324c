// What every command module shares: the flags that pick and override the spec, output flags, and
// small parsers. Light on purpose (types and commander only): the CLI loads it for `--help`.
import { InvalidArgumentError, type Command } from 'commander';
import { UserError } from '../errors.js';
import type { LoadOptions } from '../config/load.js';
import type { SpecOverride } from '../config/read.js';
import type { Reporter } from '../progress.js';
import { ExitCode } from '../exit-codes.js';

export interface SpecFlags {
  config?: string;
  out?: string;
  name?: string;
  members?: string;
  subnet?: string;
  clientPort?: string;
  statsPort?: string;
  bindAddress?: string;
  etcdImage?: string;
  haproxyImage?: string;
}

export interface OutputFlags {
  json?: boolean;
  quiet?: boolean;
}

/** Flags that change the shared spec for this run, and the spec path each one sets. */
const SPEC_FLAGS: [keyof SpecFlags, string, string][] = [
  ['name', 'name', '--name'],
  ['members', 'members', '--members'],
  ['subnet', 'network.subnet', '--subnet'],
];

export function loadOptionsFrom(flags: SpecFlags): LoadOptions {
  const overrides: SpecOverride[] = [];
  for (const [flag, path, source] of SPEC_FLAGS) {
    const value = flags[flag];
    if (value !== undefined) overrides.push({ path, value: /^\d+$/.test(value) ? Number(value) : value, source });
  }
  return {
    config: flags.config,
    out: flags.out,
    overrides,
    local: {
      clientPort: flags.clientPort,
      statsPort: flags.statsPort,
      bindAddress: flags.bindAddress,
      etcdImage: flags.etcdImage,
      haproxyImage: flags.haproxyImage,
    },
  };
}

/** The flags that pick the spec and the per-person values (`upgrade` gives --etcd-image its own meaning). */
export function specOptions(cmd: Command, opts: { etcdImage?: boolean } = {}): Command {
  cmd
    .option('-c, --config <path>', 'lab spec to read (default: ./etcd-lab.yaml; without one, the defaults)', once)
    .option('-o, --out <dir>', 'where the generated files go (default: generated/ beside the spec)', once)
    .option('--name <name>', 'override the lab name from the spec', once)
    .option('--members <n>', 'override the member count (1, 3, 5 or 7)', once)
    .option('--subnet <cidr>', 'override the lab subnet (private IPv4 CIDR)', once)
    .option('--client-port <port>', 'host port for etcd clients (else $ETCD_LAB_CLIENT_PORT, .env, spec)', once)
    .option('--stats-port <port>', 'host port for the HAProxy stats page (else $ETCD_LAB_STATS_PORT, .env, spec)', once)
    .option('--bind-address <ip>', 'host address the ports bind to (else $ETCD_LAB_BIND_ADDRESS, .env, spec)', once);
  if (opts.etcdImage !== false) cmd.option('--etcd-image <ref>', 'etcd image for this machine (else $ETCD_LAB_ETCD_IMAGE, .env, spec)', once);
  return cmd.option('--haproxy-image <ref>', 'HAProxy image for this machine (else $ETCD_LAB_HAPROXY_IMAGE, .env, spec)', once);
}

export function outputOptions(cmd: Command, json = true): Command {
  if (json) cmd.option('--json', 'print the result as JSON on stdout (progress is not shown)');
  return cmd.option('-q, --quiet', 'show no progress, only warnings and errors');
}

export async function reporter(flags: OutputFlags): Promise<Reporter> {
  const { reporterFor } = await import('../ui/reporter.js');
  return reporterFor(flags);
}

/** A flag's value parser that refuses the flag given twice (commander would keep the last one silently). */
export function once(value: string, previous: string | undefined): string {
  if (previous !== undefined) throw new InvalidArgumentError(`given twice (${JSON.stringify(previous)}, then ${JSON.stringify(value)}): give it once`);
  return value;
}

/** The longest wait a flag takes: a day (Node's timers cannot wait beyond about 24.8 days anyway). */
const MAX_SECONDS = 86_400;

/** "60" → 60000 ms; refuses anything but a positive number up to a day. */
export function seconds(text: string, flag: string): number {
  const n = Number(text);
  // Under a millisecond would round to no time at all.
  if (text.trim() === '' || !Number.isFinite(n) || n < 0.001 || n > MAX_SECONDS) {
    throw new UserError(`${flag} takes a number of seconds from more than 0 up to ${MAX_SECONDS} (got ${JSON.stringify(text)})`, { exitCode: ExitCode.badInput });
  }
  return Math.round(n * 1000);
}

/** "3" → 3; refuses anything but a whole number from min to max. */
export function whole(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new UserError(`${flag} takes a whole number from ${min} to ${max} (got "${value}")`, { exitCode: ExitCode.badInput });
  return n;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function print(lines: string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The exit code the command's action returned (a verdict such as check's 5): `main` returns it. */
export const ending = { code: ExitCode.ok as number };

/**
 * Every action goes through here: what it returns is the command's exit code (commander itself
 * drops what an action returns); nothing, 0. Errors still go to `main`, which names them.
 */
export function ends<A extends unknown[]>(handler: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    ending.code = (await handler(...args)) ?? ExitCode.ok;
  };
}

/**
 * The one ending of a command that has a result: --json prints it whole; --quiet prints nothing for
 * an action that went well (a listing's result is its output, and a failed verdict is always
 * said); otherwise `text`'s lines. Returns the exit code: the verdict's, 0 by default.
 */
export function finish<R>(flags: OutputFlags, result: R, text: (result: R) => string[], opts: { kind?: 'listing' | 'action'; exitCode?: number } = {}): number {
  const code = opts.exitCode ?? ExitCode.ok;
  if (flags.json) printJson(result);
  else if (!(flags.quiet && (opts.kind ?? 'action') === 'action' && code === ExitCode.ok)) {
    const lines = text(result);
    if (lines.length > 0) print(lines);
  }
  return code;
}

/**
 * A command that runs one lab operation and prints its result: as JSON with --json, else as `text`'s
 * lines. A listing shows no progress and prints even with --quiet (its result is the output); an
 * action shows its steps and prints nothing with --quiet.
 */
export function resultCommand<R>(
  command: Command,
  description: string,
  run: (load: LoadOptions, reporter: Reporter) => Promise<R>,
  text: (result: R) => string[],
  kind: 'listing' | 'action',
): Command {
  return outputOptions(specOptions(command))
    .description(description)
    .action(
      ends(async (flags: SpecFlags & OutputFlags) => {
        const result = await run(loadOptionsFrom(flags), await reporter(kind === 'listing' ? { ...flags, quiet: true } : flags));
        return finish(flags, result, text, { kind });
      }),
    );
}
