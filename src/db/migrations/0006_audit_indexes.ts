import { sql, type Kysely } from 'kysely';

/**
 * Indexes on `aegis_audit_log` for the audit report and for GET /audit/log over a million entries.
 *
 * - `idx_audit_report` gains `seq`, so the report's per-period aggregates, which take `min(seq)` to
 *   order findings, read only the index and never the table.
 * - The `(key, seq)` indexes serve two kinds of query, and the two partial ones on failed entries serve
 *   the failure-burst rule. GET /audit/log filters by one of these keys and
 *   orders by `seq desc`, and an anomaly lists its first 20 entries from its first sequence number.
 */
export async function up(db: Kysely<any>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  await db.schema.dropIndex('idx_audit_report').execute();
  await db.schema
    .createIndex('idx_audit_report')
    .on('aegis_audit_log')
    .columns(['timestamp', 'actor', 'credential_name', 'action', 'success', 'seq'])
    .execute();

  await db.schema.createIndex('idx_audit_actor_seq').on('aegis_audit_log').columns(['actor', 'seq']).execute();
  await db.schema.createIndex('idx_audit_actor_name_seq').on('aegis_audit_log').columns(['actor', 'credential_name', 'seq']).execute();
  await db.schema.createIndex('idx_audit_name_seq').on('aegis_audit_log').columns(['credential_name', 'seq']).execute();
  await db.schema.createIndex('idx_audit_action_actor_seq').on('aegis_audit_log').columns(['action', 'actor', 'seq']).execute();

  // Failed entries only. SQLite uses a partial index only when the query repeats its condition as
  // written here, so src/audit/anomalies.ts writes the same text rather than a bound parameter.
  const failed = sql.raw(dialect === 'sqlite' ? 'success = 0' : 'success = false');
  await sql`create index idx_audit_actor_failed on aegis_audit_log (actor, seq) where ${failed}`.execute(db);
  await sql`create index idx_audit_address_failed on aegis_audit_log (ip_address, seq) where ${failed}`.execute(db);
}
