// `etcd-lab check`: concurrent clients and watchers while faults are injected, then the checker
// (exit 5 on a violation), a saved history and an HTML report.
import { Option, type Command } from 'commander';
import { imageReferenceProblem } from '../config/fields.js';
import { UserError } from '../errors.js';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, specOptions, whole, type OutputFlags, type SpecFlags } from './shared.js';
import { ExitCode } from '../exit-codes.js';

const NEMESES = 'kill,pause,partition,leader,defrag,compact,replace,loss,blackhole,delay';
const ALL_NEMESES = `${NEMESES},upgrade`;

export function register(program: Command): void {
  outputOptions(specOptions(program.command('check')))
    .description('run concurrent clients and watchers while injecting faults, then check the history: linearizable, every watch reliable')
    .addOption(new Option('--traffic <kind>', "what the clients send: etcd (gets, puts, deletes, compare-and-sets, transactions), kubernetes (Kubernetes' storage layer: guarded creates, updates and deletes, paged lists, reads of the past), leases (granted, kept alive, left to expire, revoked)").choices(['etcd', 'kubernetes', 'leases']).default('etcd'))
    .option('--faults <n>', 'faults to inject, the kinds in turn (leader and follower alternate as targets)', '3')
    .option('--nemesis <kinds>', `which faults, comma-separated: ${ALL_NEMESES} (upgrade: one member per fault moved to --upgrade-image, followers first, the leader last)`, NEMESES)
    .option('--upgrade-image <ref>', 'the etcd image the upgrade fault moves members to (one minor version up: a lab on etcd-lab/etcd:3.4-bookworm moves to etcd-lab/etcd:trixie)')
    .option('--clients <n>', 'concurrent clients: three in four pinned to one member, the rest through HAProxy', '8')
    .option('--keys <n>', 'the key space: few keys make clients contend', '10')
    .option('--rate <ops>', 'operations per second over all clients, at most', '200')
    .addOption(new Option('--reads <kind>', 'linearizable reads, or serializable ones (allowed to be stale: the checker counts them, and checks each against the store at the revision it names)').choices(['linearizable', 'serializable']).default('linearizable'))
    .option('--hold <seconds>', 'how long each fault lasts, and the calm after it', '1.5')
    .option('--verify <history.json>', 'check a saved history again (no lab needed), and write its report anew')
    .action(
      ends(async (
        flags: SpecFlags & OutputFlags & { traffic: 'etcd' | 'kubernetes' | 'leases'; faults: string; nemesis: string; clients: string; keys: string; rate: string; reads: 'linearizable' | 'serializable'; hold: string; verify?: string; upgradeImage?: string },
      ) => {
        const hold = Number(flags.hold);
        if (!(hold >= 0.1 && hold <= 60)) throw new UserError(`--hold takes seconds from 0.1 to 60 (got "${flags.hold}")`, { exitCode: ExitCode.badInput });
        const [{ check }, { parseNemeses, upgradeImageNeeded }] = await Promise.all([import('../lab/check.js'), import('../lab/nemesis.js')]);
        const nemesis = parseNemeses(flags.nemesis);
        const faults = whole(flags.faults, '--faults', 0, 1000);
        if (nemesis.slice(0, faults).includes('upgrade') && flags.upgradeImage === undefined && !flags.verify) throw upgradeImageNeeded();
        if (flags.upgradeImage !== undefined) {
          const problem = imageReferenceProblem(flags.upgradeImage);
          if (problem) throw new UserError(`--upgrade-image ${problem} (got ${JSON.stringify(flags.upgradeImage)})`, { hint: 'name an etcd image such as etcd-lab/etcd:trixie', exitCode: ExitCode.badInput });
          if (!nemesis.includes('upgrade')) throw new UserError('--upgrade-image is for the upgrade fault, which --nemesis does not name', { hint: 'add upgrade to --nemesis (e.g. --nemesis upgrade,kill)', exitCode: ExitCode.badInput });
        }
        const result = await check(
          {
            ...loadOptionsFrom(flags),
            traffic: flags.traffic,
            faults,
            nemesis,
            clients: whole(flags.clients, '--clients', 1, 64),
            keys: whole(flags.keys, '--keys', 1, 1000),
            rate: whole(flags.rate, '--rate', 1, 10_000),
            reads: flags.reads,
            holdMs: hold * 1000,
            verify: flags.verify,
            upgradeImage: flags.upgradeImage,
          },
          await reporter(flags),
        );
        const c = result.checker.counts;
        const byKind = new Map<string, number>();
        for (const f of result.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
        const more = Object.entries(result.checker.more).map(([kind, n]) => `… and ${n} more ${kind}`);
        // A violation is always said, --quiet or not, and is the exit code: 5.
        return finish(flags, result, () => [
          ...result.faults.map((f) => `fault: ${f.kind} ${f.target} (${Math.round(f.startMs)}–${Math.round(f.endMs)} ms)`),
          `faults: ${[...byKind].map(([k, n]) => `${n} ${k}`).join(', ') || 'none'}`,
          `operations: ${c.operations} (ok ${c.ok}, failed ${c.failed}, unknown outcome ${c.unknown}: ${c.unknownCommitted} committed, ${c.unknownNotCommitted} not); ${c.committedRevisions} committed revisions${c.leaseExpiries ? `, ${c.leaseExpiries} leases expired` : ''}${c.staleSerializableReads ? `; ${c.staleSerializableReads} serializable reads answered from an older state (allowed)` : ''}`,
          `watches: ${c.watchEvents} events in ${c.watchStreams} streams`,
          `longest unavailability through HAProxy: ${result.longestUnavailableMs} ms`,
          `checked in ${Math.round(result.checker.elapsedMs)} ms`,
          ...result.checker.violations.map((v) => `VIOLATION ${v.kind}: ${v.message}`),
          ...more,
          result.ok
            ? 'PASS: linearizable (every operation in one order that respects real time, every committed change what its request would do there), and every watch delivered every change in order'
            : `FAIL: ${result.checker.violations.length + Object.values(result.checker.more).reduce((a, b) => a + (b ?? 0), 0)} violations`,
          `history: ${result.historyFile}`,
          `report: ${result.reportFile}`,
        ], { exitCode: result.ok ? ExitCode.ok : ExitCode.violation });
      }),
    );
}
