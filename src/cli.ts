// The entry point: registers the commands, prints errors once and decides the exit code. Each
// command's flags, action and output live in src/commands/<name>.ts; their heavy code is imported
// only when the command runs, so `--help` starts fast.
import { Command, CommanderError } from 'commander';
import { COMMANDS } from './commands/index.js';
import { ending } from './commands/shared.js';
import { UserError } from './errors.js';
import { dockerRefusal } from './engine/engine.js';
import { describeFetchError, isTransient } from './protocol/etcd-http.js';
import { installInterruptHandlers, Interrupted } from './interrupt.js';
import { ExitCode } from './exit-codes.js';

export function buildProgram(): Command {
  const program = new Command('etcd-lab')
    .description('A highly available external etcd cluster behind HAProxy on your machine, and a KIND cluster that uses it.')
    .option('-v, --verbose', 'show stack traces on errors')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false })
    .exitOverride();
  for (const command of COMMANDS) command.register(program);
  return program;
}

/** `signals: false` leaves SIGINT/SIGTERM to the host process (tests that run the CLI in their own). */
export async function main(argv: string[], opts: { signals?: boolean } = {}): Promise<number> {
  const program = buildProgram();
  if (opts.signals !== false) installInterruptHandlers();
  try {
    ending.code = ExitCode.ok;
    await program.parseAsync(argv);
    // What the command's action returned: 0, or a verdict to report (check: 5).
    return ending.code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors (printed by commander) are the user's: 2, as every user mistake.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.badInput;
    }
    const verbose = program.opts().verbose || process.env.ETCD_LAB_DEBUG;
    const refusal = dockerRefusal(error);
    if (refusal) error = refusal;
    if (error instanceof UserError) {
      process.stderr.write(`${error instanceof Interrupted ? '' : 'error: '}${error.describe()}\n`);
      if (verbose && error.cause) process.stderr.write(`${String((error.cause as Error).stack ?? error.cause)}\n`);
      return error.exitCode;
    }
    const e = error as Error & { url?: string };
    if (e.url !== undefined && isTransient(e)) {
      // A member (or HAProxy) that went away while a command asked it: the lab's state, not a bug.
      process.stderr.write(`error: ${e.url} did not answer (${describeFetchError(e)})\n`);
      process.stderr.write('Right after a failure the lab may still be electing a leader: `etcd-lab status` shows which members serve; run the command again.\n');
      if (verbose) process.stderr.write(`${e.stack}\n`);
      return ExitCode.refused;
    }
    process.stderr.write(`error: ${e.message}\n`);
    process.stderr.write(verbose ? `${e.stack}\n` : 'This looks like a bug in etcd-lab: run again with --verbose and report the stack trace.\n');
    return ExitCode.nothingDone;
  }
}
