// `etcd-lab upgrade --etcd-image REF`: a rolling upgrade of every member, one at a time.
import type { Command } from 'commander';
import { imageReferenceProblem } from '../config/fields.js';
import { UserError } from '../errors.js';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, seconds, specOptions, type OutputFlags, type SpecFlags } from './shared.js';
import { ExitCode } from '../exit-codes.js';

export function register(program: Command): void {
  outputOptions(specOptions(program.command('upgrade'), { etcdImage: false }))
    .description('rolling upgrade: a snapshot first, then one member at a time (followers first, the leader last) on the new image, each proven healthy and caught up')
    .requiredOption('--etcd-image <ref>', 'the etcd image to move to (etcd-lab/etcd:trixie is 3.5, etcd-lab/etcd:3.4-bookworm 3.4: `etcd-lab images build --etcd-version 3.4`)')
    .option('--timeout <seconds>', 'how long each member may take to serve again', '90')
    .action(ends(async (flags: SpecFlags & OutputFlags & { etcdImage: string; timeout: string }) => {
      const problem = imageReferenceProblem(flags.etcdImage);
      if (problem) throw new UserError(`--etcd-image ${problem} (got ${JSON.stringify(flags.etcdImage)})`, { hint: 'name an etcd image such as gcr.io/etcd-development/etcd:v3.6.4 or etcd-lab/etcd:3.4-bookworm', exitCode: ExitCode.badInput });
      const { upgrade } = await import('../lab/upgrade.js');
      // --etcd-image names the target here, not this run's image: the lab is still on its old one.
      const result = await upgrade({ ...loadOptionsFrom({ ...flags, etcdImage: undefined }), image: flags.etcdImage, timeoutMs: seconds(flags.timeout, '--timeout') }, await reporter(flags));
      return finish(flags, result, () => [
        `lab ${result.lab} on ${result.image} in ${(result.elapsedMs / 1000).toFixed(1)}s: ${result.members.map((m) => `${m.member}${m.wasLeader ? ' (was leader)' : ''} ${(m.ms / 1000).toFixed(1)}s`).join(', ')}`,
        `server versions ${Object.values(result.before.servers).join('/')} → ${Object.values(result.after.servers).join('/')}; cluster version ${result.before.cluster} → ${result.after.cluster}`,
        `snapshot taken first: ${result.snapshot}`,
      ]);
    }));
}
