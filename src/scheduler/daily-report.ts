import type { Db } from '../db/database.js';
import { enqueueAlert } from '../alerts/outbox.repository.js';
import type { AnomalySettings } from '../audit/audit-settings.js';
import { buildAuditReport } from '../audit/report.js';
import { toBool, toIso } from '../db/values.js';
import type { Clock } from '../lib/clock.js';
import { STATUSES, type CredentialStatus } from '../registry/credential.types.js';
import { effectiveStatus } from '../registry/status.js';

/** Names listed per group in a report; the counts always cover every credential. */
const MAX_NAMES = 50;
const EXPIRING_WINDOW_MS = 7 * 24 * 3_600_000;
const RECENT_WINDOW_MS = 24 * 3_600_000;

/** The daily summary. It contains names, statuses, instants and counts, never a value. */
export interface DailyReport {
  /** The day in the report's time zone, YYYY-MM-DD. */
  date: string;
  timezone: string;
  generatedAt: string;
  total: number;
  byStatus: Record<CredentialStatus, number>;
  expired: string[];
  failed: string[];
  /** Credentials that expire within 7 days and have not expired yet, soonest first. */
  expiringWithin7Days: Array<{ name: string; expiresAt: string }>;
  last24Hours: { rotations: number; failedRotations: number; failedCredentials: string[] };
  /** The audit report of the same 24 hours, when anomaly settings were given: counts and anomaly reasons. */
  audit: { accesses: number; failures: number; uniqueActors: number; anomalies: string[] } | null;
}

/** Collects the report as of `now`: statuses as of `now`, rotations of the 24 hours before it. */
export async function buildDailyReport(db: Db, now: Date, timezone: string, anomalies?: AnomalySettings): Promise<DailyReport> {
  const rows = await db.kysely.selectFrom('aegis_credentials').select(['name', 'status', 'expires_at', 'alert_threshold_hours']).orderBy('name').execute();
  const byStatus = Object.fromEntries(STATUSES.map((status) => [status, 0])) as Record<CredentialStatus, number>;
  const expired: string[] = [];
  const failed: string[] = [];
  const expiring: Array<{ name: string; expiresAt: string }> = [];
  for (const row of rows) {
    const expiresAt = row.expires_at === null ? null : toIso(row.expires_at);
    const status = effectiveStatus({ status: row.status as CredentialStatus, expiresAt, alertThresholdHours: row.alert_threshold_hours }, now);
    byStatus[status] += 1;
    if (status === 'expired') expired.push(row.name);
    if (status === 'failed') failed.push(row.name);
    const expiresIn = expiresAt === null ? null : new Date(expiresAt).getTime() - now.getTime();
    if (status !== 'retired' && expiresIn !== null && expiresIn >= 0 && expiresIn <= EXPIRING_WINDOW_MS) {
      expiring.push({ name: row.name, expiresAt: expiresAt! });
    }
  }
  expiring.sort((a, b) => a.expiresAt.localeCompare(b.expiresAt));

  const since = new Date(now.getTime() - RECENT_WINDOW_MS).toISOString();
  const recent = await db.kysely
    .selectFrom('aegis_rotation_history as h')
    .innerJoin('aegis_credentials as c', 'c.id', 'h.credential_id')
    .select(['c.name', 'h.success'])
    .where('h.rotated_at', '>=', since)
    .where('h.rotated_at', '<=', now.toISOString())
    .execute();
  const failedRotations = recent.filter((row) => !toBool(row.success));

  let audit: DailyReport['audit'] = null;
  if (anomalies) {
    const clock = { now: () => now };
    const period = { start: since, end: now.toISOString() };
    const auditReport = await buildAuditReport(db, period, { anomalies, clock });
    audit = {
      accesses: auditReport.summary.total_accesses,
      failures: auditReport.summary.failures,
      uniqueActors: auditReport.summary.unique_actors,
      anomalies: auditReport.anomalies.slice(0, MAX_NAMES).map((anomaly) => anomaly.reason),
    };
  }

  return {
    date: localDate(now, timezone),
    timezone,
    generatedAt: now.toISOString(),
    total: rows.length,
    byStatus,
    expired: expired.slice(0, MAX_NAMES),
    failed: failed.slice(0, MAX_NAMES),
    expiringWithin7Days: expiring.slice(0, MAX_NAMES),
    last24Hours: {
      rotations: recent.length,
      failedRotations: failedRotations.length,
      failedCredentials: [...new Set(failedRotations.map((row) => row.name))].sort().slice(0, MAX_NAMES),
    },
    audit,
  };
}

