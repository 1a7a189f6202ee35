import { sql } from 'kysely';
import { alertMessages } from '../alerts/alert-types.js';
import { enqueueAlert, type AlertInput } from '../alerts/outbox.repository.js';
import { toIso } from '../db/values.js';
import type { CredentialStatus } from '../registry/credential.types.js';
import { lockCredentials } from '../registry/credentials.repository.js';
import { effectiveStatus, EXPIRY_STATUSES, expiryStatusSql, expiryWindowEndSql } from '../registry/status.js';
import type { ExpiryRun, HealthMonitorDeps } from './health.types.js';

const pageSize = 500;

interface ExpiryCandidate {
  id: string;
  name: string;
  status: CredentialStatus;
  expiresAt: string;
  alertThresholdHours: number;
}

/**
 * Keeps stored statuses current and raises the expiry alerts that are due, as of the clock's now:
 * 1. Credentials stored as active, expiring or expired move to the status their expiry date gives, in one
 *    statement; each move to expired is audited (actor `system`). Failed, rotating and retired credentials
 *    keep their stored status, because time does not end those conditions; reads still report expired first.
 * 2. Credentials inside an expiry window are read a page at a time, and each due alert goes to the outbox
 *    with `alert_sent` set in the same transaction. Condition keys carry the expiry date (and the lead
 *    time), so each alerts once however often this runs, and a new `expires_at` alerts again.
 */
export async function evaluateExpiry(deps: HealthMonitorDeps): Promise<ExpiryRun> {
  const { db, clock, audit, log } = deps;
  const now = clock.now();

  const moved = await db.kysely.transaction().execute(async (trx) => {
    const target = expiryStatusSql(db.dialect, now);
    const moving = await trx.selectFrom('aegis_credentials').select('id').where('status', 'in', [...EXPIRY_STATUSES]).where(sql<boolean>`status <> ${target}`).execute();
    await lockCredentials(trx, db.dialect, moving.map((row) => row.id));
    const rows = await trx
      .updateTable('aegis_credentials')
      .set({ status: target })
      .where('status', 'in', [...EXPIRY_STATUSES])
      .where(sql<boolean>`status <> ${target}`)
      .returning(['id', 'name', 'status', 'expires_at'])
      .execute();
    const expired = rows.filter((row) => row.status === 'expired');
    if (expired.length > 0) {
      await audit.recordIn(
        trx,
        ...expired.map((row) => ({
          credentialId: row.id,
          credentialName: row.name,
          action: 'expired',
          actor: 'system',
          success: true,
          details: { expires_at: toIso(row.expires_at) },
        })),
      );
    }
    return rows;
  });

  const leadHours = deps.config.alertLeadHours;
  const horizon = new Date(now.getTime() + Math.max(0, ...leadHours) * 3_600_000).toISOString();
  const run: ExpiryRun = { expiring: 0, expired: 0, alerts: 0 };
  let after: string | null = null;
  for (;;) {
    let query = db.kysely
      .selectFrom('aegis_credentials')
      .select(['id', 'name', 'status', 'expires_at', 'alert_threshold_hours'])
      .where('status', '!=', 'retired')
      .where('expires_at', 'is not', null)
      .where((eb) => eb.or([eb('expires_at', '<=', horizon), eb('expires_at', '<=', expiryWindowEndSql(db.dialect, now))]));
    if (after !== null) query = query.where('id', '>', after);
    const rows = await query.orderBy('id').limit(pageSize).execute();
    if (rows.length === 0) break;
    after = rows[rows.length - 1]!.id;

    const due: AlertInput[] = [];
    for (const row of rows) {
      const candidate: ExpiryCandidate = {
        id: row.id,
        name: row.name,
        status: row.status as CredentialStatus,
        expiresAt: toIso(row.expires_at!),
        alertThresholdHours: row.alert_threshold_hours,
      };
      const status = effectiveStatus(candidate, now);
      if (status === 'expiring') run.expiring += 1;
      if (status === 'expired') run.expired += 1;
      const alert = dueExpiryAlert(candidate, now, leadHours);
      if (alert) due.push(alert);
    }
    run.alerts += await raiseNew(deps, due, now);
    if (rows.length < pageSize) break;
  }

  if (moved.length > 0 || run.alerts > 0) {
    log.info({ statusChanges: moved.length, alerts: run.alerts, expiring: run.expiring, expired: run.expired }, 'expiry evaluated');
  }
  return run;
}

/**
 * The expiry alert a credential is due as of `now`, if any. Past `expires_at` it is `credential_expired`.
 * Before it, the lead times are the configured ones plus the credential's own `alert_threshold_hours`;
 * the alert belongs to the shortest lead whose window has begun. A run that comes late (after a stop)
 * so raises only the most recent lead's alert, never the longer leads it missed.
 */
export function dueExpiryAlert(credential: ExpiryCandidate, now: Date, configuredLeadHours: ReadonlyArray<number>): AlertInput | null {
  const remainingMs = new Date(credential.expiresAt).getTime() - now.getTime();
  const base = { credentialId: credential.id, credentialName: credential.name };
  if (remainingMs < 0) {
    return {
      ...base,
      type: 'credential_expired',
      conditionKey: `credential_expired:${credential.id}:${credential.expiresAt}`,
      message: alertMessages.credentialExpired(credential.name),
      details: { expires_at: credential.expiresAt },
    };
  }
  const leads = [...new Set([...configuredLeadHours, credential.alertThresholdHours])].filter((hours) => hours > 0);
  const begun = leads.filter((hours) => remainingMs <= hours * 3_600_000);
  if (begun.length === 0) return null;
  const lead = Math.min(...begun);
  const hoursLeft = Math.floor(remainingMs / 3_600_000);
  return {
    ...base,
    type: 'credential_expiring',
    conditionKey: `credential_expiring:${credential.id}:${credential.expiresAt}:${lead}h`,
    message: alertMessages.credentialExpiring(credential.name, hoursLeft),
    details: { expires_at: credential.expiresAt, lead_hours: lead, hours_left: hoursLeft },
  };
}

/** Writes the alerts whose condition has not alerted yet, with `alert_sent` on their credentials; returns how many. */
async function raiseNew(deps: HealthMonitorDeps, due: AlertInput[], now: Date): Promise<number> {
  if (due.length === 0) return 0;
  const { db } = deps;
  const existing = await db.kysely
    .selectFrom('aegis_alert_outbox')
    .select('condition_key')
    .where(
      'condition_key',
      'in',
      due.map((alert) => alert.conditionKey),
    )
    .execute();
  const known = new Set(existing.map((row) => row.condition_key));
  const fresh = due.filter((alert) => !known.has(alert.conditionKey));
  if (fresh.length === 0) return 0;
  return db.kysely.transaction().execute(async (trx) => {
    const raised: string[] = [];
    for (const alert of fresh) {
      // Another process may have written the same condition since the read above; then this insert is dropped.
      if (await enqueueAlert(trx, alert, now)) raised.push(alert.credentialId!);
    }
    if (raised.length > 0) {
      await lockCredentials(trx, db.dialect, raised);
      await trx.updateTable('aegis_credentials').set({ alert_sent: true }).where('id', 'in', raised).execute();
    }
    return raised.length;
  });
}
