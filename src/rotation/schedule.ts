import { Cron } from 'croner';
import { ValidationError } from '../lib/errors.js';
import type { Credential } from '../registry/credential.types.js';

type ScheduleFields = Pick<
  Credential,
  'rotationEnabled' | 'rotationStrategy' | 'rotationIntervalHours' | 'rotationCron' | 'rotationTimezone' | 'expiresAt' | 'alertThresholdHours' | 'lastRotatedAt' | 'createdAt' | 'status'
>;

/**
 * Rejects an `on_expiry` schedule whose values live no longer than `alert_threshold_hours`. Each
 * rotation would be due again at once (the new expiry minus the threshold lies in the past), so every
 * scheduled run would rotate it. A value lives `value_policy.validity_hours`, or as long as the current
 * one: from the last rotation (or creation) to `expires_at`.
 */
export function checkExpiryLifetime(credential: ScheduleFields & Pick<Credential, 'valuePolicy'>): void {
  if (!credential.rotationEnabled || credential.rotationStrategy !== 'on_expiry' || credential.expiresAt === null) return;
  const validity = credential.valuePolicy?.validity_hours;
  const lifetimeHours = validity ?? (new Date(credential.expiresAt).getTime() - new Date(credential.lastRotatedAt ?? credential.createdAt).getTime()) / 3_600_000;
  if (lifetimeHours > credential.alertThresholdHours) return;
  const lifetime = validity !== undefined ? `value_policy.validity_hours is ${validity}` : `the value lives ${Math.max(0, Math.floor(lifetimeHours))} hours from its last rotation to expires_at`;
  throw new ValidationError(
    'alert_threshold_hours',
    `must be shorter than a value's lifetime for on_expiry rotation (${lifetime}), or every scheduled run would rotate it again. Lower alert_threshold_hours, or set value_policy.validity_hours.`,
  );
}

/**
 * When the next automatic rotation is due, or null for none:
 * - `scheduled` with a cron expression: the next match after the last rotation (or creation), or after
 *   `scheduleChangedAt` when the schedule changed later, read in the credential's IANA time zone. Croner treats daylight-saving changes as cron does: a time that
 *   does not exist runs once in the hour after, a time that occurs twice runs once.
 * - `scheduled` without one: `rotation_interval_hours` after the last rotation (or creation), counted
 *   in UTC hours, so a daylight-saving change never shortens or stretches an interval.
 * - `on_expiry`: `alert_threshold_hours` before `expires_at`.
 * - `manual`, disabled, or retired: never.
 */
export function nextRotationAt(credential: ScheduleFields, scheduleChangedAt?: Date): string | null {
  if (!credential.rotationEnabled || credential.status === 'retired') return null;
  const from = new Date(credential.lastRotatedAt ?? credential.createdAt);
  if (credential.rotationStrategy === 'scheduled') {
    if (credential.rotationCron) {
      // A match between the last rotation and a change of the schedule is not due: the schedule did not exist then.
      const since = scheduleChangedAt !== undefined && scheduleChangedAt > from ? scheduleChangedAt : from;
      const next = cronFor(credential.rotationCron, credential.rotationTimezone).nextRun(since);
      return next ? next.toISOString() : null;
    }
    return new Date(from.getTime() + credential.rotationIntervalHours * 3_600_000).toISOString();
  }
  if (credential.rotationStrategy === 'on_expiry' && credential.expiresAt !== null) {
    return new Date(new Date(credential.expiresAt).getTime() - credential.alertThresholdHours * 3_600_000).toISOString();
  }
  return null;
}

/**
 * Returns the next due time of an interval schedule after a scheduled rotation that was due at `due`: the
 * first whole number of intervals after `due` that lies after `now`. Counting from the commit would drift,
 * because a rotation commits a little after the scheduler run that found it due. The next interval would
 * then end just after a later run and wait for the run after that (25 hours for 24).
 */
