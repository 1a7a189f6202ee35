import type { Kysely } from 'kysely';

/**
 * Adds `aegis_audit_checkpoints`, one signed row per audit prune, and indexes for the audit report and
 * its anomaly rules.
 *
 * A checkpoint records the sequence number and hash of the last entry a prune removed, so the chain
 * verifies from there instead of from the genesis hash. Its signature is an HMAC-SHA256 under a key
 * derived from the master key `key_id`, so a changed checkpoint fails verification.
 */
export async function up(db: Kysely<any>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const instant = dialect === 'postgres' ? 'timestamptz' : 'text';
  await db.schema
    .createTable('aegis_audit_checkpoints')
    .addColumn('seq', 'bigint', (col) => col.primaryKey())
    .addColumn('entry_hash', 'text', (col) => col.notNull())
    .addColumn('first_seq', 'bigint', (col) => col.notNull())
    .addColumn('removed_count', 'bigint', (col) => col.notNull())
    .addColumn('pruned_before', instant, (col) => col.notNull())
    .addColumn('created_at', instant, (col) => col.notNull())
    .addColumn('key_id', 'text', (col) => col.notNull())
    .addColumn('signature', 'text', (col) => col.notNull())
    .execute();

  // The report's aggregates read only these columns, so they scan this index instead of the table.
  await db.schema
    .createIndex('idx_audit_report')
    .on('aegis_audit_log')
    .columns(['timestamp', 'actor', 'credential_name', 'action', 'success'])
    .execute();
  // "Did this actor use this credential before the period?" is one index probe per pair.
  await db.schema.createIndex('idx_audit_actor_name').on('aegis_audit_log').columns(['actor', 'credential_name', 'timestamp']).execute();
  await db.schema.createIndex('idx_audit_address').on('aegis_audit_log').columns(['ip_address', 'timestamp']).execute();
}
