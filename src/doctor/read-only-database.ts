import fs from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { Config } from '../config/config.js';
import type { Db } from '../db/database.js';
import type { Database } from '../db/schema.js';
import { SqliteAdapter } from '../db/sqlite-adapter.js';
import { displayUrl } from './check.js';

/** How long the doctor waits for a PostgreSQL connection. */
const connectTimeoutMs = 3_000;

/**
 * Opens the configured database for reading only, unlike `openDatabase`, which creates the SQLite
 * file, its folder and the PostgreSQL schema. Throws when the database cannot be reached.
 */
export async function openReadOnlyDatabase(config: Config): Promise<Db> {
  if (config.databaseUrl) return openPostgres(config.databaseUrl, config.databaseSchema);
  return openSqlite(config.sqlitePath);
}

/**
 * Opens a SQLite file without creating anything beside it. SQLite in WAL mode creates `-wal` and `-shm`
 * files even for a read-only connection. Without a running writer there is no `-wal` file and the
 * main file contains every committed change, so the doctor reads a copy of it in memory instead.
 */
function openSqlite(file: string): Db {
  if (!fs.existsSync(file)) throw new Error(`the SQLite file ${file} does not exist`);
  let raw: BetterSqlite3.Database;
  if (fs.existsSync(`${file}-wal`)) {
    raw = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
  } else {
    // NOTE: the copy takes as much memory as the file; vaults are small, but a huge file would be slow.
    const copy = fs.readFileSync(file);
    // Bytes 18 and 19 of the header are the write and read format versions, 2 for WAL. An in-memory
    // database cannot use WAL, so mark the copy as a rollback-journal database (1).
    if (copy.length >= 20) copy.fill(1, 18, 20);
    raw = new BetterSqlite3(copy, { readonly: true });
  }
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SqliteAdapter(raw) }) });
  return { kysely, dialect: 'sqlite', location: file, schema: undefined, changeCount: undefined, close: () => kysely.destroy() };
}

async function openPostgres(url: string, schema: string | undefined): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: url,
    max: 1,
    connectionTimeoutMillis: connectTimeoutMs,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  pool.on('error', () => {});
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    const current = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(kysely);
    const location = `${displayUrl(url)}${schema ? ` (schema ${schema})` : ''}`;
    return { kysely, dialect: 'postgres', location, schema: schema ?? current.rows[0]?.schema ?? 'public', changeCount: undefined, close: () => kysely.destroy() };
  } catch (error) {
    await kysely.destroy();
    throw error;
  }
}
