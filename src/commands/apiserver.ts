// `etcd-lab apiserver [--delete]`: Kubernetes' generic API server on the lab's etcd, or its removal.
import { Option, type Command } from 'commander';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, seconds, specOptions, type OutputFlags, type SpecFlags } from './shared.js';

type ApiServerFlags = SpecFlags & OutputFlags & { delete?: boolean; retain?: boolean; timeout: string; mergeKubeconfig?: boolean | string; etcdEndpoints: 'haproxy' | 'members' };

export function register(program: Command): void {
  outputOptions(specOptions(program.command('apiserver')))
    .description(
      "run Kubernetes' generic API server (custom resources only: no core resources, no kubelet) on the lab's etcd, wired as the KIND config wires kube-apiserver; " +
        'writes generated/apiserver/kubeconfig, which `etcd-lab env` exports as KUBECONFIG',
    )
    .addOption(
      new Option(
        '--etcd-endpoints <wiring>',
        "haproxy: the lab's HAProxy as its one etcd endpoint, as a KIND node gets it; members: every member's own address (--etcd-servers listing each), from the lab's network. docs/kind.md compares the two",
      )
        .choices(['haproxy', 'members'])
        .default('haproxy'),
    )
    .option('--delete', 'remove the API server instead (its objects stay in etcd)')
    .option('--retain', 'on failure or Ctrl-C, keep the container to inspect (docker logs)')
    .option(
      '--merge-kubeconfig [file]',
      "also merge its context into your own kubeconfig and make it current, as kind does (default: $KUBECONFIG's first file, else ~/.kube/config); --delete takes it out again",
    )
    .option('--timeout <seconds>', 'how long the API server may take to become ready', '60')
    .action(ends(async (flags: ApiServerFlags) => {
      const apiserver = await import('../lab/apiserver.js');
      const options = loadOptionsFrom(flags);
      if (flags.delete) {
        const r = await apiserver.deleteApiServer(options, await reporter(flags));
        return finish(flags, r, () => [
          r.removed ? `removed ${r.container} (its objects stay in etcd)` : `no API server ${r.container} to remove`,
          ...(r.unmergedFrom ? [`removed its context from ${r.unmergedFrom}`] : []),
        ]);
      }
      const r = await apiserver.startApiServer(
        { ...options, etcdEndpoints: flags.etcdEndpoints, retain: flags.retain, timeoutMs: seconds(flags.timeout, '--timeout'), mergeKubeconfig: flags.mergeKubeconfig },
        await reporter(flags),
      );
      return finish(flags, r, () => [
        `API server ${r.container} is ready at ${r.server} (${r.readyMs} ms after it started); it stores everything in the lab's etcd (${r.etcdEndpoint}, under ${r.etcdPrefix}/).`,
        r.mergedInto
          ? `  kubectl api-resources     # context ${r.context}, merged into ${r.mergedInto} and made current`
          : `  eval "$(npx etcd-lab env)"; kubectl api-resources     # KUBECONFIG=${r.kubeconfig}`,
        `  docker exec ${r.container} kubectl api-resources             # Debian's kubectl, inside its image`,
        '',
      ]);
    }));
}
