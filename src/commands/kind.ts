// `etcd-lab kind [--delete [--purge]]`: a KIND cluster on the lab's etcd, or its removal.
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, seconds, specOptions, type OutputFlags, type SpecFlags } from './shared.js';
import { ExitCode } from '../exit-codes.js';

type KindFlags = SpecFlags & OutputFlags & { delete?: boolean; purge?: boolean; yes?: boolean; retain?: boolean; timeout: string };

export function register(program: Command): void {
  outputOptions(specOptions(program.command('kind')))
    .description('create a KIND cluster whose control plane uses the lab as external etcd (no stacked etcd pod)')
    .option('--delete', 'delete the KIND cluster instead')
    .option('--purge', "with --delete: also delete its objects from the lab's etcd (asks first)")
    .option('-y, --yes', 'do not ask before deleting objects')
    .option('--retain', 'on failure or Ctrl-C, keep the kind network and HAProxy attachment this run made, and pass --retain to kind create cluster so kind keeps its nodes (a failed kubeadm init stays to inspect)')
    .option('--timeout <seconds>', 'how long the API server may take to become ready', '180')
    .action(ends(async (flags: KindFlags) => {
      const [kind, { confirmOnTerminal }] = await Promise.all([import('../lab/kind.js'), import('../ui/confirm.js')]);
      const options = loadOptionsFrom(flags);
      if (flags.delete) {
        const r = await kind.deleteKindCluster({ ...options, purge: flags.purge, yes: flags.yes, confirm: confirmOnTerminal() }, await reporter(flags));
        return finish(flags, r, () => [`deleted KIND cluster ${r.cluster}${flags.purge ? ` and ${r.deletedKeys} of its objects in etcd` : ' (its objects stay in etcd: --purge removes them)'}`]);
      }
      if (flags.purge) throw new UserError('--purge goes with --delete', { exitCode: ExitCode.badInput });
      const r = await kind.createKindCluster({ ...options, retain: flags.retain, timeoutMs: seconds(flags.timeout, '--timeout') }, await reporter(flags));
      return finish(flags, r, () => [
        `KIND cluster ${r.cluster} is ready; its API server stores everything in the lab's etcd (${r.endpoint}, under ${r.etcdPrefix}/).`,
        `  kubectl --context ${r.context} get nodes`,
        `  eval "$(npx etcd-lab env)"; etcdctl get --prefix ${r.etcdPrefix}/ --keys-only | head`,
        '',
      ]);
    }));
}
