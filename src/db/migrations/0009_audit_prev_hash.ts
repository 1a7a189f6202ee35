import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../database.js';

/**
 * On SQLite, rebuilds `aegis_audit_log` without the unique constraint on `prev_hash`. Each append put
 * a random 64-character hash into that constraint's index, so every commit rewrote pages all over the
 * index. On SQLite one write lock (BEGIN IMMEDIATE) orders every writer, and the unique `seq` and the
 * head row already keep the chain from forking. PostgreSQL keeps the constraint, because several
 * processes append there.
 */
export async function up(db: Kysely<any>, dialect: DialectName): Promise<void> {
  if (dialect !== 'sqlite') return;
  const table = await sql<{ sql: string }>`select sql from sqlite_master where type = 'table' and name = 'aegis_audit_log'`.execute(db);
  const indexes = await sql<{ sql: string }>`select sql from sqlite_master where type = 'index' and tbl_name = 'aegis_audit_log' and sql is not null`.execute(db);
  const created = table.rows[0]?.sql ?? '';
  const withoutUnique = created.replace('"prev_hash" text not null unique', '"prev_hash" text not null');
  if (withoutUnique === created) throw new Error('aegis_audit_log has an unexpected definition; prev_hash is not "text not null unique".');

  await sql.raw(withoutUnique.replace('CREATE TABLE "aegis_audit_log"', 'CREATE TABLE "aegis_audit_log_rebuilt"')).execute(db);
  await sql`insert into aegis_audit_log_rebuilt select * from aegis_audit_log`.execute(db);
  await sql`drop table aegis_audit_log`.execute(db);
  await sql`alter table aegis_audit_log_rebuilt rename to aegis_audit_log`.execute(db);
  for (const index of indexes.rows) await sql.raw(index.sql).execute(db);
}
