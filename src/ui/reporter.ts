// Reporter implementations: spinners and colour on a terminal, plain lines elsewhere (CI, pipes).
import chalk from 'chalk';
import ora from 'ora';
import type { Reporter, StepHandle } from '../progress.js';

function elapsed(start: number): string {
  const ms = performance.now() - start;
  return chalk.dim(ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`);
}

export class TerminalReporter implements Reporter {
  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  async step<T>(title: string, run: (step: StepHandle) => Promise<T>): Promise<T> {
    const start = performance.now();
    const spinner = ora({ text: title, stream: this.stream }).start();
    try {
      const result = await run({ update: (detail) => (spinner.text = `${title} ${chalk.dim(detail)}`) });
      spinner.succeed(`${title} ${elapsed(start)}`);
      return result;
    } catch (error) {
      spinner.fail(`${title} ${elapsed(start)}`);
      throw error;
    }
  }

  info(text: string): void {
    this.stream.write(`${text}\n`);
  }

  warn(text: string): void {
    this.stream.write(`${chalk.yellow('warning:')} ${text}\n`);
  }
}

/** One line when a step starts, one when it ends; details only when they change. */
export class PlainReporter implements Reporter {
  constructor(private readonly stream: NodeJS.WritableStream = process.stderr) {}

  async step<T>(title: string, run: (step: StepHandle) => Promise<T>): Promise<T> {
    const start = performance.now();
    this.stream.write(`... ${title}\n`);
    let last = '';
    try {
      const result = await run({
        update: (detail) => {
          if (detail !== last) this.stream.write(`    ${detail}\n`);
          last = detail;
        },
      });
      this.stream.write(`ok  ${title} (${((performance.now() - start) / 1000).toFixed(1)}s)\n`);
      return result;
    } catch (error) {
      this.stream.write(`FAIL ${title} (${((performance.now() - start) / 1000).toFixed(1)}s)\n`);
      throw error;
    }
  }

  info(text: string): void {
    this.stream.write(`${text}\n`);
  }

  warn(text: string): void {
    this.stream.write(`warning: ${text}\n`);
  }
}

export function reporterFor(opts: { quiet?: boolean; json?: boolean }): Reporter {
  if (opts.quiet || opts.json) {
    // Warnings still matter when quiet; with --json they go to stderr so stdout stays parseable.
    return {
      step: (_t, run) => run({ update: () => {} }),
      info: () => {},
      warn: (text) => process.stderr.write(`warning: ${text}\n`),
    };
  }
  return process.stderr.isTTY && !process.env.CI ? new TerminalReporter() : new PlainReporter();
}
