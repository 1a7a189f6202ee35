import type { Executor } from '../db/database.js';
import type { HealthStatus } from './health.types.js';

/**
 * The status of each credential's newest check, by credential id; credentials never checked are absent.
 * NOTE: two checks of one credential stored with the same `checked_at` millisecond tie, and either may win.
 */
export async function latestHealthStatuses(db: Executor, credentialIds: ReadonlyArray<string>): Promise<Map<string, HealthStatus>> {
  const statuses = new Map<string, HealthStatus>();
  if (credentialIds.length === 0) return statuses;
  const rows = await db
    .selectFrom('aegis_health_checks as h')
    .select(['h.credential_id', 'h.status'])
    .where('h.credential_id', 'in', [...credentialIds])
    .where((eb) =>
      eb(
        'h.checked_at',
        '=',
        eb.selectFrom('aegis_health_checks as newer').select((inner) => inner.fn.max('newer.checked_at').as('newest')).whereRef('newer.credential_id', '=', 'h.credential_id'),
      ),
    )
    .execute();
  for (const row of rows) statuses.set(row.credential_id, row.status as HealthStatus);
  return statuses;
}
