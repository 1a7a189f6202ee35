import type { AuditLog } from '../audit/audit.service.js';
import type { Config } from '../config/config.js';
import type { Keyring } from '../crypto/keyring.js';
import type { HealthCheckMetrics } from '../metrics/vault-metrics.js';
import type { Db } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import type { AdapterRegistry } from '../providers/adapter.js';
import type { Logger } from 'pino';

export type HealthStatus = 'healthy' | 'unhealthy' | 'unknown';

export interface HealthMonitorDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  keyring: Keyring;
  adapters: AdapterRegistry;
  audit: AuditLog;
  config: Pick<Config, 'alertLeadHours' | 'healthConcurrency' | 'healthCheckRetentionDays' | 'providerTimeoutMs'>;
  /** Counts each stored check by result; absent where nothing is scraped. */
  metrics?: HealthCheckMetrics;
}

/** The outcome of one health check, as stored in `aegis_health_checks`. It never contains a value. */
export interface HealthCheckResult {
  checkId: string;
  credentialId: string;
  name: string;
  status: HealthStatus;
  /** Wall time of the provider test in milliseconds; null when no test ran. */
  responseTimeMs: number | null;
  details: Record<string, unknown>;
  /** The reason the check failed or could not run; null when healthy. */
  error: string | null;
  checkedAt: string;
}

export interface CheckAllResult {
  checked: number;
  healthy: number;
  unhealthy: number;
  details: Array<{ name: string; status: HealthStatus; response_time_ms: number | null; error: string | null }>;
}

export interface ExpiryRun {
  /** Non-retired credentials inside their expiry window (status expiring as of the run). */
  expiring: number;
  /** Non-retired credentials past their expiry date. */
  expired: number;
  /** Alerts written to the outbox by this run. */
  alerts: number;
}
