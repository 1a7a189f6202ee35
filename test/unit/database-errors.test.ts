import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDatabaseUnavailable, isSqliteLockTimeout } from '../../src/db/database-errors.js';

function withCode(code: string, message = 'failed'): Error {
  return Object.assign(new Error(message), { code });
}

describe('database unavailable errors', () => {
  for (const code of ['ECONNREFUSED', '57P01', '57P03', '57014', '08006', 'SQLITE_BUSY']) {
    it(`counts ${code} as unavailable`, () => {
      assert.equal(isDatabaseUnavailable(withCode(code)), true);
    });
  }

  for (const code of ['23505', '42P01', '22P02', 'SQLITE_CONSTRAINT_UNIQUE']) {
    it(`counts ${code} as a bug or bad input`, () => {
      assert.equal(isDatabaseUnavailable(withCode(code)), false);
    });
  }

  it('recognizes a pool timeout without a code', () => {
    assert.equal(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect')), true);
  });
});

describe('SQLite lock timeouts', () => {
  for (const code of ['SQLITE_BUSY', 'SQLITE_LOCKED']) {
    it(`counts ${code}`, () => {
      assert.equal(isSqliteLockTimeout(withCode(code)), true);
    });
  }

  for (const code of ['ECONNRESET', '57P01', 'SQLITE_CONSTRAINT_NOTNULL']) {
    it(`leaves out ${code}`, () => {
      assert.equal(isSqliteLockTimeout(withCode(code)), false);
    });
  }

  it('leaves out errors without a code', () => {
    assert.equal(isSqliteLockTimeout(new Error('Connection terminated unexpectedly')), false);
    assert.equal(isSqliteLockTimeout(null), false);
  });
});
