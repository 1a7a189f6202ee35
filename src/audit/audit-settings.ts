import { StartupError } from '../lib/errors.js';

/** Audit logs are kept for one year at least; a shorter retention is rejected at start-up. */
export const MIN_AUDIT_RETENTION_DAYS = 365;

/** Thresholds of the anomaly rules in src/audit/anomalies.ts. */
export interface AnomalySettings {
  /** Days before a report's period from which each actor's usual hours and read rate are learned. */
  baselineDays: number;
  /** Entries an actor needs in the baseline before an access outside its usual hours is reported. */
  hoursMinBaselineEntries: number;
  /** Failed or denied calls from one actor or one address within `failureBurstMinutes` that make a burst. */
  failureBurstCount: number;
  failureBurstMinutes: number;
  /** How many times the actor's baseline reads per hour its reads per hour in the period must exceed. */
  readRateFactor: number;
  /** Reads in the period below which no read-rate anomaly is reported, whatever the baseline. */
  readRateMinReads: number;
}

export interface AuditSettings {
  /** Entries younger than this many days are never pruned. */
  retentionDays: number;
  anomalies: AnomalySettings;
}

type Env = Record<string, string | undefined>;

/** Reads the AEGIS_AUDIT_* and AEGIS_ANOMALY_* settings; an invalid one stops start-up with a message naming it. */
export function readAuditSettings(env: Env): AuditSettings {
  const retentionDays = readWholeNumber(env, 'AEGIS_AUDIT_RETENTION_DAYS', 365, 1, 36_500);
  if (retentionDays < MIN_AUDIT_RETENTION_DAYS) {
    throw new StartupError(
      `AEGIS_AUDIT_RETENTION_DAYS must be at least ${MIN_AUDIT_RETENTION_DAYS}, because audit logs are kept for one year at least; got ${retentionDays}.`,
    );
  }
  return {
    retentionDays,
    anomalies: {
      baselineDays: readWholeNumber(env, 'AEGIS_ANOMALY_BASELINE_DAYS', 30, 1, 365),
      hoursMinBaselineEntries: readWholeNumber(env, 'AEGIS_ANOMALY_HOURS_MIN_ENTRIES', 20, 1, 1_000_000),
      failureBurstCount: readWholeNumber(env, 'AEGIS_ANOMALY_FAILURE_BURST_COUNT', 5, 2, 1_000_000),
      failureBurstMinutes: readWholeNumber(env, 'AEGIS_ANOMALY_FAILURE_BURST_MINUTES', 10, 1, 1_440),
      readRateFactor: readWholeNumber(env, 'AEGIS_ANOMALY_READ_RATE_FACTOR', 10, 2, 1_000_000),
      readRateMinReads: readWholeNumber(env, 'AEGIS_ANOMALY_READ_RATE_MIN_READS', 50, 1, 1_000_000_000),
    },
  };
}

function readWholeNumber(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw)) throw new StartupError(`${name} must be a whole number, got "${raw}".`);
  const value = Number(raw);
  if (value < min || value > max) throw new StartupError(`${name} must be between ${min} and ${max}, got ${value}.`);
  return value;
}
