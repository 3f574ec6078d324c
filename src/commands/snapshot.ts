// `etcd-lab snapshot save|status|restore|rollback`: backup and disaster recovery.
import type { Command } from 'commander';
import type { SnapshotInfo } from '../runtime/snapshot.js';
import { humanBytes } from '../ui/bytes.js';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, resultCommand, seconds, specOptions, whole, type OutputFlags, type SpecFlags } from './shared.js';
import { DEFAULT_BUMP_REVISION } from '../config/defaults.js';
import { tableLines } from '../ui/table.js';

/** The table `etcdutl snapshot status -w table` prints, and the file. */
function snapshotLines(s: SnapshotInfo): string[] {
  const rows = [
    ['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE', ...(s.version ? ['VERSION'] : [])],
    [s.hash.toString(16).padStart(8, '0'), String(s.revision), String(s.totalKeys), humanBytes(s.totalSize), ...(s.version ? [s.version] : [])],
  ];
  return [
    ...tableLines(rows),
    `file  ${s.file} (${humanBytes(s.bytes)}${s.hashed ? ', sha256 verified' : ', no integrity hash'})`,
  ];
}

export function register(program: Command): void {
  const snapshot = program.command('snapshot').description('back up and restore the lab (etcd snapshots)');

  outputOptions(specOptions(snapshot.command('save')))
    .description('take a snapshot from a healthy member (a follower when there is one) and show its status')
    .argument('[file]', 'where to write it (default: generated/snapshots/<lab>-<time>.db)')
    .action(ends(async (file: string | undefined, flags: SpecFlags & OutputFlags) => {
      const { saveLabSnapshot } = await import('../lab/snapshot.js');
      const result = await saveLabSnapshot({ ...loadOptionsFrom(flags), file }, await reporter(flags));
      return finish(flags, result, () => [`saved from ${result.member} in ${(result.elapsedMs / 1000).toFixed(1)}s`, ...snapshotLines(result)]);
    }));

  outputOptions(specOptions(snapshot.command('status')))
    .description("a snapshot file's hash, revision, key count and size (etcd's own snapshot status), after checking its integrity hash")
    .argument('<file>', 'the snapshot file')
    .option('--skip-hash-check', 'read a bare database file (one copied from a data directory has no integrity hash)')
    .action(
      ends(async (file: string, flags: SpecFlags & OutputFlags & { skipHashCheck?: boolean }) => {
        const { labSnapshotStatus } = await import('../lab/snapshot.js');
        const result = await labSnapshotStatus({ ...loadOptionsFrom(flags), file, skipHashCheck: flags.skipHashCheck }, await reporter({ ...flags, quiet: true }));
        return finish(flags, result, snapshotLines, { kind: 'listing' });
      }),
    );

  outputOptions(specOptions(snapshot.command('restore')))
    .description('disaster recovery: replace every member\'s data with a snapshot (asks first); the old data is put back if anything fails')
    .argument('<file>', 'the snapshot file (from any lab, of any member count)')
    .option('-y, --yes', 'do not ask first')
    .option('--ignore-kind', 'restore even though a KIND cluster uses the lab (its API server then serves stale data until restarted)')
    .option('--skip-hash-check', 'restore a bare database file (one copied from a data directory has no integrity hash)')
    .option(
      '--bump-revision <n>',
      "move the revision this far past the snapshot's and mark all before it compacted, so a watcher from before the restore is told to re-list (etcd 3.5.10+; 0: do not)",
      String(DEFAULT_BUMP_REVISION),
    )
    .option('--timeout <seconds>', 'how long the restored lab may take to be ready', '60')
    .action(ends(async (file: string, flags: SpecFlags & OutputFlags & { yes?: boolean; ignoreKind?: boolean; skipHashCheck?: boolean; bumpRevision: string; timeout: string }) => {
      const [{ restoreLabSnapshot }, { confirmOnTerminal }] = await Promise.all([import('../lab/restore.js'), import('../ui/confirm.js')]);
      const result = await restoreLabSnapshot(
        {
          ...loadOptionsFrom(flags),
          file,
          yes: flags.yes,
          confirm: confirmOnTerminal(),
          ignoreKind: flags.ignoreKind,
          skipHashCheck: flags.skipHashCheck,
          bumpRevision: whole(flags.bumpRevision, '--bump-revision', 0, Number.MAX_SAFE_INTEGER),
          timeoutMs: seconds(flags.timeout, '--timeout'),
        },
        await reporter(flags),
      );
      return finish(flags, result, () => [
        `lab ${result.lab} restored in ${(result.elapsedMs / 1000).toFixed(1)}s: ${result.members.length} members at revision ${result.revision} (${result.snapshot.totalKeys} keys)`,
        ...(result.bumpedBy > 0 ? [`  the revision moved ${result.bumpedBy} past the snapshot's ${result.snapshot.revision}, all before it compacted: watchers from before the restore are told to re-list`] : []),
        ...(result.apiServerRestarted ? [`  the lab's API server ${result.apiServerRestarted} was stopped for the restore and serves again, with empty caches`] : []),
      ]);
    }));

  resultCommand(
    snapshot.command('rollback'),
    'put back the data an unfinished restore kept (after it was killed before it could do so itself)',
    async (load, progress) => (await import('../lab/restore.js')).rollbackRestore(load, progress),
    (result) => [`lab ${result.lab} is back on its own data${result.putBack.length ? ` (${result.putBack.join(', ')} put back)` : ''}`],
    'action',
  );
}
