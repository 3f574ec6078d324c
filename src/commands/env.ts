// `etcd-lab env [--shell bash|fish|powershell]`: the ETCDCTL_* variables for this lab, to eval.
import { Option, type Command } from 'commander';
import { ends, loadOptionsFrom, printJson, specOptions, type SpecFlags } from './shared.js';

export function register(program: Command): void {
  specOptions(program.command('env'))
    .description('print the shell variables etcdctl needs for this lab (eval "$(etcd-lab env)"); in TLS mode with the admin certificate')
    .addOption(new Option('--shell <shell>', 'the shell to print for').choices(['bash', 'fish', 'powershell']).default('bash'))
    .option('--json', 'print the variables as JSON (null: unset)')
    .action(
      ends(async (flags: SpecFlags & { shell: 'bash' | 'fish' | 'powershell'; json?: boolean }) => {
        const { labEnv, formatEnv } = await import('../lab/env.js');
        const vars = labEnv(loadOptionsFrom(flags));
        if (flags.json) printJson(Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v ?? null])));
        // Not `finish`'s lines: the shell's own text, exactly (eval "$(etcd-lab env)").
        else process.stdout.write(formatEnv(vars, flags.shell));
      }),
    );
}
