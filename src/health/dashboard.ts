import { alertReachCondition } from '../alerts/alert-reach.js';
import { toIso } from '../db/values.js';
import type { Credential, CredentialStatus } from '../registry/credential.types.js';
import { credentialFromRow, listCredentials } from '../registry/credentials.repository.js';
import { effectiveStatus, expiryWindowEndSql, instantSql } from '../registry/status.js';
import { callerReaches, type Caller } from '../tokens/caller.js';
import { latestHealthStatuses } from './health-checks.repository.js';
import type { HealthMonitorDeps, HealthStatus } from './health.types.js';

/** The dashboard's traffic light: colour and label per status, as the product request sets them. */
export const STATUS_DISPLAY: Record<CredentialStatus, { colour: 'green' | 'yellow' | 'red' | 'blue' | 'gray'; label: string }> = {
  active: { colour: 'green', label: 'Healthy' },
  expiring: { colour: 'yellow', label: 'Expiring Soon' },
  expired: { colour: 'red', label: 'Action Required' },
  failed: { colour: 'red', label: 'Action Required' },
  rotating: { colour: 'blue', label: 'Rotation in Progress' },
  retired: { colour: 'gray', label: 'Retired' },
};

export interface DashboardPage {
  limit: number;
  offset: number;
  /** Lists only credentials with this status as of now; the summary still counts every status. */
  status?: CredentialStatus | undefined;
  alertLimit: number;
}

export interface DashboardEntry {
  name: string;
  status: CredentialStatus;
  health: HealthStatus;
  colour: string;
  label: string;
  /** Whole hours until `expires_at`, rounded down; negative once expired; null without an expiry date. */
  expires_in_hours: number | null;
  expires_at: string | null;
  last_used: string | null;
  last_rotated_at: string | null;
  next_rotation_at: string | null;
  last_health_check: string | null;
  provider: string;
  credential_type: string;
}

export interface DashboardAlert {
  credential: string;
  alert_type: string;
  message: string;
  created_at: string;
}

export interface Dashboard {
  summary: { total: number; healthy: number; expiring: number; expired: number; failed: number; rotating: number; retired: number };
  credentials: DashboardEntry[];
  /** Credentials matching the page's status filter, for paging. */
  total: number;
  alerts: DashboardAlert[];
}

/**
 * Builds the dashboard with two aggregate queries and two small ones: counts by status (one GROUP BY over
 * the credentials the caller reaches), one page of credentials in name order, the newest check of each
 * credential on the page, and the newest alerts.
 */
export async function healthDashboard(deps: HealthMonitorDeps, caller: Caller, page: DashboardPage): Promise<Dashboard> {
  const { db, clock } = deps;
  const now = clock.now();
  const listed = await listCredentials(db.kysely, db.dialect, { status: page.status, reach: caller }, { limit: page.limit, offset: page.offset }, now);
  const counts = listed.byStatus;
  const health = await latestHealthStatuses(db.kysely, listed.credentials.map((credential) => credential.id));
  return {
    summary: {
      total: Object.values(counts).reduce((sum, count) => sum + count, 0),
      healthy: counts.active,
      expiring: counts.expiring,
      expired: counts.expired,
      failed: counts.failed,
      rotating: counts.rotating,
      retired: counts.retired,
    },
    credentials: listed.credentials.map((credential) => dashboardEntry(credential, health.get(credential.id) ?? 'unknown', now)),
    total: listed.total,
    alerts: await recentAlerts(deps, caller, page.alertLimit),
  };
}

function dashboardEntry(credential: Credential, health: HealthStatus, now: Date): DashboardEntry {
  const status = effectiveStatus(credential, now);
  return {
    name: credential.name,
    status,
    health,
    ...STATUS_DISPLAY[status],
    expires_in_hours: hoursUntil(credential.expiresAt, now),
    expires_at: credential.expiresAt,
    last_used: credential.lastUsedAt,
    last_rotated_at: credential.lastRotatedAt,
    next_rotation_at: credential.nextRotationAt,
    last_health_check: credential.lastHealthCheck,
    provider: credential.provider,
    credential_type: credential.credentialType,
  };
}

