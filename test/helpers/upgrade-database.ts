import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';
import { openScratchDatabase, type DialectName } from './databases.js';

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
  const { db, remove } = await openScratchDatabase(dialect);
  try {
    await run(db);
  } finally {
    await remove();
  }
}
