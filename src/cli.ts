// The entry point: parses flags, calls a command, prints its result. The only place that prints
// errors or decides the exit code. Commands are imported lazily so `--help` starts fast.
import { Command, CommanderError, Option } from 'commander';
import { UserError } from './errors.js';
import type { SpecFlags } from './commands/common.js';

interface OutputFlags {
  json?: boolean;
  quiet?: boolean;
}

function specOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <path>', 'lab spec to read (default: ./etcd-lab.yaml; without one, the defaults)')
    .option('-o, --out <dir>', 'where the generated files go (default: generated/ beside the spec)')
    .option('--name <name>', 'override the lab name from the spec')
    .option('--members <n>', 'override the member count (1, 3, 5 or 7)')
    .option('--subnet <cidr>', 'override the lab subnet (private IPv4 CIDR)')
    .option('--client-port <port>', 'host port for etcd clients (else $ETCD_LAB_CLIENT_PORT, .env, spec)')
    .option('--stats-port <port>', 'host port for the HAProxy stats page (else $ETCD_LAB_STATS_PORT, .env, spec)')
    .option('--bind-address <ip>', 'host address the ports bind to (else $ETCD_LAB_BIND_ADDRESS, .env, spec)')
    .option('--etcd-image <ref>', 'etcd image for this machine (else $ETCD_LAB_ETCD_IMAGE, .env, spec)')
    .option('--haproxy-image <ref>', 'HAProxy image for this machine (else $ETCD_LAB_HAPROXY_IMAGE, .env, spec)');
}

function outputOptions(cmd: Command, json = true): Command {
  if (json) cmd.option('--json', 'print the result as JSON on stdout (progress is not shown)');
  return cmd.option('-q, --quiet', 'show no progress, only warnings and errors');
}

async function reporter(flags: OutputFlags) {
  const { reporterFor } = await import('./ui/reporter.js');
  return reporterFor(flags);
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function buildProgram(): Command {
  const program = new Command('etcd-lab')
    .description('A highly available external etcd cluster behind HAProxy on your machine, and a KIND cluster that uses it.')
    .option('-v, --verbose', 'show stack traces on errors')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false })
    .exitOverride();

  program
    .command('init')
    .description('write a commented etcd-lab.yaml with every setting at its default')
    .option('-c, --config <path>', 'where to write the spec', 'etcd-lab.yaml')
    .option('-f, --force', 'overwrite an existing file')
    .action(async (flags: { config: string; force?: boolean }) => {
      const { initSpec } = await import('./commands/init.js');
      const path = await initSpec(flags);
      process.stdout.write(`wrote ${path}\nnext: edit it if you like, then run \`etcd-lab generate\` or \`etcd-lab up\`\n`);
    });

  outputOptions(specOptions(program.command('generate')))
    .description('render the lab (compose file, haproxy.cfg, kind config, .env) into generated/')
    .action(async (flags: SpecFlags & OutputFlags) => {
      const [{ generate, describeFiles }, { loadOptionsFrom }] = await Promise.all([
        import('./commands/generate.js'),
        import('./commands/common.js'),
      ]);
      const result = await generate(loadOptionsFrom(flags), await reporter(flags));
      if (flags.json) {
        printJson({ outDir: result.outDir, files: result.files, endpointMode: result.endpointMode, spec: result.lab.spec });
      } else if (!flags.quiet) {
        process.stdout.write(`generated ${result.files.length} files:\n${describeFiles(result).join('\n')}\n`);
      }
    });

  const images = program.command('images').description('local etcd and HAProxy images for machines that cannot pull');
  outputOptions(images.command('build'))
    .description('build etcd and HAProxy images from Debian trixie packages (no registry needed)')
    .addOption(new Option('--force', 'rebuild even if the images exist'))
    .action(async (flags: OutputFlags & { force?: boolean }) => {
      const { buildLocalImages } = await import('./commands/images.js');
      const result = await buildLocalImages({ force: flags.force }, await reporter(flags));
      if (flags.json) printJson(result);
      else if (!flags.quiet) process.stdout.write(`${result.summary}\n`);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      return error.exitCode;
    }
    const verbose = program.opts().verbose || process.env.ETCD_LAB_DEBUG;
    if (error instanceof UserError) {
      process.stderr.write(`error: ${error.describe()}\n`);
      if (verbose && error.cause) process.stderr.write(`${String((error.cause as Error).stack ?? error.cause)}\n`);
      return error.exitCode;
    }
    const e = error as Error;
    process.stderr.write(`error: ${e.message}\n`);
    process.stderr.write(verbose ? `${e.stack}\n` : 'This looks like a bug in etcd-lab: run again with --verbose and report the stack trace.\n');
    return 1;
  }
}
