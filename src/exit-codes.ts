// The exit codes every command uses, by name, and what each means to a script; the command
// reference (docs/commands.md) prints this table.

export const ExitCode = {
  ok: 0,
  nothingDone: 1,
  badInput: 2,
  refused: 3,
  failedPartWay: 4,
  violation: 5,
  kindFailed: 6,
  interrupted: 130,
} as const;

export type ExitCodeName = keyof typeof ExitCode;

export const EXIT_CODE_MEANINGS: Record<ExitCodeName, string> = {
  ok: 'done',
  nothingDone: 'nothing was done: declined at a prompt, nothing to do, the lab is not running — or a bug in etcd-lab (the message says so)',
  badInput: 'the input is wrong: a flag, the spec, a file etcd-lab was pointed at; nothing was changed',
  refused: 'the lab or the engine refuses now: Docker is not running, a member is down or does not answer, an engine call hung',
  failedPartWay: 'an operation failed part-way; the message says what was undone and what was not',
  violation: "`check` found a violation of etcd's guarantees",
  kindFailed: 'kind failed to create or delete its cluster',
  interrupted: 'interrupted (Ctrl-C); the message says what was undone',
};
