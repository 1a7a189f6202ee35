import { sql, type Kysely } from 'kysely';

/**
 * Partial indexes on failed audit entries for GET /audit/log?success=false: `(seq)` reads the newest
 * failures in order, and `("timestamp", seq)` counts the failures of a time range from the index alone.
 * Failures are a small share of the log, so these cost appends little. SQLite uses them only when the
 * query writes the condition as written here (see queryEntries in src/audit/audit.repository.ts).
 */
export async function up(db: Kysely<any>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const failed = sql.raw(dialect === 'sqlite' ? 'success = 0' : 'success = false');
  await sql`create index idx_audit_failed_seq on aegis_audit_log (seq) where ${failed}`.execute(db);
  await sql`create index idx_audit_failed_time on aegis_audit_log ("timestamp", seq) where ${failed}`.execute(db);
}
