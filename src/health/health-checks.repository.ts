import crypto from 'node:crypto';
import type { Executor } from '../db/database.js';
import { toJson } from '../db/values.js';
import type { HealthStatus } from './health.types.js';

export interface HealthCheckRow {
  credentialId: string;
  checkedAt: string;
  status: HealthStatus;
  responseTimeMs: number | null;
  details: Record<string, unknown>;
  errorMessage: string | null;
}

/** Stores one check and moves the credential's `last_health_check`; returns the check's id. */
export async function insertHealthCheck(db: Executor, check: HealthCheckRow): Promise<string> {
  const id = crypto.randomUUID();
  await db
    .insertInto('aegis_health_checks')
    .values({
      id,
      credential_id: check.credentialId,
      checked_at: check.checkedAt,
      status: check.status,
      response_time_ms: check.responseTimeMs,
      details: toJson(check.details),
      error_message: check.errorMessage,
    })
    .execute();
  await db.updateTable('aegis_credentials').set({ last_health_check: check.checkedAt }).where('id', '=', check.credentialId).execute();
  return id;
}

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
