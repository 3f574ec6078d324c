// The one interface core code uses to show progress. Implementations (spinners, plain lines,
// silence) live in src/ui; core code never imports chalk or ora.

export interface StepHandle {
  /** Replaces the step's detail text ("2/3 members healthy"). */
  update(detail: string): void;
}

export interface Reporter {
  /** Runs one named step, showing it while it runs and how it ended. Rethrows failures. */
  step<T>(title: string, run: (step: StepHandle) => Promise<T>): Promise<T>;
  info(text: string): void;
  warn(text: string): void;
}

/** For library use and tests: runs steps, shows nothing. */
export const silentReporter: Reporter = {
  step: (_title, run) => run({ update: () => {} }),
  info: () => {},
  warn: () => {},
};

/** Records what was shown: for tests that check the order of steps. */
export class RecordingReporter implements Reporter {
  readonly events: string[] = [];
  async step<T>(title: string, run: (step: StepHandle) => Promise<T>): Promise<T> {
    this.events.push(`step: ${title}`);
    try {
      const result = await run({ update: (d) => this.events.push(`  ${d}`) });
      this.events.push(`done: ${title}`);
      return result;
    } catch (error) {
      this.events.push(`failed: ${title}`);
      throw error;
    }
  }
  info(text: string): void {
    this.events.push(`info: ${text}`);
  }
  warn(text: string): void {
    this.events.push(`warn: ${text}`);
  }
}
