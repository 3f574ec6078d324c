// Prints each test file's duration, slowest first, and the slowest tests, then every failed test
// with the first lines of its error, then one plain closing line, "N passed, N failed, N skipped",
// that any CI can read.
// Failures come last on purpose: a CI that keeps only the tail of the log still names them.
// The same figures go to test-artifacts/ (test-times.txt, test-count.txt) for .ci/run's summary:
// the unit project in one line (its files run side by side), every e2e file on its own.
import { mkdirSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { Reporter, TestCase, TestModule } from 'vitest/node';

const ERROR_LINES = 12;
const SLOWEST_TESTS = 15;

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    const failed: TestCase[] = [];
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed += 1;
        else if (state === 'failed') {
          counts.failed += 1;
          failed.push(test);
        } else counts.skipped += 1;
      }
    }
    const name = (m: TestModule) => `${m.project.name} ${relative(process.cwd(), m.moduleId)}`;
    const files = testModules.map((m) => ({ name: name(m), ms: m.diagnostic().duration })).sort((a, b) => b.ms - a.ms);
    const lines = files.map((f) => `  ${(f.ms / 1000).toFixed(1).padStart(7)} s  ${f.name}`);
    const tests = testModules
      .flatMap((m) => [...m.children.allTests()].map((t) => ({ name: `${name(m)} › ${t.fullName}`, ms: t.diagnostic()?.duration ?? 0 })))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, SLOWEST_TESTS)
      .map((t) => `  ${(t.ms / 1000).toFixed(1).padStart(7)} s  ${t.name}`);
    // A module can fail without a test failing (an import error, a hook): name those too.
    const brokenModules = testModules.filter((m) => m.errors().length > 0);
    const failures = [
      ...failed.map((t) => describeFailure(`${name(t.module)} › ${t.fullName}`, t.result().errors ?? [])),
      ...brokenModules.map((m) => describeFailure(`${name(m)} (the file itself)`, m.errors())),
    ];
    const failureText = failures.length > 0 ? `\nfailed:\n${failures.join('\n')}\n` : '';
    const count = `${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`;
    const unit = files.filter((f) => f.name.startsWith('unit '));
    const forCi = [
      ...(unit.length > 0 ? [`  ${(unit.reduce((sum, f) => sum + f.ms, 0) / 1000).toFixed(1).padStart(7)} s  unit project: ${unit.length} files (summed; up to 3 run at once)`] : []),
      ...lines.filter((line) => !line.includes(' unit ')),
    ];
    mkdirSync('test-artifacts', { recursive: true });
    writeFileSync('test-artifacts/test-times.txt', `${forCi.join('\n')}\n`);
    writeFileSync('test-artifacts/test-count.txt', `${count}\n`);
    process.stdout.write(
      `\ntime per file:\n${lines.join('\n')}\n\nslowest tests (hooks not counted):\n${tests.join('\n')}\n${failureText}\n${count}\n`,
    );
  }
}

function describeFailure(title: string, errors: ReadonlyArray<{ message?: string; stack?: string }>): string {
  const first = errors[0];
  // The message and the project's own frames; the test runner's frames say nothing about the failure.
  const text = (first?.stack ?? first?.message ?? '(no error recorded)')
    .split('\n')
    .filter((line) => !/node_modules|\(<anonymous>\)|node:internal/.test(line))
    .slice(0, ERROR_LINES);
  return [`  ✗ ${title}`, ...text.map((line) => `      ${line}`)].join('\n');
}