export function nextIntervalAfterDue(due: Date, intervalHours: number, now: Date): string {
  const intervalMs = intervalHours * 3_600_000;
  const intervals = Math.floor((now.getTime() - due.getTime()) / intervalMs) + 1;
  return new Date(due.getTime() + intervals * intervalMs).toISOString();
}

/**
 * Tells whether a change moves the due time: it does when `rotation_enabled`, the strategy or a field the
 * strategy reads changed. Recomputing on any other change would count a cron schedule from the change and
 * drop a rotation that is due now.
 */
export function scheduleChanged(before: ScheduleFields, after: ScheduleFields): boolean {
  if (before.rotationEnabled !== after.rotationEnabled || before.rotationStrategy !== after.rotationStrategy) return true;
  if (after.rotationStrategy === 'scheduled') {
    if (before.rotationCron !== after.rotationCron || before.rotationTimezone !== after.rotationTimezone) return true;
    return after.rotationCron === null && before.rotationIntervalHours !== after.rotationIntervalHours;
  }
  if (after.rotationStrategy === 'on_expiry') return before.expiresAt !== after.expiresAt || before.alertThresholdHours !== after.alertThresholdHours;
  return false;
}

/**
 * Tells whether an automatic rotation of the credential is due at `now`, by the same rule as the
 * scheduled run's query: enabled, not retired, `scheduled` or `on_expiry`, and `next_rotation_at` reached.
 */
export function isRotationDue(credential: Pick<Credential, 'rotationEnabled' | 'status' | 'rotationStrategy' | 'nextRotationAt'>, now: Date): boolean {
  if (!credential.rotationEnabled || credential.status === 'retired') return false;
  if (credential.rotationStrategy !== 'scheduled' && credential.rotationStrategy !== 'on_expiry') return false;
  return credential.nextRotationAt !== null && new Date(credential.nextRotationAt) <= now;
}

function cronFor(expression: string, timezone: string | null): Cron {
  return new Cron(expression, { timezone: timezone ?? 'UTC', paused: true, legacyMode: true });
}

/** Checks a cron expression and time zone; the error names the field. */
export function checkCronSchedule(expression: string | null | undefined, timezone: string | null | undefined): void {
  if (timezone !== null && timezone !== undefined && !isTimeZone(timezone)) {
    throw new ValidationError('rotation_timezone', `"${timezone}" is not an IANA time zone (e.g. Europe/Berlin)`);
  }
  if (expression === null || expression === undefined) return;
  if (expression.trim().split(/\s+/).length !== 5) {
    throw new ValidationError('rotation_cron', `"${expression}" must have five fields: minute hour day-of-month month day-of-week`);
  }
  // croner 9 replaces ? with the field's value at the moment it parses the expression, which happens on
  // every computation of the next rotation, so "0 3 ? * 1" would also match on that day of the month.
  if (expression.includes('?')) {
    throw new ValidationError('rotation_cron', `"${expression}" uses "?", which AEGIS does not support. Write * for "any day" instead.`);
  }
  try {
    const next = cronFor(expression, timezone ?? null).nextRun(new Date('2000-01-01T00:00:00Z'));
    if (!next) throw new Error('never matches');
  } catch (error) {
    throw new ValidationError('rotation_cron', `"${expression}" is not a valid cron expression: ${cronErrorMessage(error)}`);
  }
}

/** Rewrites croner's range error, which counts day of month and month from 0, so day 32 reads "day: 31". */
function cronErrorMessage(error: unknown): string {
  const message = (error as Error).message;
  return message.replace(/Invalid value for (day|month): (-?\d+)/, (_match, field: string, value: string) => {
    return `Invalid value for ${field === 'day' ? 'day of month' : 'month'}: ${Number(value) + 1}`;
  });
}

/**
 * Returns a time zone name in its canonical IANA form (`europe/berlin` and `Europe/Berlin` are the same
 * zone), so a stored zone compares and displays one way. A name that is not a zone is returned as given,
 * for checkCronSchedule to reject.
 */
export function canonicalTimeZone<T extends string | null | undefined>(name: T): T {
  if (name === null || name === undefined) return name;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone as T;
  } catch {
    return name;
  }
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
