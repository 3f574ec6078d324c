import { ExitCode } from './exit-codes.js';
/** One thing wrong with what the user gave us, with where it is and what to do about it. */
export interface Problem {
  /** Dotted path in etcd-lab.yaml (or the flag/variable it came from). */
  path: string;
  message: string;
  /** What to do instead. */
  fix?: string;
}

export function formatProblem(p: Problem): string {
  return `${p.path}: ${p.message}${p.fix ? ` — ${p.fix}` : ''}`;
}

/**
 * An error the user can act on. Commands throw it; only the CLI entry point prints it
 * (once, without a stack) and turns it into an exit code.
 */
export class UserError extends Error {
  readonly problems: Problem[];
  readonly hint?: string;
  readonly exitCode: number;

  constructor(message: string, opts: { problems?: Problem[]; hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'UserError';
    this.problems = opts.problems ?? [];
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? ExitCode.nothingDone;
  }

  /** The full text a person reads: the message, every problem, then the hint. */
  describe(): string {
    const lines = [this.message, ...this.problems.map((p) => `  - ${formatProblem(p)}`)];
    if (this.hint) lines.push(this.hint);
    return lines.join('\n');
  }
}

/**
 * A file-system error on one of the user's files (the spec, .env, generated/) as a UserError that
 * says what is wrong with the path and what to do; anything else is rethrown untouched.
 */
export function fileError(error: unknown, path: string, what: string, fix: string): UserError {
  const code = (error as NodeJS.ErrnoException)?.code;
  const reasons: Record<string, string> = {
    EISDIR: 'is a directory, not a file',
    ENOTDIR: 'cannot be reached: a part of its path is a file, not a directory',
    EACCES: 'cannot be accessed: permission denied',
    EPERM: 'cannot be accessed: operation not permitted',
    EROFS: 'is on a read-only file system',
    ENOSPC: 'cannot be written: the disk is full',
    ELOOP: 'is a symbolic link that loops',
    EEXIST: 'exists as something else',
    ENOENT: 'cannot be made: a folder on its path is missing, or the file system there takes no new files',
    ENAMETOOLONG: 'has a name too long for the file system',
    EDQUOT: 'cannot be written: the disk quota is used up',
    EFBIG: 'cannot be written: too large for the file system',
  };
  const reason = code ? reasons[code] : undefined;
  if (!reason) throw error;
  return new UserError(`${what} ${path} ${reason}`, { hint: fix, exitCode: ExitCode.badInput, cause: error });
}

