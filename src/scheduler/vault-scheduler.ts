import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Db } from '../db/database.js';
import { processOwner } from '../leases/leases.repository.js';
import type { Clock } from '../lib/clock.js';
import { localCaller } from '../tokens/caller.js';
import { pruneAudit } from '../audit/prune.js';
import type { Keyring } from '../crypto/keyring.js';
import { enqueueDailyReport } from './daily-report.js';
import { Scheduler, type SchedulerJobs } from './scheduler.js';

/** The actor of the audit entries that scheduled jobs write. */
export const SCHEDULER_ACTOR = 'scheduler';

/** The services whose methods the scheduler's jobs call; a missing service leaves its jobs out. */
export interface SchedulerServices {
  db: Db;
  clock: Clock;
  log: Logger;
  config: Config;
  keyring: Keyring;
  rotation: { runScheduled(caller: ReturnType<typeof localCaller>): Promise<unknown>; retention(): Promise<unknown> };
  health?: { checkAll(caller: ReturnType<typeof localCaller>): Promise<unknown>; evaluateExpiry(): Promise<unknown>; retention(): Promise<unknown> } | undefined;
  alerts?: { deliverDue(): Promise<unknown>; retention(): Promise<unknown> } | undefined;
}

/** Maps each scheduler job to the vault service that does the work, acting as the local caller `scheduler`. */
export function vaultJobs(services: SchedulerServices): SchedulerJobs {
  const caller = localCaller(SCHEDULER_ACTOR);
  const { health, alerts } = services;
  return {
    // A scheduled run starts with the recovery of interrupted n8n applies and rotations, so the leader
    // finishes what stopped processes left.
    rotations: () => services.rotation.runScheduled(caller),
    retention: async () => ({
      rotation: await services.rotation.retention(),
      audit: await pruneAudit(services.db, services.keyring, services.clock, { retentionDays: services.config.audit.retentionDays, actor: SCHEDULER_ACTOR }),
      ...(health ? { healthChecksRemoved: await health.retention() } : {}),
      ...(alerts ? { alertsRemoved: await alerts.retention() } : {}),
    }),
    dailyReport: () => enqueueDailyReport(services.db, services.clock, services.config.reportTimezone, services.config.audit.anomalies),
    ...(health ? { healthChecks: () => health.checkAll(caller), expiryChecks: () => health.evaluateExpiry() } : {}),
    ...(alerts ? { alertDelivery: () => alerts.deliverDue() } : {}),
  };
}

/** Builds the scheduler of an open vault from its settings. `aegis serve` starts it; other commands never do. */
export function createVaultScheduler(services: SchedulerServices): Scheduler {
  const { config } = services;
  return new Scheduler({
    db: services.db,
    clock: services.clock,
    log: services.log,
    jobs: vaultJobs(services),
    settings: {
      schedules: config.schedules,
      reportTimezone: config.reportTimezone,
      alertDeliverySeconds: config.alertDeliverySeconds,
      leaseTtlMs: config.schedulerLeaseSeconds * 1000,
      owner: processOwner(),
    },
  });
}
