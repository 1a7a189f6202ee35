import type { Kysely } from 'kysely';

/**
 * Drops two indexes on `aegis_audit_log` that no query reads, because every append writes to each
 * index of the table (about 3 to 6 us per entry on SQLite together, measured with the group commit's
 * batches of 13 rows):
 * - `idx_audit_address (ip_address, timestamp)`: no filter or report rule selects by address and
 *   time; the failure-burst rule reads the partial index `idx_audit_address_failed`.
 * - `idx_audit_credential (credential_id)`: no query selects by credential id, and credentials are
 *   retired, never deleted, so the foreign key needs no index for checks on delete.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('idx_audit_address').execute();
  await db.schema.dropIndex('idx_audit_credential').execute();
}
