// `etcd-lab down`: removes containers and networks; data volumes only with --volumes (asks first).
import type { Command } from 'commander';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, specOptions, type OutputFlags, type SpecFlags } from './shared.js';

export function register(program: Command): void {
  outputOptions(specOptions(program.command('down')))
    .description("remove the lab's containers and network; data volumes are kept unless --volumes")
    .option('--volumes', 'also delete the data volumes (asks first)')
    .option('-y, --yes', 'do not ask before deleting data')
    .option('--take-over', 'remove the lab even though another checkout made it (say, one that was deleted)')
    .action(ends(async (flags: SpecFlags & OutputFlags & { volumes?: boolean; yes?: boolean; takeOver?: boolean }) => {
      const [{ down }, { confirmOnTerminal }] = await Promise.all([import('../lab/down.js'), import('../ui/confirm.js')]);
      const result = await down({ ...loadOptionsFrom(flags), volumes: flags.volumes, yes: flags.yes, takeOver: flags.takeOver, confirm: confirmOnTerminal() }, await reporter(flags));
      return finish(flags, result, ({ removed: { containers, networks, volumes }, keptVolumes, name }) => {
        if (containers.length === 0 && networks.length === 0 && volumes.length === 0) return [`lab ${name} was not running`];
        const parts = [
          `removed ${containers.length} containers${networks.length ? ` and network ${networks.join(', ')}` : ''}`,
          volumes.length > 0 ? `deleted ${volumes.length} data volumes` : '',
          keptVolumes.length > 0 ? `kept ${keptVolumes.length} data volumes (\`etcd-lab up\` resumes; \`down --volumes\` deletes them)` : '',
        ].filter(Boolean);
        return [parts.join('; ')];
      });
    }));
}
