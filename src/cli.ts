// The entry point: parses flags, calls a command, prints its result. The only place that prints
// errors or decides the exit code. Commands are imported lazily so `--help` starts fast.
import { Command, CommanderError, Option } from 'commander';
import { UserError } from './errors.js';
// Types and flag mapping only: no heavy imports, so loading it eagerly keeps --help fast.
import { loadOptionsFrom, type SpecFlags } from './commands/common.js';

type FaultName = 'kill' | 'stop' | 'start' | 'pause' | 'unpause' | 'partition' | 'heal';

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

function seconds(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UserError(`${flag} takes a number of seconds (got ${JSON.stringify(text)})`, { exitCode: 2 });
  return Math.round(n * 1000);
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
      const { generate, describeFiles } = await import('./commands/generate.js');
      const result = await generate(loadOptionsFrom(flags), await reporter(flags));
      if (flags.json) {
        printJson({ outDir: result.outDir, files: result.files, endpointMode: result.endpointMode, spec: result.lab.spec });
      } else if (!flags.quiet) {
        process.stdout.write(`generated ${result.files.length} files:\n${describeFiles(result).join('\n')}\n`);
      }
    });

  outputOptions(specOptions(program.command('up')))
    .description('generate the lab, start it, and wait until quorum, one leader and every HAProxy backend are real')
    .option('--timeout <seconds>', 'how long to wait for the lab to become ready', '60')
    .option('--retain', 'on failure, keep what this run created (for debugging)')
    .action(async (flags: SpecFlags & OutputFlags & { timeout: string; retain?: boolean }) => {
      const [{ up }, { formatStatus }] = await Promise.all([import('./commands/up.js'), import('./ui/status-view.js')]);
      const timeoutMs = seconds(flags.timeout, '--timeout');
      const result = await up({ ...loadOptionsFrom(flags), timeoutMs, retain: flags.retain }, await reporter(flags));
      if (flags.json) return printJson(result);
      if (flags.quiet) return;
      const lines = [
        '',
        result.alreadyUp ? `lab ${result.name} is already up; nothing to change.` : `lab ${result.name} is ready in ${(result.elapsedMs / 1000).toFixed(1)}s.`,
        '',
        formatStatus(result.status),
        '',
        `  etcdctl --endpoints ${result.clientEndpoint.replace(/^http:\/\//, '')} put greeting hello`,
        `  stats page credentials: ETCD_LAB_STATS_USER / ETCD_LAB_STATS_PASSWORD in ${result.credentialsFile}`,
        '  next: `etcd-lab kind` for a KIND cluster on this etcd; `etcd-lab down` to stop (data kept)',
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  outputOptions(specOptions(program.command('down')))
    .description('remove the lab\'s containers and network; data volumes are kept unless --volumes')
    .option('--volumes', 'also delete the data volumes (asks first)')
    .option('-y, --yes', 'do not ask before deleting data')
    .action(async (flags: SpecFlags & OutputFlags & { volumes?: boolean; yes?: boolean }) => {
      const [{ down }, { confirmOnTerminal }] = await Promise.all([import('./commands/down.js'), import('./ui/confirm.js')]);
      const result = await down({ ...loadOptionsFrom(flags), volumes: flags.volumes, yes: flags.yes, confirm: confirmOnTerminal() }, await reporter(flags));
      if (flags.json) return printJson(result);
      if (flags.quiet) return;
      const { containers, networks, volumes } = result.removed;
      const parts = [
        `removed ${containers.length} containers${networks.length ? ` and network ${networks.join(', ')}` : ''}`,
        volumes.length > 0 ? `deleted ${volumes.length} data volumes` : '',
        result.keptVolumes.length > 0 ? `kept ${result.keptVolumes.length} data volumes (\`etcd-lab up\` resumes; \`down --volumes\` deletes them)` : '',
      ].filter(Boolean);
      process.stdout.write(containers.length === 0 && networks.length === 0 && volumes.length === 0 ? `lab ${result.name} was not running\n` : `${parts.join('; ')}\n`);
    });

  outputOptions(specOptions(program.command('status')))
    .description('members, leader, raft term and index, db size, version, HAProxy backend state, quorum')
    .option('-w, --watch [seconds]', 'refresh until interrupted (every second, or as given)')
    .action(async (flags: SpecFlags & OutputFlags & { watch?: boolean | string }) => {
      const [{ status, statusWatcher }, { formatStatus }] = await Promise.all([import('./commands/status.js'), import('./ui/status-view.js')]);
      const options = loadOptionsFrom(flags);
      if (!flags.watch) {
        const result = await status(options);
        if (flags.json) printJson(result);
        else process.stdout.write(`${formatStatus(result)}\n`);
        return;
      }
      const every = flags.watch === true ? 1000 : seconds(flags.watch, '--watch');
      const read = await statusWatcher(options);
      const tty = Boolean(process.stdout.isTTY) && !flags.json;
      for (;;) {
        const result = await read();
        if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        else process.stdout.write(`${tty ? '\x1b[2J\x1b[H' : '\n'}${new Date().toLocaleTimeString()}  ${formatStatus(result)}\n`);
        await new Promise((r) => setTimeout(r, every));
      }
    });

  specOptions(program.command('logs'))
    .description('container logs of one member (etcd1, …, haproxy) or of all, prefixed')
    .argument('[member]', 'etcd1, etcd2, …, or haproxy; all when left out')
    .option('-f, --follow', 'keep printing new lines')
    .option('-n, --tail <lines>', 'only the last lines of each')
    .action(async (member: string | undefined, flags: SpecFlags & { follow?: boolean; tail?: string }) => {
      const { logs } = await import('./commands/logs.js');
      await logs({ ...loadOptionsFrom(flags), member, follow: flags.follow, tail: flags.tail === undefined ? undefined : Number(flags.tail) });
    });

  const faults: [FaultName, string, string][] = [
    ['kill', '<members...>', 'SIGKILL members (or "leader"): no graceful handover, so an election follows'],
    ['stop', '<members...>', 'stop members gracefully (SIGTERM: a leader hands over first)'],
    ['start', '[members...]', 'start stopped or killed members (all of them when none is named), then wait until they serve'],
    ['pause', '<members...>', 'freeze members (docker pause): alive to the network, silent to raft'],
    ['unpause', '[members...]', 'thaw paused members (all when none is named), then wait until they serve'],
    ['partition', '<members...>', 'cut members off from the rest of the lab (each on a network of its own)'],
    ['heal', '[members...]', 'put cut-off members back on the lab network (all when none is named), then wait until they serve'],
  ];
  for (const [action, args, description] of faults) {
    outputOptions(specOptions(program.command(action)))
      .description(description)
      .argument(args, 'member names (etcd1, etcd2, …) or leader')
      .option('--no-wait', 'do not wait for the election or for the members to serve again')
      .option('--timeout <seconds>', 'how long to wait', '30')
      .action(async (members: string[] | undefined, flags: SpecFlags & OutputFlags & { wait: boolean; timeout: string }) => {
        const { fault } = await import('./commands/faults.js');
        const result = await fault(
          { ...loadOptionsFrom(flags), action, members: members ?? [], wait: flags.wait, timeoutMs: seconds(flags.timeout, '--timeout') },
          await reporter(flags),
        );
        if (flags.json) return printJson(result);
        if (flags.quiet) return;
        const lines = [...result.done];
        if (result.election) {
          lines.push(`${result.leaderBefore} was leader: ${result.election.leader} elected at term ${result.election.term}, ${(result.election.afterMs / 1000).toFixed(1)}s later`);
        }
        lines.push(result.state.text);
        process.stdout.write(`${lines.join('\n')}\n`);
      });
  }

  outputOptions(specOptions(program.command('check')))
    .description('write through HAProxy while killing leaders and cutting off minorities, then verify no acknowledged write was lost')
    .option('--faults <n>', 'faults to inject, alternating leader kill and minority partition', '3')
    .option('--max-duration <seconds>', 'upper bound on the workload', '120')
    .option('--verify <history.json>', 're-verify a saved history against the lab instead of running a new one')
    .action(async (flags: SpecFlags & OutputFlags & { faults: string; maxDuration: string; verify?: string }) => {
      const { check } = await import('./commands/check.js');
      const faults = Number(flags.faults);
      if (!Number.isInteger(faults) || faults < 0 || faults > 20) throw new UserError('--faults takes a whole number from 0 to 20', { exitCode: 2 });
      const result = await check(
        { ...loadOptionsFrom(flags), faults, maxDurationMs: seconds(flags.maxDuration, '--max-duration'), verify: flags.verify },
        await reporter(flags),
      );
      const { verdict } = result;
      if (flags.json) printJson(result);
      else if (!flags.quiet || !verdict.ok) {
        const c = verdict.counts;
        const lines = [
          ...result.faults.map((f) => `fault: ${f}`),
          `writes: ${c.writes} (acknowledged ${c.acknowledged}, failed ${c.failed}, unknown outcome ${c.unknown})`,
          `longest gap between acknowledged writes: ${verdict.longestGapMs} ms`,
          ...verdict.problems.slice(0, 20).map((p) => `PROBLEM ${p}`),
          verdict.problems.length > 20 ? `… and ${verdict.problems.length - 20} more` : '',
          verdict.ok
            ? `PASS: every acknowledged write is there with its value; revisions never went backwards`
            : `FAIL: ${verdict.problems.length} problem${verdict.problems.length === 1 ? '' : 's'}`,
          `history: ${result.historyFile}`,
        ].filter(Boolean);
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      if (!verdict.ok) process.exitCode = 5;
    });

  outputOptions(specOptions(program.command('kind')))
    .description('create a KIND cluster whose control plane uses the lab as external etcd (no stacked etcd pod)')
    .option('--delete', 'delete the KIND cluster instead')
    .option('--purge', 'with --delete: also delete its objects from the lab\'s etcd (asks first)')
    .option('-y, --yes', 'do not ask before deleting objects')
    .option('--retain', 'on failure, keep the kind network and HAProxy attachment this run made')
    .option('--timeout <seconds>', 'how long the API server may take to become ready', '180')
    .action(async (flags: SpecFlags & OutputFlags & { delete?: boolean; purge?: boolean; yes?: boolean; retain?: boolean; timeout: string }) => {
      const [kindCommand, { confirmOnTerminal }] = await Promise.all([import('./commands/kind.js'), import('./ui/confirm.js')]);
      const options = loadOptionsFrom(flags);
      if (flags.delete) {
        const r = await kindCommand.deleteKindCluster({ ...options, purge: flags.purge, yes: flags.yes, confirm: confirmOnTerminal() }, await reporter(flags));
        if (flags.json) return printJson(r);
        if (!flags.quiet) process.stdout.write(`deleted KIND cluster ${r.cluster}${flags.purge ? ` and ${r.deletedKeys} of its objects in etcd` : ' (its objects stay in etcd: --purge removes them)'}\n`);
        return;
      }
      if (flags.purge) throw new UserError('--purge goes with --delete', { exitCode: 2 });
      const r = await kindCommand.createKindCluster({ ...options, retain: flags.retain, timeoutMs: seconds(flags.timeout, '--timeout') }, await reporter(flags));
      if (flags.json) return printJson(r);
      if (flags.quiet) return;
      process.stdout.write(
        [
          `KIND cluster ${r.cluster} is ready; its API server stores everything in the lab's etcd (${r.endpoint}, under ${r.etcdPrefix}/).`,
          `  kubectl --context ${r.context} get nodes`,
          `  etcdctl --endpoints ${options.local?.clientPort ? `127.0.0.1:${options.local.clientPort}` : '127.0.0.1:2379'} get --prefix ${r.etcdPrefix}/ --keys-only | head`,
          '',
        ].join('\n'),
      );
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
    // A command may end without an error but with a verdict to report (check: 5).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
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
