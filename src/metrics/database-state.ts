import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { toNumber } from '../db/values.js';
import { STATUSES, type CredentialStatus } from '../registry/credential.types.js';
import { effectiveStatusSql } from '../registry/status.js';

/** Stored state that a scrape reports, read from the database at scrape time. */
export interface DatabaseState {
  /** Credentials by the status the API reports as of the scrape; every status is present, zero included. */
  credentialsByStatus: Record<CredentialStatus, number>;
  /** Alerts still waiting for each configured sink, by sink name; every configured sink is present. */
  alertQueueDepth: Record<string, number>;
  /** The sequence number of the newest audit entry, which is the number of entries ever written. */
  auditEntries: number;
}

/**
 * Reads what a scrape reports with four aggregate queries, whatever the number of credentials or alerts.
 * It reads no credential name and no value.
 */
export async function readDatabaseState(db: Db, sinks: ReadonlyArray<string>, now: Date): Promise<DatabaseState> {
  const [credentialsByStatus, alertQueueDepth, auditEntries] = await Promise.all([
    countCredentialsByStatus(db, now),
    countWaitingAlerts(db, sinks),
    readAuditHeadSeq(db),
  ]);
  return { credentialsByStatus, alertQueueDepth, auditEntries };
}

async function countCredentialsByStatus(db: Db, now: Date): Promise<Record<CredentialStatus, number>> {
  const status = effectiveStatusSql(db.dialect, now);
  const rows = await db.kysely
    .selectFrom('aegis_credentials')
    .select([status.as('status'), sql<string | number>`count(*)`.as('count')])
    .groupBy(sql`1`)
    .execute();
  const counts = Object.fromEntries(STATUSES.map((name) => [name, 0])) as Record<CredentialStatus, number>;
  for (const row of rows) counts[row.status] = toNumber(row.count);
  return counts;
}

/**
 * Counts, for each sink, the pending alerts that sink has not finished (delivered or given up). An alert
 * stays `pending` in the outbox until every configured sink has finished it. A pending alert may have no
 * delivery row yet for a sink, because the next delivery run creates them. So the depth of a sink is the
 * number of pending alerts minus those with a finished row for that sink.
 */
async function countWaitingAlerts(db: Db, sinks: ReadonlyArray<string>): Promise<Record<string, number>> {
  if (sinks.length === 0) return {};
  const pending = await db.kysely
    .selectFrom('aegis_alert_outbox')
    .select(sql<string | number>`count(*)`.as('count'))
    .where('state', '=', 'pending')
    .executeTakeFirstOrThrow();
  const finished = await db.kysely
    .selectFrom('aegis_alert_deliveries as d')
    .innerJoin('aegis_alert_outbox as o', 'o.id', 'd.alert_id')
    .select(['d.sink', sql<string | number>`count(*)`.as('count')])
    .where('o.state', '=', 'pending')
    .where('d.state', '!=', 'pending')
    .where('d.sink', 'in', sinks)
    .groupBy('d.sink')
    .execute();
  const finishedBySink = new Map(finished.map((row) => [row.sink, toNumber(row.count)]));
  const total = toNumber(pending.count);
  return Object.fromEntries(sinks.map((sink) => [sink, total - (finishedBySink.get(sink) ?? 0)]));
}

async function readAuditHeadSeq(db: Db): Promise<number> {
  const row = await db.kysely.selectFrom('aegis_audit_head').select('seq').where('id', '=', 1).executeTakeFirst();
  return row ? toNumber(row.seq) : 0;
}
