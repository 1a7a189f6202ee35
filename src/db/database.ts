import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import type { Config } from '../config/config.js';
import type { Database } from './schema.js';
import { SqliteAdapter } from './sqlite-adapter.js';

export type DialectName = 'sqlite' | 'postgres';

/** Either the whole database or an open transaction; repository functions take one as their first argument. */
export type Executor = Kysely<Database> | Transaction<Database>;

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly dialect: DialectName;
  /** Where the data lives, for messages: the SQLite file or the PostgreSQL database without credentials. */
  readonly location: string;
  /** The PostgreSQL schema AEGIS's tables live in (the first of the search path); undefined on SQLite. */
  readonly schema: string | undefined;
  close(): Promise<void>;
}

/** Opens the configured database: PostgreSQL when a URL is set, the SQLite file otherwise. */
export async function openDatabase(config: Pick<Config, 'databaseUrl' | 'databaseSchema' | 'databasePoolMax' | 'sqlitePath'>): Promise<Db> {
  if (config.databaseUrl) return openPostgres(config.databaseUrl, config.databaseSchema, config.databasePoolMax);
  return openSqlite(config.sqlitePath);
}

function openSqlite(file: string): Db {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const raw = new BetterSqlite3(file);
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = NORMAL');
  raw.pragma('foreign_keys = ON');
  raw.pragma('busy_timeout = 5000');
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SqliteAdapter(raw) }) });
  return { kysely, dialect: 'sqlite', location: file, schema: undefined, close: () => kysely.destroy() };
}

async function openPostgres(url: string, schema: string | undefined, poolMax: number): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolMax,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // An idle client that loses its connection emits an error on the pool; without a listener it would end the process.
  pool.on('error', () => {});
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  if (schema) await sql`create schema if not exists ${sql.id(schema)}`.execute(kysely);
  const current = await sql<{ schema: string }>`select current_schema() as schema`.execute(kysely);
  return {
    kysely,
    dialect: 'postgres',
    location: describePostgresUrl(url, schema),
    schema: current.rows[0]?.schema ?? schema ?? 'public',
    close: () => kysely.destroy(),
  };
}

function describePostgresUrl(url: string, schema: string | undefined): string {
  try {
    const parsed = new URL(url);
    const where = `postgres://${parsed.host}${parsed.pathname}`;
    return schema ? `${where} (schema ${schema})` : where;
  } catch {
    return 'PostgreSQL';
  }
}

/** Tells whether a table exists in AEGIS's schema, so start-up can check keys before it migrates anything. */
export async function tableExists(db: Db, table: string): Promise<boolean> {
  if (db.dialect === 'postgres') {
    const result = await sql<{ found: boolean }>`select to_regclass(${table}) is not null as found`.execute(db.kysely);
    return result.rows[0]?.found === true;
  }
  const result = await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name = ${table}`.execute(db.kysely);
  return result.rows.length > 0;
}
