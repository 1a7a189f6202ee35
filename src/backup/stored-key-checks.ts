import fs from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import type { Config } from '../config/config.js';

/** A master key as the vault registered it: id, state and key check value, never the key. */
export interface StoredKeyCheck {
  keyId: string;
  state: string;
  checkValue: string;
  /** Whether an audit checkpoint (written when entries are pruned) is signed with this key, so `aegis audit verify` needs it even once retired. */
  signsCheckpoints: boolean;
}

export type StoredKeyChecks = { location: string; records: StoredKeyCheck[] } | { location: string; unavailable: string };

/**
 * Reads the registered master keys of the configured database without writing anything: no SQLite file
 * is created, no migration runs and no PostgreSQL schema is created. Returns `unavailable` with the
 * reason when there is no database, no key table, or no connection.
 */
export async function readStoredKeyChecks(config: Config): Promise<StoredKeyChecks> {
  if (config.databaseUrl) return readFromPostgres(config.databaseUrl, config.databaseSchema);
  return readFromSqlite(config.sqlitePath);
}

function readFromSqlite(file: string): StoredKeyChecks {
  if (!fs.existsSync(file)) return { location: file, unavailable: `the SQLite file ${file} does not exist` };
  const raw = new BetterSqlite3(file, { fileMustExist: true });
  try {
    raw.pragma('busy_timeout = 5000');
    const table = raw.prepare("select name from sqlite_master where type = 'table' and name = 'aegis_master_keys'").get();
    if (!table) return { location: file, unavailable: `${file} has no aegis_master_keys table` };
    const rows = raw.prepare('select key_id, state, check_value from aegis_master_keys order by created_at').all() as Array<Record<string, string>>;
    const checkpoints = raw.prepare("select name from sqlite_master where type = 'table' and name = 'aegis_audit_checkpoints'").get();
    const signers = checkpoints ? (raw.prepare('select distinct key_id from aegis_audit_checkpoints').pluck().all() as string[]) : [];
    return { location: file, records: rows.map((row) => toCheck(row, signers)) };
  } finally {
    raw.close();
  }
}

async function readFromPostgres(url: string, schema: string | undefined): Promise<StoredKeyChecks> {
  const location = describeUrl(url, schema);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000, ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    return { location, unavailable: `PostgreSQL is not reachable (${(error as Error).message})` };
  }
  try {
    const found = await client.query<{ found: boolean }>("select to_regclass('aegis_master_keys') is not null as found");
    if (!found.rows[0]?.found) return { location, unavailable: 'the database has no aegis_master_keys table' };
    const rows = await client.query<Record<string, string>>('select key_id, state, check_value from aegis_master_keys order by created_at');
    const checkpoints = await client.query<{ found: boolean }>("select to_regclass('aegis_audit_checkpoints') is not null as found");
    const signers = checkpoints.rows[0]?.found ? (await client.query<{ key_id: string }>('select distinct key_id from aegis_audit_checkpoints')).rows.map((row) => row.key_id) : [];
    return { location, records: rows.rows.map((row) => toCheck(row, signers)) };
  } finally {
    await client.end().catch(() => {});
  }
}

function toCheck(row: Record<string, string>, checkpointSigners: string[]): StoredKeyCheck {
  return { keyId: row.key_id!, state: row.state!, checkValue: row.check_value!, signsCheckpoints: checkpointSigners.includes(row.key_id!) };
}

/** Describes the database URL for messages, without user name or password. */
function describeUrl(url: string, schema: string | undefined): string {
  try {
    const parsed = new URL(url);
    const where = `postgres://${parsed.host}${parsed.pathname}`;
    return schema ? `${where} (schema ${schema})` : where;
  } catch {
    return 'PostgreSQL';
  }
}
