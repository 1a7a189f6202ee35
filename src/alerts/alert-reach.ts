import { sql } from 'kysely';
import type { DialectName } from '../db/database.js';
import { reachCondition } from '../registry/credentials.repository.js';

/**
 * Matches the alerts whose credential (by `credential_id`) a token's name or tag limits reach, as
 * `callerReaches` decides. Returns undefined for a token without limits.
 * Vault-wide alerts (`credential_name` `*`) have no credential id, so they match no limited token.
 * `outbox` is the name or alias of aegis_alert_outbox in the query.
 */
export function alertReachCondition(dialect: DialectName, reach: { namePatterns: string[]; tags: string[] }, outbox = 'aegis_alert_outbox') {
  const reached = reachCondition(dialect, reach, 'reached');
  if (reached === undefined) return undefined;
  return sql<boolean>`exists (select 1 from aegis_credentials as reached where reached.id = ${sql.ref(`${outbox}.credential_id`)} and ${reached})`;
}
