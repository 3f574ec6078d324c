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
    this.exitCode = opts.exitCode ?? 1;
  }

  /** The full text a person reads: the message, every problem, then the hint. */
  describe(): string {
    const lines = [this.message, ...this.problems.map((p) => `  - ${formatProblem(p)}`)];
    if (this.hint) lines.push(this.hint);
    return lines.join('\n');
  }
}
