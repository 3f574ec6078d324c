// `etcd-lab completion bash|zsh|fish`: a script that completes commands, flags, flag values and
// member names, as kind and kubectl offer. The script asks `etcd-lab __complete WORDS…` (hidden)
// for the candidates, so they always match this version's commands; member names come from the
// spec in the current directory (no Docker: completion has to be instant).
import type { Argument, Command, Option } from 'commander';
import { MEMBER_COUNTS } from '../config/types.js';
import { ends } from './shared.js';

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

const SCRIPTS: Record<Shell, string> = {
  bash: `# etcd-lab completion for bash: source <(etcd-lab completion bash), or put it in ~/.bashrc
_etcd_lab() {
  local IFS=$'\\n'
  COMPREPLY=($(etcd-lab __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _etcd_lab etcd-lab
`,
  zsh: `#compdef etcd-lab
# etcd-lab completion for zsh: source <(etcd-lab completion zsh), or put it in ~/.zshrc
_etcd_lab() {
  local -a candidates
  candidates=("\${(@f)$(etcd-lab __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if (( \${#candidates} )) && [[ -n "\${candidates[1]}" ]]; then compadd -- "\${candidates[@]}"; else _files; fi
}
compdef _etcd_lab etcd-lab
`,
  fish: `# etcd-lab completion for fish: etcd-lab completion fish > ~/.config/fish/completions/etcd-lab.fish
complete -c etcd-lab -f -a '(etcd-lab __complete (commandline -opc)[2..-1] (commandline -ct))'
`,
};

export function register(program: Command): void {
  program
    .command('completion')
    .description('prints a shell completion script (bash, zsh or fish): commands, flags and member names')
    .argument('<shell>', SHELLS.join(', '))
    .addHelpText('after', '\nbash: source <(etcd-lab completion bash)   zsh: source <(etcd-lab completion zsh)\nfish: etcd-lab completion fish > ~/.config/fish/completions/etcd-lab.fish')
    .action(
      ends(async (shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell)) {
        const { UserError } = await import('../errors.js');
        const { ExitCode } = await import('../exit-codes.js');
        throw new UserError(`no completion for ${JSON.stringify(shell)}`, { hint: `use one of ${SHELLS.join(', ')}`, exitCode: ExitCode.badInput });
      }
      process.stdout.write(SCRIPTS[shell as Shell]);
      }),
    );
  program
    .command('__complete', { hidden: true })
    .description('candidates for the last word (used by the completion scripts)')
    .argument('[words...]')
    .allowUnknownOption()
    .helpOption(false)
    .action(
      ends(async (words: string[]) => {
        const members = await memberNames(words);
        const candidates = completions(program, words.length === 0 ? [''] : words, members);
        if (candidates.length > 0) process.stdout.write(`${candidates.join('\n')}\n`);
      }),
    );
}

/** The lab's member names from the spec (the --config among the words, else ./etcd-lab.yaml); none when it cannot be read. */
async function memberNames(words: string[]): Promise<string[]> {
  try {
    const [{ loadLab }, { labTopology }] = await Promise.all([import('../config/load.js'), import('../config/topology.js')]);
    const at = words.findIndex((w) => w === '--config' || w === '-c');
    const config = at >= 0 ? words[at + 1] : undefined;
    return labTopology(loadLab({ config }).spec).members.map((m) => m.name);
  } catch {
    return [];
  }
}

/** Arguments that name members, by the name commands give them. */
const MEMBER_ARGUMENTS = new Set(['member', 'members']);

/**
 * The candidates for the last of `words` (the word being typed, perhaps empty), given the words
 * before it: subcommands, flags, a flag's choices, or member names where a command takes them.
 */
export function completions(program: Command, words: string[], members: string[]): string[] {
  const partial = words.at(-1) ?? '';
  let command = program;
  let expectsValue: Option | undefined;
  for (const word of words.slice(0, -1)) {
    if (expectsValue) {
      expectsValue = undefined;
      continue;
    }
    if (word.startsWith('-')) {
      const option = findOption(command, word);
      if (option && (option.required || option.optional) && !word.includes('=')) expectsValue = option;
      continue;
    }
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (sub) command = sub;
  }
  let candidates: string[];
  if (expectsValue) candidates = expectsValue.argChoices ?? [];
  else if (partial.startsWith('-')) candidates = [...command.options.filter((o) => !o.hidden).flatMap((o) => (o.long ? [o.long] : [])), '--help'];
  else if (visibleSubcommands(command).length > 0) candidates = visibleSubcommands(command).map((c) => c.name());
  else candidates = argumentValues(command.registeredArguments as readonly Argument[], command.name(), members);
  return candidates.filter((c) => c.startsWith(partial));
}

function findOption(command: Command, word: string): Option | undefined {
  const flag = word.split('=')[0];
  for (let c: Command | null = command; c; c = c.parent) {
    const option = c.options.find((o) => o.long === flag || o.short === flag);
    if (option) return option;
  }
  return undefined;
}

/** The subcommands --help lists (commander's Help knows which are hidden; the implicit `help` is left out). */
function visibleSubcommands(command: Command): Command[] {
  return command.createHelp().visibleCommands(command).filter((c) => c.name() !== 'help');
}

function argumentValues(args: readonly Argument[], commandName: string, members: string[]): string[] {
  const first = args[0];
  if (!first) return [];
  if (first.argChoices) return first.argChoices;
  if (first.name() === 'count') return MEMBER_COUNTS.map(String);
  if (!MEMBER_ARGUMENTS.has(first.name())) return [];
  // The failure commands also take `leader`; logs also takes HAProxy's container.
  const extra = /\bleader\b/.test(first.description) ? ['leader'] : commandName === 'logs' ? ['haproxy'] : [];
  return [...members, ...extra];
}
