import crypto from 'node:crypto';
import type { Executor } from '../db/database.js';
import { toIso, toJson } from '../db/values.js';
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

/**
 * Finds a credential's newest `healthy` or `unhealthy` check, passing over `unknown` ones, because an
 * `unknown` result leaves the credential's status as it was. Returns undefined when it has none.
 */
export async function findNewestDecisiveCheck(db: Executor, credentialId: string): Promise<{ status: HealthStatus; checkedAt: string } | undefined> {
  const row = await db
    .selectFrom('aegis_health_checks')
    .select(['status', 'checked_at'])
    .where('credential_id', '=', credentialId)
    .where('status', '!=', 'unknown')
    .orderBy('checked_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? { status: row.status as HealthStatus, checkedAt: toIso(row.checked_at) } : undefined;
}

/**
 * Stores one passed test of a credential's current value that was not a health check run: a rotation's
 * test of the value it committed. Health checks store theirs with their audit entries (see recordChecks).
 */
export async function insertPassedCheck(db: Executor, credentialId: string, checkedAt: string, responseTimeMs: number, details: Record<string, unknown>): Promise<void> {
  await db
    .insertInto('aegis_health_checks')
    .values({ id: crypto.randomUUID(), credential_id: credentialId, checked_at: checkedAt, status: 'healthy', response_time_ms: responseTimeMs, details: toJson(details), error_message: null })
    .execute();
}

/** One stored check as the history lists it, without `details`, because those may carry provider output. */
export interface HealthCheckEntry {
  checkedAt: string;
  status: HealthStatus;
  responseTimeMs: number | null;
  errorMessage: string | null;
}

/**
 * Lists one credential's checks, newest first, with the number of checks it has in all. Checks stored
 * with the same `checked_at` are ordered by id, so paging never repeats or skips one.
 */
export async function listHealthChecks(
  db: Executor,
  credentialId: string,
  page: { limit: number; offset: number },
): Promise<{ checks: HealthCheckEntry[]; total: number }> {
  const rows = await db
    .selectFrom('aegis_health_checks')
    .select(['checked_at', 'status', 'response_time_ms', 'error_message'])
    .where('credential_id', '=', credentialId)
    .orderBy('checked_at', 'desc')
    .orderBy('id', 'desc')
    .limit(page.limit)
    .offset(page.offset)
    .execute();
  const counted = await db
    .selectFrom('aegis_health_checks')
    .select((eb) => eb.fn.countAll<string | number>().as('count'))
    .where('credential_id', '=', credentialId)
    .executeTakeFirstOrThrow();
  return {
    checks: rows.map((row) => ({
      checkedAt: toIso(row.checked_at),
      status: row.status as HealthStatus,
      responseTimeMs: row.response_time_ms,
      errorMessage: row.error_message,
    })),
    total: Number(counted.count),
  };
}
