import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openDatabase, type Db } from '../../src/db/database.js';

/** The PostgreSQL server the tests use; the machine's local one by default. */
export const testPostgresUrl = process.env.AEGIS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let reachable: Promise<boolean> | undefined;

/** Tells whether the test PostgreSQL accepts connections, checked once per process. */
export function postgresReachable(): Promise<boolean> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: testPostgresUrl, connectionTimeoutMillis: 3_000 });
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return reachable;
}

export type DialectName = 'sqlite' | 'postgres';

/**
 * Returns the dialects a suite runs on. PostgreSQL is skipped with a printed reason when it is not reachable,
 * except under CI (CI=true), where a missing PostgreSQL fails the run instead.
 */
export async function testDialects(): Promise<DialectName[]> {
  if (process.env.AEGIS_TEST_DIALECTS) {
    return process.env.AEGIS_TEST_DIALECTS.split(',').map((name) => name.trim()) as DialectName[];
  }
  if (await postgresReachable()) return ['sqlite', 'postgres'];
  if (process.env.CI === 'true') {
    throw new Error(`PostgreSQL is not reachable at ${testPostgresUrl}, and CI=true requires it. Start it or set AEGIS_TEST_DATABASE_URL.`);
  }
  process.stdout.write(`# skipping PostgreSQL runs: no server at ${testPostgresUrl} (set AEGIS_TEST_DATABASE_URL to use another)\n`);
  return ['sqlite'];
}

/**
 * Drops a test schema. Under scripts/run-tests.mjs the name is only written to the file named by
 * AEGIS_TEST_SCHEMA_LOG and the runner drops it after the run, because dropping it now would race with
 * other test files whose migrations read PostgreSQL's catalog ("schema ... does not exist").
 */
export async function dropSchema(schema: string): Promise<void> {
  const log = process.env.AEGIS_TEST_SCHEMA_LOG;
  if (log) {
    fs.appendFileSync(log, `${schema}\n`);
    return;
  }
  const client = new pg.Client({ connectionString: testPostgresUrl });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}

/**
 * Opens an empty database of `dialect`: a SQLite file in a new folder, or a new PostgreSQL schema.
 * `remove` closes it and deletes the folder or drops the schema.
 */
export async function openScratchDatabase(dialect: DialectName): Promise<{ db: Db; remove: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-scratch-'));
  const schema = `aegis_t_${crypto.randomBytes(6).toString('hex')}`;
  const db = await openDatabase({
    databaseUrl: dialect === 'postgres' ? testPostgresUrl : undefined,
    databaseSchema: dialect === 'postgres' ? schema : undefined,
    databasePoolMax: 2,
    sqlitePath: path.join(dir, 'aegis.db'),
  });
  const remove = async () => {
    await db.close();
    if (dialect === 'postgres') await dropSchema(schema);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { db, remove };
}

/**
 * Creates an ordinary login role on the test PostgreSQL with a random name and returns the name. Tests
 * that log in use it because AEGIS rejects postgres credentials for superusers such as `postgres`. The
 * test server trusts local connections, so any password logs in. Drop it with `dropLoginRole`.
 */
export async function createLoginRole(): Promise<string> {
  const name = `aegis_role_login_${crypto.randomBytes(6).toString('hex')}`;
  await runOnTestServer(`create role ${name} login`);
  return name;
}

/** Drops a role made by `createLoginRole`. */
export async function dropLoginRole(name: string): Promise<void> {
  await runOnTestServer(`drop role if exists ${name}`);
}

async function runOnTestServer(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: testPostgresUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
