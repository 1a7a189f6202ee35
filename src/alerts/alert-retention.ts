import type { Logger } from 'pino';
import type { Db } from '../db/database.js';
import type { Clock } from '../lib/clock.js';

/** Alerts one statement looks at, so no statement holds the SQLite write lock for long. */
const alertsPerPage = 500;

/**
 * Alert types whose condition can last longer than the retention: a credential that stays expired or
 * expiring, scheduled rotations that keep failing from one version, an n8n without the list endpoint.
 * The condition key of the stored alert is what stops such a condition from alerting again on every
 * run, so the newest alert of each of these types for each credential name is kept at any age.
 */
const lastingConditionTypes = ['credential_expiring', 'credential_expired', 'rotation_failed', 'n8n_unsupported'];

export interface AlertRetentionSettings {
  /** Age in days after which a finished alert is removed. */
  retentionDays: number;
  /** Audit retention in days, the minimum age at which an `audit_anomaly` alert is removed. */
  auditRetentionDays: number;
}

/**
 * Removes the finished alerts (state `delivered` or `dead`) older than `retentionDays`, with their
 * delivery rows, which the foreign key removes on cascade. Returns the number of alerts removed.
 * - A pending alert is never removed, however old, so the outbox loses no alert that awaits delivery.
 * - The newest alert of each lasting condition type for each credential name stays (see above).
 * - An `audit_anomaly` alert stays as long as the audit entries it names may still be in the audit log,
 *   because an audit report over that period would otherwise raise it again.
 * NOTE: a removed alert of a lasting type can still come back. A scheduled rotation that keeps failing
 * raises one `rotation_failed` alert. If a manual rotation of the same credential fails after it, that
 * first alert is no longer the newest and is removed, so the next scheduled failure raises it again.
 */
export async function pruneAlerts(deps: { db: Db; clock: Clock; log: Logger }, settings: AlertRetentionSettings): Promise<number> {
  const now = deps.clock.now().getTime();
  const cutoff = new Date(now - settings.retentionDays * 86_400_000).toISOString();
  const anomalyCutoff = new Date(now - Math.max(settings.retentionDays, settings.auditRetentionDays) * 86_400_000).toISOString();
  const db = deps.db.kysely;

  // Walks the alerts older than the cutoff oldest first, a page per statement, so each alert is looked
  // at once per run and the alerts that stay do not slow down the later pages.
  let removed = 0;
  let after: { createdAt: unknown; id: string } | undefined;
  for (;;) {
    let pageQuery = db
      .selectFrom('aegis_alert_outbox')
      .select(['id', 'created_at'])
      .where('created_at', '<', cutoff)
      .orderBy('created_at')
      .orderBy('id')
      .limit(alertsPerPage);
    if (after !== undefined) {
      const last = after;
      pageQuery = pageQuery.where((eb) => eb(eb.refTuple('created_at', 'id'), '>', eb.tuple(last.createdAt as string, last.id)));
    }
    const page = await pageQuery.execute();
    if (page.length === 0) break;
    after = { createdAt: page[page.length - 1]!.created_at, id: page[page.length - 1]!.id };

    const result = await db
      .deleteFrom('aegis_alert_outbox as o')
      .where(
        'o.id',
        'in',
        page.map((row) => row.id),
      )
      .where('o.state', 'in', ['delivered', 'dead'])
      .where((eb) => eb.or([eb('o.alert_type', '!=', 'audit_anomaly'), eb('o.created_at', '<', anomalyCutoff)]))
      .where((eb) =>
        eb.or([
          eb('o.alert_type', 'not in', lastingConditionTypes),
          eb.exists(
            eb
              .selectFrom('aegis_alert_outbox as newer')
              .select('newer.id')
              .whereRef('newer.credential_name', '=', 'o.credential_name')
              .whereRef('newer.alert_type', '=', 'o.alert_type')
              // Newer by (created_at, id). The separate `>=` lets the index seek to the alert's own time.
              .whereRef('newer.created_at', '>=', 'o.created_at')
              .where((inner) => inner.or([inner('newer.created_at', '>', inner.ref('o.created_at')), inner('newer.id', '>', inner.ref('o.id'))])),
          ),
        ]),
      )
      .executeTakeFirst();
    removed += Number(result.numDeletedRows);
    if (page.length < alertsPerPage) break;
  }

  if (removed > 0) deps.log.info({ removed, retentionDays: settings.retentionDays }, 'removed old alerts');
  return removed;
}
