import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openDatabase, type Db } from '../../src/db/database.js';
import { dropSchema, testPostgresUrl, type DialectName } from './databases.js';

/** Lists the names of the indexes AEGIS created on `table`, sorted, without the ones behind primary keys and unique columns. */
export async function indexNames(db: Db, table: string): Promise<string[]> {
  const rows =
    db.dialect === 'sqlite'
      ? await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = ${table} and sql is not null`.execute(db.kysely)
      : await sql<{ name: string }>`select indexname as name from pg_indexes where tablename = ${table} and schemaname = ${db.schema} and indexname like 'idx_%'`.execute(db.kysely);
  return rows.rows.map((row) => row.name).sort();
}

/**
 * Opens an empty database without migrations (a SQLite file in a new folder, or a new PostgreSQL
 * schema), so an upgrade test can migrate it step by step, and removes it after `run`.
 */
export async function withEmptyDatabase(dialect: DialectName, run: (db: Db) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-upgrade-'));
  const schema = `aegis_t_${crypto.randomBytes(6).toString('hex')}`;
  const db = await openDatabase({
    databaseUrl: dialect === 'postgres' ? testPostgresUrl : undefined,
    databaseSchema: dialect === 'postgres' ? schema : undefined,
    databasePoolMax: 2,
    sqlitePath: path.join(dir, 'aegis.db'),
  });
  try {
    await run(db);
  } finally {
    await db.close();
    if (dialect === 'postgres') await dropSchema(schema);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
