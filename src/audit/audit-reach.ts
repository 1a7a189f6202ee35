import { sql, type RawBuilder } from 'kysely';
import type { DialectName } from '../db/database.js';
import { reachCondition } from '../registry/credentials.repository.js';
import type { Caller } from '../tokens/caller.js';

/**
 * Matches the entries a token with name or tag limits may read: its own actor's, and those whose
 * `credential_name` names a stored credential it reaches (see docs/audit.md). Returns undefined for a
 * token without limits, so their queries stay unchanged. Names are unique and never change, and
 * credentials are never deleted, so the name finds the same credential as the entry's `credential_id`.
 * NOTE: on SQLite without ANALYZE statistics (AEGIS never runs ANALYZE) a page took 70 to 130 ms for a
 * token reaching 100,000 of 1,000,000 entries, and under 1 ms for one reaching none (one measurement).
 * After ANALYZE, SQLite may walk the whole log in `seq` order instead: 0.6 to 0.9 s for a token reaching none.
 */
export function auditReachCondition(dialect: DialectName, caller: Pick<Caller, 'actor' | 'namePatterns' | 'tags'>): RawBuilder<boolean> | undefined {
  const reached = reachCondition(dialect, caller, 'reached');
  if (reached === undefined) return undefined;
  return sql<boolean>`(${sql.ref('aegis_audit_log.actor')} = ${caller.actor}
    or ${sql.ref('aegis_audit_log.credential_name')} in (select reached.name from aegis_credentials as reached where ${reached}))`;
}
