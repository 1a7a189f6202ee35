import { sql, type RawBuilder } from 'kysely';
import type { DialectName } from '../db/database.js';
import type { Credential, CredentialStatus } from './credential.types.js';

/**
 * The status of a credential as of `now`, in the order the product request sets: retired stays retired;
 * then expired, rotating, failed, expiring (within `alert_threshold_hours` of expiry), active. The stored
 * status can lag behind time, so every read reports this one.
 */
export function effectiveStatus(
  credential: Pick<Credential, 'status' | 'expiresAt' | 'alertThresholdHours'>,
  now: Date,
): CredentialStatus {
  if (credential.status === 'retired') return 'retired';
  const expiresAt = credential.expiresAt === null ? null : new Date(credential.expiresAt).getTime();
  if (expiresAt !== null && expiresAt < now.getTime()) return 'expired';
  if (credential.status === 'rotating') return 'rotating';
  if (credential.status === 'failed') return 'failed';
  if (expiresAt !== null && expiresAt <= now.getTime() + credential.alertThresholdHours * 3_600_000) return 'expiring';
  return 'active';
}

/** The same rule as `effectiveStatus`, as an SQL expression over `aegis_credentials`, for filters and counts. */
export function effectiveStatusSql(dialect: DialectName, now: Date): RawBuilder<CredentialStatus> {
  const instant = now.toISOString();
  const windowEnd =
    dialect === 'postgres'
      ? sql`(${instant}::timestamptz + alert_threshold_hours * interval '1 hour')`
      : sql`strftime('%Y-%m-%dT%H:%M:%fZ', ${instant}, '+' || alert_threshold_hours || ' hours')`;
  const nowValue = dialect === 'postgres' ? sql`${instant}::timestamptz` : sql`${instant}`;
  return sql<CredentialStatus>`case
    when status = 'retired' then 'retired'
    when expires_at is not null and expires_at < ${nowValue} then 'expired'
    when status = 'rotating' then 'rotating'
    when status = 'failed' then 'failed'
    when expires_at is not null and expires_at <= ${windowEnd} then 'expiring'
    else 'active' end`;
}