function hoursUntil(instant: string | null, now: Date): number | null {
  return instant === null ? null : Math.floor((new Date(instant).getTime() - now.getTime()) / 3_600_000);
}

/** The newest alerts, newest first. A caller with token limits gets only alerts about credentials it reaches. */
async function recentAlerts(deps: HealthMonitorDeps, caller: Caller, limit: number): Promise<DashboardAlert[]> {
  const reach = alertReachCondition(deps.db.dialect, caller, 'o');
  const rows = await deps.db.kysely
    .selectFrom('aegis_alert_outbox as o')
    .select(['o.credential_name', 'o.alert_type', 'o.message', 'o.created_at'])
    .$if(reach !== undefined, (query) => query.where(reach!))
    .orderBy('o.created_at', 'desc')
    .orderBy('o.id', 'desc')
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    credential: row.credential_name,
    alert_type: row.alert_type,
    message: row.message,
    created_at: toIso(row.created_at),
  }));
}

export interface ExpiringEntry {
  name: string;
  status: CredentialStatus;
  expires_at: string;
  expires_in_hours: number;
  alert_threshold_hours: number;
  provider: string;
  credential_type: string;
  rotation_enabled: boolean;
  rotation_strategy: string;
  next_rotation_at: string | null;
}

export interface ExpiringList {
  credentials: ExpiringEntry[];
  count: number;
}

const limitedScanPage = 500;

/**
 * Non-retired credentials that have not expired yet and expire within `thresholdHours`, or within their
 * own `alert_threshold_hours` when no threshold is given, soonest first. Failed and rotating credentials
 * are listed too; their `status` shows it. `count` is the number of matches, of which one page is returned.
 */
export async function expiringCredentials(
  deps: HealthMonitorDeps,
  caller: Caller,
  query: { thresholdHours: number | undefined; limit: number; offset: number },
): Promise<ExpiringList> {
  const { db, clock } = deps;
  const now = clock.now();
  let base = db.kysely
    .selectFrom('aegis_credentials')
    .where('status', '!=', 'retired')
    .where('expires_at', 'is not', null)
    .where('expires_at', '>=', instantSql(db.dialect, now));
  base =
    query.thresholdHours === undefined
      ? base.where('expires_at', '<=', expiryWindowEndSql(db.dialect, now))
      : base.where('expires_at', '<=', new Date(now.getTime() + query.thresholdHours * 3_600_000).toISOString());
  const ordered = base.selectAll().orderBy('expires_at').orderBy('name');

  const unlimited = caller.namePatterns.length === 0 && caller.tags.length === 0;
  let matches: Credential[];
  let count: number;
  if (unlimited) {
    const total = await base.select((eb) => eb.fn.countAll<string | number>().as('count')).executeTakeFirstOrThrow();
    count = Number(total.count);
    matches = (await ordered.limit(query.limit).offset(query.offset).execute()).map(credentialFromRow);
  } else {
    // Token limits are matched in code (callerReaches), so every candidate is read, a page at a time.
    const reached: Credential[] = [];
    for (let offset = 0; ; offset += limitedScanPage) {
      const rows = await ordered.limit(limitedScanPage).offset(offset).execute();
      for (const row of rows) {
        const credential = credentialFromRow(row);
        if (callerReaches(caller, credential)) reached.push(credential);
      }
      if (rows.length < limitedScanPage) break;
    }
    count = reached.length;
    matches = reached.slice(query.offset, query.offset + query.limit);
  }
  return {
    count,
    credentials: matches.map((credential) => ({
      name: credential.name,
      status: effectiveStatus(credential, now),
      expires_at: credential.expiresAt!,
      expires_in_hours: hoursUntil(credential.expiresAt, now)!,
      alert_threshold_hours: credential.alertThresholdHours,
      provider: credential.provider,
      credential_type: credential.credentialType,
      rotation_enabled: credential.rotationEnabled,
      rotation_strategy: credential.rotationStrategy,
      next_rotation_at: credential.nextRotationAt,
    })),
  };
}
