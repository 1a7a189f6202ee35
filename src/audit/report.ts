import { enqueueAlert } from '../alerts/outbox.repository.js';
import type { Db } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import type { AnomalySettings } from './audit-settings.js';
import { detectAnomalies, readPeriodGroups, type Anomaly, type AuditPeriod } from './anomalies.js';

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
 * entries at or after `period.start` and before `period.end`, both UTC instants. The figures are sums
 * over the period's groups (one per actor, credential name, action and outcome).
 *
 * - total_accesses counts every entry, failed and denied ones included.
 * - failures counts entries whose success is false, and rotations counts successful `rotated` entries.
 * - unique_actors counts distinct actors.
 * - by_credential leaves out entries about no single credential (name `*`).
 * - Each anomaly raises one `audit_anomaly` alert, keyed by its rule and its first entry's id, so a
 *   second report over the same entries raises nothing new.
 */
export async function buildAuditReport(db: Db, period: AuditPeriod, settings: ReportSettings): Promise<AuditReport> {
  // One grouped scan of the period serves every figure below and several anomaly rules.
  const groups = await readPeriodGroups(db, period);
  const anomalies = await detectAnomalies(db, period, settings.anomalies, groups);
  if (settings.raiseAlerts !== false) await raiseAnomalyAlerts(db, anomalies, settings.clock.now());

  const byCredential = new Map<string, { accesses: number; failures: number; lastAccess: string }>();
  const byAction = new Map<string, { count: number; failures: number }>();
  const byActor = new Map<string, { count: number; failures: number }>();
  let rotations = 0;
  for (const group of groups) {
    const failures = group.success ? 0 : group.entryCount;
    if (group.action === 'rotated' && group.success) rotations += group.entryCount;

    if (group.credentialName !== '*') {
      const credential = byCredential.get(group.credentialName) ?? { accesses: 0, failures: 0, lastAccess: group.lastAt };
      credential.accesses += group.entryCount;
      credential.failures += failures;
      if (group.lastAt > credential.lastAccess) credential.lastAccess = group.lastAt;
      byCredential.set(group.credentialName, credential);
    }
    const action = byAction.get(group.action) ?? { count: 0, failures: 0 };
    action.count += group.entryCount;
    action.failures += failures;
    byAction.set(group.action, action);
    const actor = byActor.get(group.actor) ?? { count: 0, failures: 0 };
    actor.count += group.entryCount;
    actor.failures += failures;
    byActor.set(group.actor, actor);
  }
  const actorRows = [...byActor].map(([actor, figures]) => ({ actor, ...figures }));

  return {
    period: { start: period.start, end: period.end },
    summary: {
      total_accesses: actorRows.reduce((sum, row) => sum + row.count, 0),
      rotations,
      failures: actorRows.reduce((sum, row) => sum + row.failures, 0),
      unique_actors: actorRows.length,
    },
    by_credential: [...byCredential]
      .map(([name, figures]) => ({ credential_name: name, accesses: figures.accesses, failures: figures.failures, last_access: figures.lastAccess }))
      .sort((a, b) => b.accesses - a.accesses || compareText(a.credential_name, b.credential_name)),
    by_action: [...byAction]
      .map(([action, figures]) => ({ action, ...figures }))
      .sort((a, b) => b.count - a.count || compareText(a.action, b.action)),
    by_actor: actorRows.sort((a, b) => b.count - a.count || compareText(a.actor, b.actor)),
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
