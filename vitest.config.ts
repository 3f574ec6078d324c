import { defineConfig } from 'vitest/config';

// Ryuk (testcontainers' reaper) cannot be pulled here; our global setup cleans up by label instead.
// Set on the main process so the global setup and every worker see it.
process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';

export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    // Unit tests mostly wait on real deadlines (locks, engine and compose timeouts), not on the CPU:
    // three at once on two cores take the unit project from 26 s to 15 s. e2e: two at a time (below).
    maxWorkers: 3,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // expect(run).toExitWith(code): a failed exit-code assertion shows what the command said;
          // own-locks: each file's lab locks apart from the other files' (their fake labs share a name).
          setupFiles: ['test/exit-matcher.ts', 'test/unit/own-locks.ts'],
          // Files in one worker share their imported modules (the CLI and its commands are imported
          // once, not per file): 14.5 s → 12.5 s here. Each file restores what it changes (env, cwd).
          isolate: false,
          // Some unit tests run the real CLI several times (a Node process each, ~0.5 s on 2 cores):
          // vitest's 5 s default fails them on a busy machine. Speed is measured in bench/, not here.
          testTimeout: 30_000,
          // The unit project first, then e2e (vitest needs distinct groups for projects whose worker counts differ).
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          setupFiles: ['test/exit-matcher.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          // Two files at a time: the labs mostly wait (on elections, deadlines, restarts), so two share
          // two cores with room to spare (a serial run kept 0.3 of a core busy on average). Every lab
          // has its own name, ports and /16 (lab-fixture.ts), and no test may depend on an idle machine.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