/** Formats the report as the HERMES message: one line per part, names and counts only. */
export function formatDailyReport(report: DailyReport): string {
  const statusCounts = Object.entries(report.byStatus)
    .filter(([, count]) => count > 0)
    .map(([status, count]) => `${count} ${status}`)
    .join(', ');
  const names = (list: string[], total: number) => (list.length === 0 ? 'none' : `${list.join(', ')}${total > list.length ? ` and ${total - list.length} more` : ''}`);
  const lines = [
    `📊 AEGIS daily report for ${report.date} (${report.timezone})`,
    `Credentials: ${report.total}${statusCounts ? ` (${statusCounts})` : ''}`,
    `Expired: ${names(report.expired, report.byStatus.expired)}`,
    `Failed: ${names(report.failed, report.byStatus.failed)}`,
    `Expiring within 7 days: ${report.expiringWithin7Days.length === 0 ? 'none' : report.expiringWithin7Days.map((entry) => `${entry.name} (${entry.expiresAt})`).join(', ')}`,
    `Last 24 hours: ${report.last24Hours.rotations} rotations, ${report.last24Hours.failedRotations} failed${
      report.last24Hours.failedCredentials.length > 0 ? ` (${report.last24Hours.failedCredentials.join(', ')})` : ''
    }`,
  ];
  if (report.audit) {
    lines.push(`Audit, last 24 hours: ${report.audit.accesses} accesses by ${report.audit.uniqueActors} actors, ${report.audit.failures} failed or denied`);
    lines.push(`Anomalies: ${report.audit.anomalies.length === 0 ? 'none' : report.audit.anomalies.join('; ')}`);
  }
  return lines.join('\n');
}

/**
 * Builds today's report and writes it to the alert outbox as a `daily_report` alert of priority low,
 * which alert delivery sends to the sinks (HERMES among them). The condition key contains the day in the
 * report's time zone, so a second run on the same day, in this or another process, adds nothing.
 * Returns the report and whether it was written.
 */
export async function enqueueDailyReport(
  db: Db,
  clock: Clock,
  timezone: string,
  anomalies?: AnomalySettings,
): Promise<{ report: DailyReport; enqueued: boolean }> {
  const now = clock.now();
  const report = await buildDailyReport(db, now, timezone, anomalies);
  const enqueued = await enqueueAlert(
    db.kysely,
    {
      type: 'daily_report',
      conditionKey: `daily_report:${report.date}`,
      credentialId: null,
      credentialName: '*',
      message: formatDailyReport(report),
      details: reportDetails(report),
    },
    now,
  );
  return { report, enqueued };
}

function reportDetails(report: DailyReport): Record<string, unknown> {
  return {
    date: report.date,
    timezone: report.timezone,
    total: report.total,
    by_status: report.byStatus,
    expired: report.expired,
    failed: report.failed,
    expiring_within_7_days: report.expiringWithin7Days.map((entry) => ({ name: entry.name, expires_at: entry.expiresAt })),
    last_24_hours: {
      rotations: report.last24Hours.rotations,
      failed_rotations: report.last24Hours.failedRotations,
      failed_credentials: report.last24Hours.failedCredentials,
    },
    audit: report.audit && {
      accesses: report.audit.accesses,
      failures: report.audit.failures,
      unique_actors: report.audit.uniqueActors,
      anomalies: report.audit.anomalies,
    },
  };
}

/** Formats the calendar day of `instant` in `timezone` as YYYY-MM-DD. */
export function localDate(instant: Date, timezone: string): string {
  // The en-CA locale formats dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(instant);
}

