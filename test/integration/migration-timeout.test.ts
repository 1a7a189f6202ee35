import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { openDatabase, type Db } from '../../src/db/database.js';
import { LATEST_MIGRATION, migrateTo, migrateToLatest } from '../../src/db/migrate.js';
import { waitForBlockedStatement } from '../helpers/blocked-statement.js';
import { dropSchema, testDialects, testPostgresUrl } from '../helpers/databases.js';

/**
 * The statement_timeout of the migrating pool, in milliseconds. Kysely reads the catalog before it takes
 * its migration lock, under this limit, which took over 200 ms on a loaded machine with the schemas of
 * a whole test run.
 */
const statementTimeoutMs = 1_500;

/** The advisory lock id with which Kysely 0.28 serializes migrations (PostgresAdapter's LOCK_ID). */
const kyselyMigrationLockId = '3853314791062309107';

const onPostgres = (await testDialects()).includes('postgres');

describe('migrations under statement_timeout on PostgreSQL', { skip: onPostgres ? false : 'PostgreSQL is not reachable' }, () => {
  const schemas: string[] = [];
  let blocker: pg.Client;
  let observer: pg.Client;

  before(async () => {
    blocker = new pg.Client({ connectionString: testPostgresUrl });
    observer = new pg.Client({ connectionString: testPostgresUrl });
    await blocker.connect();
    await observer.connect();
  });

  after(async () => {
    await blocker.end();
    await observer.end();
    for (const schema of schemas) await dropSchema(schema);
  });

  /**
   * Creates a new schema migrated to `name` with the default limits, then opens it through a pool of
   * one connection with the short statement timeout.
   */
  async function openSchemaAt(name: string): Promise<{ db: Db; schema: string }> {
    const schema = `aegis_t_${crypto.randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    const settings = { databaseUrl: testPostgresUrl, databaseSchema: schema, databasePoolMax: 1, sqlitePath: '' };
    const setup = await openDatabase(settings);
    try {
      await migrateTo(setup, name);
    } finally {
      await setup.close();
    }
    return { db: await openDatabase(settings, { pool: { statementTimeoutMs } }), schema };
  }

  it('index build outlasts the timeout', async () => {
    const { db, schema } = await openSchemaAt('0013_apply_intents');
    try {
      // The open transaction's lock keeps migration 0014 from changing the audit log's indexes until
      // it commits, so the migration's statement runs longer than statement_timeout.
      await blocker.query('begin');
      await blocker.query(`lock table "${schema}".aegis_audit_log in row exclusive mode`);
      const migration = migrateToLatest(db);
      try {
        // Without the lifted limit, PostgreSQL cancels the statement after the timeout and the migration
        // fails before this wait is over.
        await waitForBlockedStatement(blocker, observer, migration, 2 * statementTimeoutMs);
      } finally {
        await blocker.query('commit');
      }

      const applied = await migration;
      assert.equal(applied[0], '0014_audit_reach_indexes');
      assert.equal(applied.at(-1), LATEST_MIGRATION);
      const timeout = await sql<{ statement_timeout: string }>`show statement_timeout`.execute(db.kysely);
      assert.equal(timeout.rows[0]!.statement_timeout, `${statementTimeoutMs}ms`);
    } finally {
      await db.close();
    }
  });

  it('second process outwaits the timeout', async () => {
    const { db } = await openSchemaAt('0013_apply_intents');
    try {
      // Holding Kysely's migration lock acts as another process that is still migrating.
      await blocker.query(`select pg_advisory_lock(${kyselyMigrationLockId})`);
      const migration = migrateToLatest(db);
      try {
        // Without the lifted limit, PostgreSQL cancels the statement after the timeout and the migration
        // fails before this wait is over.
        await waitForBlockedStatement(blocker, observer, migration, 2 * statementTimeoutMs);
      } finally {
        await blocker.query(`select pg_advisory_unlock(${kyselyMigrationLockId})`);
      }

      assert.equal((await migration).at(-1), LATEST_MIGRATION);
      const timeout = await sql<{ statement_timeout: string }>`show statement_timeout`.execute(db.kysely);
      assert.equal(timeout.rows[0]!.statement_timeout, `${statementTimeoutMs}ms`);
    } finally {
      await db.close();
    }
  });

  it('other statements keep the timeout', async () => {
    const { db } = await openSchemaAt(LATEST_MIGRATION);
    try {
      await assert.rejects(sql`select pg_sleep(${(2 * statementTimeoutMs) / 1000})`.execute(db.kysely), /statement timeout/);
    } finally {
      await db.close();
    }
  });
});
