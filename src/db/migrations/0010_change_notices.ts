import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../database.js';

/** The tables the read caches loaded from when this migration was written; a later cache needs a new migration. */
const cachedTables = ['aegis_tokens', 'aegis_credentials', 'aegis_credential_versions', 'aegis_health_checks'];

/**
 * On PostgreSQL, makes every statement that changes a table the read caches load from notify
 * `aegis_changes` with the table's schema, so that each AEGIS process on the vault hears of the other
 * processes' commits and drops its cached rows (PostgresChanges). PostgreSQL delivers a notification
 * when its transaction commits and folds identical ones of one transaction into one. SQLite needs no
 * trigger: its data_version pragma shows other connections' commits.
 */
export async function up(db: Kysely<any>, dialect: DialectName): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`
    create function aegis_notify_change() returns trigger language plpgsql as $$
    begin
      perform pg_notify('aegis_changes', tg_table_schema);
      return null;
    end
    $$`.execute(db);
  for (const table of cachedTables) {
    await sql`create trigger aegis_notify_change after insert or update or delete or truncate on ${sql.table(table)} for each statement execute function aegis_notify_change()`.execute(db);
  }
}
