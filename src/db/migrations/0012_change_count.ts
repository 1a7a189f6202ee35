import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../database.js';

/** The tables the read caches loaded from when this migration was written; a later cache needs a new migration. */
const cachedTables = ['aegis_tokens', 'aegis_credentials', 'aegis_credential_versions', 'aegis_health_checks'];
/** Cached tables whose `last_used_at` reads update; those updates alone count as no change. */
const lastUseTables = new Set(['aegis_tokens', 'aegis_credentials']);

/**
 * On SQLite, counts the changes to the tables the read caches load from in `aegis_change_count`, so
 * that a process can tell another connection's commit to those tables from a commit that only appended
 * to the audit log (SqliteAdapter reads the count once per turn of the event loop). SQLite's
 * data_version pragma, read before, shows every other connection's commit, and the audit writer thread
 * commits on a connection of its own many times a second.
 *
 * The triggers on tokens and credentials compare every column but `last_used_at`, listed when this
 * migration runs: a migration that adds a column to either table must create their update triggers
 * again. PostgreSQL notifies instead (migration 0010).
 */
export async function up(db: Kysely<any>, dialect: DialectName): Promise<void> {
  if (dialect !== 'sqlite') return;
  await sql`create table aegis_change_count (id integer primary key check (id = 1), count integer not null)`.execute(db);
  await sql`insert into aegis_change_count (id, count) values (1, 0)`.execute(db);
  const bump = sql`update aegis_change_count set count = count + 1 where id = 1;`;
  for (const table of cachedTables) {
    const target = sql.table(table);
    await sql`create trigger ${sql.id(`${table}_count_insert`)} after insert on ${target} begin ${bump} end`.execute(db);
    await sql`create trigger ${sql.id(`${table}_count_delete`)} after delete on ${target} begin ${bump} end`.execute(db);
    if (!lastUseTables.has(table)) {
      await sql`create trigger ${sql.id(`${table}_count_update`)} after update on ${target} begin ${bump} end`.execute(db);
      continue;
    }
    const columns = await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(db);
    const changed = columns.rows
      .map((column) => column.name)
      .filter((name) => name !== 'last_used_at')
      .map((name) => sql`old.${sql.id(name)} is not new.${sql.id(name)}`);
    await sql`create trigger ${sql.id(`${table}_count_update`)} after update on ${target} when ${sql.join(changed, sql` or `)} begin ${bump} end`.execute(db);
  }
}
