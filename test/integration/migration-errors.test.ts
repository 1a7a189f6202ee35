import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { openDatabase } from '../../src/db/database.js';
import { isDatabaseUnavailable, isSqliteLockTimeout } from '../../src/db/database-errors.js';
import { migrateTo, migrateToLatest } from '../../src/db/migrate.js';
import { waitForBlockedStatement } from '../helpers/blocked-statement.js';
import { dropSchema, testDialects, testPostgresUrl } from '../helpers/databases.js';

/** Runs `work` and returns what it threw, failing when it succeeds. */
async function failureOf(work: Promise<unknown>): Promise<unknown> {
  return work.then(
    () => assert.fail('the migration succeeded'),
    (error: unknown) => error,
  );
}

const dialects = await testDialects();

describe('migration on a locked SQLite file', () => {
  it('keeps the busy error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-migrate-locked-'));
    const file = path.join(dir, 'aegis.db');
    const db = await openDatabase({ databaseUrl: undefined, databaseSchema: undefined, databasePoolMax: 1, sqlitePath: file });
    const other = new BetterSqlite3(file);
    try {
      await migrateTo(db, '0013_apply_intents');
      // Another process's write, held past the 5 s busy timeout.
      other.exec('begin immediate');

      const failure = await failureOf(migrateToLatest(db));

      assert.ok(isSqliteLockTimeout(failure), String(failure));
    } finally {
      other.exec('rollback');
      other.close();
      await db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('migration losing its PostgreSQL connection', { skip: dialects.includes('postgres') ? false : 'PostgreSQL is not reachable' }, () => {
  it('keeps the connection error', async () => {
    const schema = `aegis_t_${crypto.randomBytes(6).toString('hex')}`;
    const db = await openDatabase({ databaseUrl: testPostgresUrl, databaseSchema: schema, databasePoolMax: 1, sqlitePath: '' });
    const blocker = new pg.Client({ connectionString: testPostgresUrl });
    const observer = new pg.Client({ connectionString: testPostgresUrl });
    await blocker.connect();
    await observer.connect();
    try {
      await migrateTo(db, '0013_apply_intents');
      // Keeps migration 0014 waiting, so its connection can be ended while it migrates.
      await blocker.query('begin');
      await blocker.query(`lock table "${schema}".aegis_audit_log in row exclusive mode`);
      const migration = migrateToLatest(db);
      const migratingPid = await waitForBlockedStatement(blocker, observer, migration, 0);
      await observer.query('select pg_terminate_backend($1)', [migratingPid]);

      const failure = await failureOf(migration);

      assert.ok(isDatabaseUnavailable(failure), String(failure));
    } finally {
      await blocker.query('rollback');
      await blocker.end();
      await observer.end();
      await db.close();
      await dropSchema(schema);
    }
  });
});
