import { sql } from 'kysely';
import { enqueueAlert } from '../alerts/outbox.repository.js';
import type { Db } from '../db/database.js';
import { toIso, toNumber } from '../db/values.js';
import type { Clock } from '../lib/clock.js';
import type { AnomalySettings } from './audit-settings.js';
import { detectAnomalies, type Anomaly, type AuditPeriod } from './anomalies.js';

export interface ReportSettings {
  anomalies: AnomalySettings;
  clock: Clock;
  /** Whether each anomaly raises an `audit_anomaly` alert (once per anomaly); true unless set to false. */
  raiseAlerts?: boolean;
}

export interface AnomalyView {
  type: string;
  reason: string;
  actor: string | null;
  credential_name: string | null;
  ip_address: string | null;
  first_at: string;
  last_at: string;
  entry_count: number;
  entry_seqs: number[];
  entry_ids: string[];
}

/** The report of GET /audit/report, in the API's field names. */
export interface AuditReport {
  period: { start: string; end: string };
  summary: { total_accesses: number; rotations: number; failures: number; unique_actors: number };
  by_credential: Array<{ credential_name: string; accesses: number; failures: number; last_access: string }>;
  by_action: Array<{ action: string; count: number; failures: number }>;
  by_actor: Array<{ actor: string; count: number; failures: number }>;
  anomalies: AnomalyView[];
}

/**
 * Builds the audit report of a period with aggregate queries, so no entry is loaded into memory:
 * entries at or after `period.start` and before `period.end`, both UTC instants.
 *
 * - total_accesses counts every entry, failed and denied ones included.
 * - failures counts entries whose success is false, and rotations counts successful `rotated` entries.
 * - unique_actors counts distinct actors.
 * - by_credential leaves out entries about no single credential (name `*`).
 * - Each anomaly raises one `audit_anomaly` alert, keyed by its rule and its first entry's id, so a
 *   second report over the same entries raises nothing new.
 */
export async function buildAuditReport(db: Db, period: AuditPeriod, settings: ReportSettings): Promise<AuditReport> {
  const inPeriod = sql`"timestamp" >= ${period.start} and "timestamp" < ${period.end}`;
  const failed = sql`sum(case when success = ${false} then 1 else 0 end)`;

  const summaryRows = await sql<Record<string, unknown>>`
    select count(*) as total, ${failed} as failures,
      sum(case when action = 'rotated' and success = ${true} then 1 else 0 end) as rotations,
      count(distinct actor) as actors
    from aegis_audit_log where ${inPeriod}`.execute(db.kysely);
  const summary = summaryRows.rows[0]!;

  const byCredential = await sql<Record<string, unknown>>`
    select credential_name, count(*) as n, ${failed} as failures, max("timestamp") as last_access
    from aegis_audit_log where ${inPeriod} and credential_name <> '*'
    group by credential_name`.execute(db.kysely);
  const byAction = await sql<Record<string, unknown>>`
    select action, count(*) as n, ${failed} as failures
    from aegis_audit_log where ${inPeriod}
    group by action`.execute(db.kysely);
  const byActor = await sql<Record<string, unknown>>`
    select actor, count(*) as n, ${failed} as failures
    from aegis_audit_log where ${inPeriod}
    group by actor`.execute(db.kysely);

  const anomalies = await detectAnomalies(db, period, settings.anomalies);
  if (settings.raiseAlerts !== false) await raiseAnomalyAlerts(db, anomalies, settings.clock.now());

  return {
    period: { start: period.start, end: period.end },
    summary: {
      total_accesses: count(summary.total),
      rotations: count(summary.rotations),
      failures: count(summary.failures),
      unique_actors: count(summary.actors),
    },
    by_credential: byCredential.rows
      .map((row) => ({
        credential_name: String(row.credential_name),
        accesses: count(row.n),
        failures: count(row.failures),
        last_access: toIso(row.last_access as string),
      }))
      .sort((a, b) => b.accesses - a.accesses || compareText(a.credential_name, b.credential_name)),
    by_action: byAction.rows
      .map((row) => ({ action: String(row.action), count: count(row.n), failures: count(row.failures) }))
      .sort((a, b) => b.count - a.count || compareText(a.action, b.action)),
    by_actor: byActor.rows
      .map((row) => ({ actor: String(row.actor), count: count(row.n), failures: count(row.failures) }))
      .sort((a, b) => b.count - a.count || compareText(a.actor, b.actor)),
    anomalies: anomalies.map(anomalyView),
  };
}

/**
 * Orders names by UTF-16 code units, so both databases give the same order whatever their collation.
 * The lists are sorted here rather than in SQL for that reason, and each has one row per distinct name.
 */
function compareText(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

/** Aggregates come back as numbers from SQLite and as strings (bigint, numeric) from PostgreSQL; a sum over no rows is null. */
function count(value: unknown): number {
  return value === null || value === undefined ? 0 : toNumber(value as string | number);
}

export function anomalyView(anomaly: Anomaly): AnomalyView {
  return {
    type: anomaly.type,
    reason: anomaly.reason,
    actor: anomaly.actor,
    credential_name: anomaly.credentialName,
    ip_address: anomaly.ipAddress,
    first_at: anomaly.firstAt,
    last_at: anomaly.lastAt,
    entry_count: anomaly.entryCount,
    entry_seqs: anomaly.entrySeqs,
    entry_ids: anomaly.entryIds,
  };
}

/** Builds the alert condition key of an anomaly from its rule and the id of its first entry. */
export function anomalyConditionKey(anomaly: Anomaly): string {
  return `audit_anomaly:${anomaly.type}:${anomaly.entryIds[0] ?? anomaly.firstAt}`;
}

async function raiseAnomalyAlerts(db: Db, anomalies: Anomaly[], now: Date): Promise<void> {
  for (const anomaly of anomalies) {
    await enqueueAlert(
      db.kysely,
      {
        type: 'audit_anomaly',
        conditionKey: anomalyConditionKey(anomaly),
        credentialId: null,
        credentialName: anomaly.credentialName ?? '*',
        message: `🛡️ Audit anomaly (${anomaly.type}): ${anomaly.reason}`,
        details: { anomaly_type: anomaly.type, entry_count: anomaly.entryCount, entry_seqs: anomaly.entrySeqs, actor: anomaly.actor, ip_address: anomaly.ipAddress },
      },
      now,
    );
  }
}
