// `etcd-lab setup-host`: makes this machine able to run a lab. On Debian as root it installs what
// is missing (Docker engine, compose v2, debootstrap; kind and Chromium on request) and starts
// dockerd; anywhere else it installs nothing and says what to install. The script ships in the
// package, so this works from a team's repository as from a clone.
import type { Command } from 'commander';
import { ends } from './shared.js';

export function register(program: Command): void {
  program
    .command('setup-host')
    .description('make this machine able to run a lab: on Debian as root, install Docker, compose v2 and debootstrap; elsewhere, say what is missing')
    .option('--images', 'also build the local etcd and HAProxy images (for machines that cannot pull)')
    .option('--kind', 'also install the kind binary (Debian trixie package)')
    .option('--browser', 'also install Chromium (for the stats-page test)')
    .option('--clients', "also install Debian's etcdctl (etcd-client)")
    .action(
      ends(async (flags: { images?: boolean; kind?: boolean; browser?: boolean; clients?: boolean }) => {
        const { setUpHost } = await import('../lab/host.js');
        // The setup script's own exit code is the command's.
        return setUpHost((['images', 'kind', 'browser', 'clients'] as const).filter((f) => flags[f]));
      }),
    );
}
