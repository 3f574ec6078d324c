// `expect(run).toExitWith(code)`: a command's exit code, and when it is not the one expected, what
// the command said (stderr, then the start of stdout), so a failure in a CI log names its cause.
import { expect } from 'vitest';

interface Ran {
  code: number | null;
  stdout?: string;
  stderr?: string;
  /** Both streams as one, where a helper keeps them so. */
  output?: string;
}

const SHOWN = 4000;

expect.extend({
  toExitWith(received: Ran, expected: number, what?: string) {
    const pass = received.code === expected;
    const said = [
      received.output?.trim() && `output:\n${received.output.trim().slice(-SHOWN)}`,
      received.stderr?.trim() && `stderr:\n${received.stderr.trim().slice(-SHOWN)}`,
      received.stdout?.trim() && `stdout:\n${received.stdout.trim().slice(0, SHOWN)}`,
    ].filter(Boolean).join('\n');
    return {
      pass,
      message: () => `${what ? `${what}: ` : ''}expected the command to exit ${pass ? 'with anything but ' : ''}${expected}, it exited ${received.code}\n${said || '(it printed nothing)'}`,
    };
  },
});

// Matchers<T = any>: the declaration must match vitest's own.
declare module 'vitest' {
  interface Matchers<T = any> {
    toExitWith(code: number, what?: string): T;
  }
}
