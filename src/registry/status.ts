import { sql, type RawBuilder } from 'kysely';
import type { DialectName } from '../db/database.js';
import type { Credential, CredentialStatus } from './credential.types.js';

/** The statuses that follow from the expiry date alone; the stored status moves between them as time passes. */
export type ExpiryStatus = 'active' | 'expiring' | 'expired';
export const EXPIRY_STATUSES: ReadonlyArray<ExpiryStatus> = ['active', 'expiring', 'expired'];

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
  const byExpiry = expiryStatus(credential, now);
  if (byExpiry === 'expired') return 'expired';
  if (credential.status === 'rotating') return 'rotating';
  if (credential.status === 'failed') return 'failed';
  return byExpiry;
}

/**
 * Computes the status the expiry date alone gives as of `now`: expired once `expires_at` has passed, expiring
 * within `alert_threshold_hours` of it (inclusive), active otherwise or without an expiry date.
 */
export function expiryStatus(credential: Pick<Credential, 'expiresAt' | 'alertThresholdHours'>, now: Date): ExpiryStatus {
  if (credential.expiresAt === null) return 'active';
  const expiresAt = new Date(credential.expiresAt).getTime();
  if (expiresAt < now.getTime()) return 'expired';
  if (expiresAt <= now.getTime() + credential.alertThresholdHours * 3_600_000) return 'expiring';
  return 'active';
}

/** Builds the rule of `effectiveStatus` as an SQL expression over `aegis_credentials`, for filters and counts. */
export function effectiveStatusSql(dialect: DialectName, now: Date): RawBuilder<CredentialStatus> {
  return sql<CredentialStatus>`case
    when status = 'retired' then 'retired'
    when expires_at is not null and expires_at < ${instantSql(dialect, now)} then 'expired'
    when status = 'rotating' then 'rotating'
    when status = 'failed' then 'failed'
    when expires_at is not null and expires_at <= ${expiryWindowEndSql(dialect, now)} then 'expiring'
    else 'active' end`;
}

/** Builds the rule of `expiryStatus` as an SQL expression over `aegis_credentials`. */
export function expiryStatusSql(dialect: DialectName, now: Date): RawBuilder<ExpiryStatus> {
  return sql<ExpiryStatus>`case
    when expires_at is not null and expires_at < ${instantSql(dialect, now)} then 'expired'
    when expires_at is not null and expires_at <= ${expiryWindowEndSql(dialect, now)} then 'expiring'
    else 'active' end`;
}

/**
 * Builds `now` plus the row's `alert_threshold_hours`, as an instant comparable with `expires_at`. Both forms
 * count in UTC: PostgreSQL adds an interval of hours (not days) to a timestamptz, so daylight-saving
 * changes of the session's time zone do not shift it, and SQLite's strftime works on the UTC text AEGIS stores.
 */
export function expiryWindowEndSql(dialect: DialectName, now: Date): RawBuilder<string> {
  const instant = now.toISOString();
  return dialect === 'postgres'
    ? sql<string>`(${instant}::timestamptz + alert_threshold_hours * interval '1 hour')`
    : sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', ${instant}, '+' || alert_threshold_hours || ' hours')`;
}

/** Builds an instant as an SQL value comparable with instant columns: timestamptz on PostgreSQL, ISO-8601 UTC text on SQLite. */
export function instantSql(dialect: DialectName, instant: Date): RawBuilder<string> {
  return dialect === 'postgres' ? sql<string>`${instant.toISOString()}::timestamptz` : sql<string>`${instant.toISOString()}`;
}
