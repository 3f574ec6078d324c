// Prints each test file's duration, slowest first, then one plain closing line,
// "N passed, N failed, N skipped", that any CI can read.
import { relative } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed += 1;
        else if (state === 'failed') counts.failed += 1;
        else counts.skipped += 1;
      }
    }
    const files = testModules
      .map((m) => ({ name: `${m.project.name} ${relative(process.cwd(), m.moduleId)}`, ms: m.diagnostic().duration }))
      .sort((a, b) => b.ms - a.ms);
    const lines = files.map((f) => `  ${(f.ms / 1000).toFixed(1).padStart(7)} s  ${f.name}`);
    process.stdout.write(`\ntime per file:\n${lines.join('\n')}\n\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}
