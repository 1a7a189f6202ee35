import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../database.js';

/** The tables the read caches loaded from when this migration was written; a later cache needs a new migration. */
const cachedTables = ['aegis_tokens', 'aegis_credentials', 'aegis_credential_versions', 'aegis_health_checks'];
/** Cached tables whose `last_used_at` reads update; those updates alone notify nobody. */
const lastUseTables = new Set(['aegis_tokens', 'aegis_credentials']);

/**
 * On PostgreSQL, makes every statement that changes a table the read caches load from notify
 * `aegis_changes` with the table's schema, so that each AEGIS process on the vault hears of the other
 * processes' commits and drops its cached rows (PostgresChanges). PostgreSQL delivers a notification
 * when its transaction commits and folds identical ones of one transaction into one. An update that
 * changes only `last_used_at` notifies nobody: each process keeps its own last-use time in its cache.
 * SQLite needs no trigger: its data_version pragma shows other connections' commits.
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
  await sql`
    create function aegis_notify_update() returns trigger language plpgsql as $$
    begin
      if exists (
        select 1 from changed_after a left join changed_before b on b.id = a.id
        where b.id is null or (to_jsonb(b) - 'last_used_at') is distinct from (to_jsonb(a) - 'last_used_at')
      ) then
        perform pg_notify('aegis_changes', tg_table_schema);
      end if;
      return null;
    end
    $$`.execute(db);
  for (const table of cachedTables) {
    const target = sql.table(table);
    if (!lastUseTables.has(table)) {
      await sql`create trigger aegis_notify_change after insert or update or delete or truncate on ${target} for each statement execute function aegis_notify_change()`.execute(db);
      continue;
    }
    await sql`create trigger aegis_notify_change after insert or delete or truncate on ${target} for each statement execute function aegis_notify_change()`.execute(db);
    await sql`create trigger aegis_notify_update after update on ${target} referencing old table as changed_before new table as changed_after for each statement execute function aegis_notify_update()`.execute(db);
  }
}
