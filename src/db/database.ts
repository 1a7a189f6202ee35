import fs from 'node:fs';
import path from 'node:path';
import { Kysely, SqliteAdapter as KyselySqliteAdapter, SqliteDialect, sql, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { isDatabaseUnavailable, isUniqueViolation } from './database-errors.js';
import { poolConfig, resolvePoolSettings, type PoolSettings } from './pool-settings.js';
import { MigrationPostgresDialect } from './postgres-migration-dialect.js';
import type { Database } from './schema.js';
import { SqliteAdapter } from './sqlite-adapter.js';
import { openSqliteConnection } from './sqlite-connection.js';

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
  /**
   * Grows whenever rows other than the audit log may have changed, so a value read while it stayed the
   * same may be served again (see ReadCache). It returns undefined while changes could go unseen (on
   * PostgreSQL, while the connection that hears other processes' commits is down), and is undefined
   * where the process never caches (the doctor's read-only copies).
   */
  readonly changeCount: (() => number | undefined) | undefined;
  /** On PostgreSQL, resolves once this process has heard of every commit made before the call; for tests. */
  readonly changesHeard?: () => Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /**
   * Receives a warning for each pooled PostgreSQL connection that is lost, and notes on the connection
   * that listens for other processes' changes.
   */
  log?: Pick<Logger, 'warn' | 'info'>;
  /** Pool settings other than `max`; the defaults of DEFAULT_POOL_SETTINGS fill the rest. */
  pool?: Partial<PoolSettings>;
  /**
   * Creates a missing PostgreSQL schema while opening (the default). The vault passes false and calls
   * createSchema after its master key check, so a start rejected for its key writes nothing.
   */
  createSchema?: boolean;
}

/** Opens the configured database: PostgreSQL when a URL is set, the SQLite file otherwise. */
export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'databaseSchema' | 'databasePoolMax' | 'sqlitePath'> & Partial<Pick<Config, 'providerTimeoutMs'>>,
  options: OpenDatabaseOptions = {},
): Promise<Db> {
  if (config.databaseUrl) {
    const settings = resolvePoolSettings(config.databasePoolMax, options.pool, config.providerTimeoutMs);
    return openPostgres(config.databaseUrl, config.databaseSchema, settings, options.log, options.createSchema ?? true);
  }
  return openSqlite(config.sqlitePath);
}

/**
 * Kysely's SQLite adapter takes no lock around migrations, and runs them outside a transaction,
 * because one connection usually migrates. Two processes that start at once on a new file (a server
 * and a CLI command) then both ran the first migration, and one failed. This adapter runs the
 * migrations in one BEGIN IMMEDIATE transaction, so the second process waits for the first and then
 * finds them applied.
 */
class MigrationLockingSqliteAdapter extends KyselySqliteAdapter {
  /** Set while the transaction runs. Kysely releases the lock even when taking it failed (a lock timeout), and a COMMIT then would hide that error. */
  #locked = false;

  override async acquireMigrationLock(db: Kysely<any>): Promise<void> {
    await sql`begin immediate`.execute(db);
    this.#locked = true;
  }

  override async releaseMigrationLock(db: Kysely<any>): Promise<void> {
    if (!this.#locked) return;
    this.#locked = false;
    // Commits what ran, as Kysely did without the transaction: the migrations that succeeded, each
    // recorded. SQLite may have rolled back already (a full disk), and then the migration's own error
    // is the one to report, not this statement's.
    try {
      await sql`commit`.execute(db);
    } catch (error) {
      if (/no transaction is active/.test((error as Error).message)) return;
      await sql`rollback`.execute(db).catch(() => {});
      throw error;
    }
  }
}

class MigrationLockingSqliteDialect extends SqliteDialect {
  override createAdapter(): KyselySqliteAdapter {
    return new MigrationLockingSqliteAdapter();
  }
}

function openSqlite(file: string): Db {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Created readable by its owner only; SQLite gives its -wal and -shm files the same mode.
  if (!fs.existsSync(file)) fs.closeSync(fs.openSync(file, 'a', 0o600));
  const adapter = new SqliteAdapter(openSqliteConnection(file));
  const kysely = new Kysely<Database>({ dialect: new MigrationLockingSqliteDialect({ database: adapter }) });
  return { kysely, dialect: 'sqlite', location: file, schema: undefined, changeCount: () => adapter.changeCount(), close: () => kysely.destroy() };
}

async function openPostgres(url: string, schema: string | undefined, settings: PoolSettings, log: OpenDatabaseOptions['log'], createsSchema: boolean): Promise<Db> {
  // Loaded here, so that opening a SQLite vault does not load the driver (start-up time and memory, B8 in BENCHMARKS.md).
  const { default: pg } = await import('pg');
  const { PostgresChanges } = await import('./postgres-changes.js');
  const pool = new pg.Pool(poolConfig(url, schema, settings));
  // A client that loses its connection emits 'error', and an 'error' event without a listener ends the
  // process. pg-pool listens only while a client is idle (and re-emits on the pool, hence the empty
  // listener there), so each client gets a listener of its own that also covers the time it is checked
  // out, e.g. inside a transaction between two statements. pg-pool drops such a client when it is
  // released, because it is no longer queryable, and opens a new connection for the next request.
  const changes = new PostgresChanges(poolConfig(url, schema, settings), { warn: (message) => log?.warn(message), info: (message) => log?.info(message) });
  pool.on('connect', (client) => {
    client.on('error', (error) => warnConnectionLost(log, error));
    changes.watch(client);
  });
  pool.on('acquire', (client) => changes.checkedOut(client));
  pool.on('error', () => {});
  const kysely = new Kysely<Database>({ dialect: new MigrationPostgresDialect({ pool }) });
  if (schema && createsSchema) await createSchemaIfMissing(kysely, schema);
  const current = await sql<{ schema: string }>`select current_schema() as schema`.execute(kysely);
  const currentSchema = current.rows[0]?.schema ?? schema ?? 'public';
  await changes.start(currentSchema);
  return {
    kysely,
    dialect: 'postgres',
    location: describePostgresUrl(url, schema),
    schema: currentSchema,
    changeCount: () => changes.count(),
    changesHeard: () => changes.caughtUp(),
    close: async () => {
      await changes.close();
      await kysely.destroy();
    },
  };
}

/** Creates the PostgreSQL schema `schema` when it is missing. It does nothing on SQLite or without a configured schema. */
export async function createSchema(db: Db, schema: string | undefined): Promise<void> {
  if (db.dialect === 'postgres' && schema) await createSchemaIfMissing(db.kysely, schema);
}

async function createSchemaIfMissing(kysely: Kysely<Database>, schema: string): Promise<void> {
  try {
    await sql`create schema if not exists ${sql.id(schema)}`.execute(kysely);
  } catch (error) {
    // Another process created it at the same moment: "if not exists" does not cover that race.
    if (!isUniqueViolation(error)) throw error;
  }
}

function warnConnectionLost(log: OpenDatabaseOptions['log'], error: Error): void {
  const code = (error as { code?: unknown }).code;
  const reason = isDatabaseUnavailable(error) ? 'the server closed it or became unreachable' : 'unexpected error';
  log?.warn({ err: { type: error.name, code, message: error.message } }, `lost a pooled PostgreSQL connection (${reason}); the pool opens a new one when needed`);
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
