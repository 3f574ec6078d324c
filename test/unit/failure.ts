// The UserError a call rejects with, for tests that read its message, hint and exit code.
import { expect } from 'vitest';
import { UserError } from '../../src/errors.js';

export async function failure(work: Promise<unknown>): Promise<UserError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserError);
  return error as UserError;
}
