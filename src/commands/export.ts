// `etcd-lab export hosts`: the lab for machines of your own, from the same etcd-lab.yaml.
import type { Command } from 'commander';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, specOptions, type OutputFlags, type SpecFlags } from './shared.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function register(program: Command): void {
  const exportCommand = program.command('export').description('the lab for several machines: per-host bundles (systemd units) or a Docker Swarm stack');

  outputOptions(specOptions(exportCommand.command('hosts')))
    .description('one folder per host with its systemd unit, certificates and etcdctl settings, an HAProxy config for a load-balancer host, and a runbook')
    .requiredOption('--host <member=address>', 'a member and its host address (once per member: --host etcd1=10.0.0.11 --host etcd2=…)', collect)
    .option('--load-balancer <address>', 'the address of the host that runs HAProxy for the clients')
    .option('--to <dir>', 'where the bundle goes (default: generated/export/hosts/)')
    .option('--etcd-binary <path>', 'where etcd is on the hosts', '/usr/local/bin/etcd')
    .option('--joining <member>', "a member that joins the running cluster on a new host (the runbook's member replace): its unit starts it with --initial-cluster-state=existing (repeatable)", collect)
    .action(ends(async (flags: SpecFlags & OutputFlags & { host: string[]; loadBalancer?: string; to?: string; etcdBinary: string; joining?: string[] }) => {
      const { exportHosts } = await import('../lab/export.js');
      const result = await exportHosts(
        { ...loadOptionsFrom(flags), hosts: flags.host, loadBalancer: flags.loadBalancer, to: flags.to, etcdBinary: flags.etcdBinary, joining: flags.joining },
        await reporter(flags),
      );
      return finish(flags, result, () => [
        `wrote ${result.dir}/: ${Object.entries(result.hosts).map(([m, a]) => `${m}/ for ${a}`).join(', ')}${result.loadBalancer ? `, haproxy/ for ${result.loadBalancer}` : ''}, admin/ for you`,
        `next: follow ${result.dir}/README.md (copy, daemon-reload, enable --now, check with endpoint status --cluster); ca.key stays where it is`,
      ]);
    }));

  outputOptions(specOptions(exportCommand.command('swarm')))
    .description('a stack for `docker stack deploy`: a service per member pinned by node label, overlay network, certificates as Swarm secrets')
    .option('--client-address <address>', 'an address or name clients dial HAProxy on (repeatable; 127.0.0.1 and localhost are always in)', collect)
    .option('--to <dir>', 'where the stack goes (default: generated/export/swarm/)')
    .action(ends(async (flags: SpecFlags & OutputFlags & { clientAddress?: string[]; to?: string }) => {
      const { exportSwarm } = await import('../lab/export.js');
      const result = await exportSwarm({ ...loadOptionsFrom(flags), clientAddresses: flags.clientAddress, to: flags.to }, await reporter(flags));
      return finish(flags, result, () => [
        `wrote ${result.stackFile} with its secrets and a README.md`,
        `next: label the nodes (${result.nodeLabels.join(', ')}), then \`docker stack deploy -c ${result.stackFile} <stack>\` from ${result.dir}`,
      ]);
    }));
}
