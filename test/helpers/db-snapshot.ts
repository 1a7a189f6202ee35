import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';

export type Row = Record<string, unknown>;

/** Every row of one table, with values in a form that compares equal across reads of both dialects. */
export type TableSnapshot = Record<string, Row[]>;

/** Lists the tables of the vault's database: SQLite's main file, or the PostgreSQL schema on the search path. */
export async function listTables(db: Db): Promise<string[]> {
  if (db.dialect === 'postgres') {
    const result = await sql<{ name: string }>`
      select table_name as name from information_schema.tables
      where table_schema = current_schema() and table_type = 'BASE TABLE'`.execute(db.kysely);
    return result.rows.map((row) => row.name).sort();
  }
  const result = await sql<{ name: string }>`
    select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(db.kysely);
  return result.rows.map((row) => row.name).sort();
}

/**
 * Reads every row of every table except those in `skipTables`, dropping the columns in `skipColumns`
 * (keyed `table.column`). Rows are sorted by their JSON text, so the snapshot does not depend on scan order.
 */
export async function snapshotDatabase(
  db: Db,
  options: { skipTables?: ReadonlyArray<string>; skipColumns?: ReadonlyArray<string> } = {},
): Promise<TableSnapshot> {
  const snapshot: TableSnapshot = {};
  for (const table of await listTables(db)) {
    if (options.skipTables?.includes(table)) continue;
    const result = await sql<Row>`select * from ${sql.table(table)}`.execute(db.kysely);
    const rows = result.rows.map((row) => normalizeRow(table, row, options.skipColumns ?? []));
    snapshot[table] = rows.sort((a, b) => compareText(JSON.stringify(a), JSON.stringify(b)));
  }
  return snapshot;
}

function normalizeRow(table: string, row: Row, skipColumns: ReadonlyArray<string>): Row {
  const normalized: Row = {};
  for (const [column, value] of Object.entries(row)) {
    if (skipColumns.includes(`${table}.${column}`)) continue;
    if (value instanceof Date) normalized[column] = value.toISOString();
    else if (Buffer.isBuffer(value)) normalized[column] = value.toString('hex');
    else if (typeof value === 'bigint') normalized[column] = value.toString();
    else normalized[column] = value;
  }
  return normalized;
}

function compareText(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}
