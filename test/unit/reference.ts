// The two generated pages of docs/: the spec reference from the spec's own field definitions (the
// same source as the JSON Schema) and the command reference from the CLI's own help. docs.test.ts
// keeps the committed pages equal to these; `npm run docs` rewrites them.
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli.js';
import { specFields } from '../../src/config/read.js';
import { EXIT_CODE_MEANINGS, ExitCode, type ExitCodeName } from '../../src/exit-codes.js';

const GENERATED = (source: string) => `<!-- Generated from ${source} by \`npm run docs\`: edit that, not this page. -->`;

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderSpecReference(): string {
  const rows = specFields().map((f) => {
    const fallback = f.default === undefined ? 'the lab’s `name`' : f.default === '' ? '`""`' : `\`${String(f.default)}\``;
    return `| \`${f.path}\` | ${fallback} | ${cell(f.accepts)} | ${cell(f.description)} |`;
  });
  return [
    GENERATED('the field definitions in src/config/read.ts'),
    '',
    '# `etcd-lab.yaml` reference',
    '',
    'Every field is optional; a missing one takes its default. Unknown keys are errors, and every',
    'problem is reported at once with its path and what to do. `etcd-lab init` writes a commented file',
    'with every field at its default, and the editor schema line (the JSON Schema is built from the',
    'same definitions as this page). Rules across fields, which only `etcd-lab` checks: the election',
    'timeout is at least 5 × the heartbeat interval; the subnet is private and large enough for the',
    'members; the ports differ. Host ports, the bind address and images are per person too: see',
    '[per-person settings](configuration.md#per-person-settings).',
    '',
    '| field | default | accepts | what it does |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

/** Every command and subcommand, depth first, in the order `--help` lists them. */
function allCommands(command: Command, path: string[] = []): { path: string[]; command: Command }[] {
  return command.commands.flatMap((c) => [{ path: [...path, c.name()], command: c }, ...allCommands(c, [...path, c.name()])]);
}

export function renderCommandReference(): string {
  const program = buildProgram();
  // The same wrapping whatever the terminal: the page must not depend on who generates it.
  const fixedWidth = (c: Command) => {
    c.configureHelp({ ...c.configureHelp(), helpWidth: 100 });
    c.commands.forEach(fixedWidth);
  };
  fixedWidth(program);
  const commands = allCommands(program);
  const anchor = (path: string[]) => `etcd-lab-${path.join('-')}`;
  return [
    GENERATED("the CLI's own help (src/commands/)"),
    '',
    '# Command reference',
    '',
    'Every command has `--help`, which prints what is below. Commands that report something have',
    '`--json` for scripts.',
    '',
    ...commands.map(({ path }) => `- [\`etcd-lab ${path.join(' ')}\`](#${anchor(path)})`),
    '',
    '## Exit codes',
    '',
    'The same for every command:',
    '',
    '| code | meaning |',
    '|---|---|',
    ...(Object.keys(ExitCode) as ExitCodeName[]).map((name) => `| ${ExitCode[name]} | ${cell(EXIT_CODE_MEANINGS[name])} |`),
    '',
    '## `etcd-lab`',
    '',
    '```',
    program.helpInformation().trimEnd(),
    '```',
    '',
    ...commands.flatMap(({ path, command }) => [`## etcd-lab ${path.join(' ')}`, '', '```', command.helpInformation().trimEnd(), '```', '']),
  ].join('\n');
}
