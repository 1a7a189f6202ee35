import type { Kysely } from 'kysely';

/**
 * Drops three indexes on `aegis_audit_log` that later indexes cover, because every append writes to
 * each index of the table:
 * - `idx_audit_timestamp (timestamp)` is a prefix of `idx_audit_report (timestamp, ...)`;
 * - `idx_audit_action (action)` is a prefix of `idx_audit_action_actor_seq (action, actor, seq)`;
 * - `idx_audit_actor (actor, timestamp)` serves no query that `idx_audit_actor_seq (actor, seq)`,
 *   `idx_audit_actor_name (actor, credential_name, timestamp)` and `idx_audit_report` do not.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('idx_audit_timestamp').execute();
  await db.schema.dropIndex('idx_audit_action').execute();
  await db.schema.dropIndex('idx_audit_actor').execute();
}
