import crypto from 'node:crypto';
import { alertMessages } from '../alerts/alert-types.js';
import { enqueueAlert } from '../alerts/outbox.repository.js';
import type { Executor } from '../db/database.js';
import { toJson, toNumber } from '../db/values.js';
import type { Credential } from '../registry/credential.types.js';
import { lockCredentials } from '../registry/credentials.repository.js';
import { expiryStatusSql } from '../registry/status.js';
import type { Caller } from '../tokens/caller.js';
import type { HealthCheckResult, HealthMonitorDeps } from './health.types.js';
import { latestHealthStatuses } from './health-checks.repository.js';
import type { ProviderTestOutcome } from './provider-test.js';

export type CheckTrigger = 'manual' | 'check_all';

export interface FinishedCheck {
  credential: Credential;
  /** Number of the version whose value was tested, or null when the credential had no current version. */
  version: number | null;
  outcome: ProviderTestOutcome;
  trigger: CheckTrigger;
}

/**
 * Stores finished checks and, in the same transaction, their effect on the credentials:
 * - an unhealthy check moves its credential to `failed` and raises one `health_check_failed` alert.
 *   A credential that a failed rotation left `failed` gets the alert too, unless its previous check
 *   was unhealthy as well, so each failure alerts once;
 * - a healthy check moves a failed credential back to the status its expiry date gives;
 * - rotating and retired credentials keep their status, and an unknown result changes nothing;
 * - a check of a version that is no longer current is stored as unknown. A rotation, rollback or new
 *   value committed while it ran (or while check-all kept it in its read-ahead page), so its result
 *   does not describe the current value.
 * Every check sets `last_health_check` and gets an audit entry (action `tested`) in the same transaction.
 * The statements work on the whole batch, so a batch of 50 costs about as much as a batch of one.
 */
export async function recordChecks(deps: HealthMonitorDeps, caller: Caller, finished: ReadonlyArray<FinishedCheck>): Promise<HealthCheckResult[]> {
  const { db, clock, audit, log } = deps;
  const now = clock.now();
  const checkedAt = now.toISOString();
  const ids = finished.map(() => crypto.randomUUID());

  const { checks, failed, alerted, recovered } = await db.kysely.transaction().execute(async (trx) => {
    // The rows are locked (on SQLite, BEGIN IMMEDIATE locks the database) before the current versions
    // are read, so no rotation commits in between.
    await lockCredentials(trx, db.dialect, finished.map((check) => check.credential.id));
    const checks = await withoutSupersededResults(trx, finished);
    const idsWith = (status: string) => checks.flatMap((check) => (check.outcome.status === status ? [check.credential.id] : []));
    // Read before this batch's rows exist: a failure alerts when it begins, not on each repeat.
    const unhealthyIds = idsWith('unhealthy');
    const previousHealth = unhealthyIds.length > 0 ? await latestHealthStatuses(trx, unhealthyIds) : new Map<string, string>();
    await trx
      .insertInto('aegis_health_checks')
      .values(
        checks.map((check, index) => ({
          id: ids[index]!,
          credential_id: check.credential.id,
          checked_at: checkedAt,
          status: check.outcome.status,
          response_time_ms: check.outcome.responseTimeMs,
          details: toJson(check.outcome.details),
          error_message: check.outcome.error,
        })),
      )
      .execute();
    await trx
      .updateTable('aegis_credentials')
      .set({ last_health_check: checkedAt })
      .where('id', 'in', checks.map((check) => check.credential.id))
      .execute();

    const failed = new Set<string>();
    // Credentials whose failure this batch alerts: those it moved to failed, and those already failed
    // (by a failed rotation) whose previous check had not failed, so a broken value is always reported.
    const alerted = new Set<string>();
    if (unhealthyIds.length > 0) {
      const rows = await trx
        .updateTable('aegis_credentials')
        .set({ status: 'failed' })
        .where('id', 'in', unhealthyIds)
        .where('status', 'not in', ['failed', 'rotating', 'retired'])
        .returning('id')
        .execute();
      for (const row of rows) failed.add(row.id);
      const alreadyFailed = await trx.selectFrom('aegis_credentials').select('id').where('id', 'in', unhealthyIds).where('status', '=', 'failed').execute();
      for (const { id } of alreadyFailed) if (failed.has(id) || previousHealth.get(id) !== 'unhealthy') alerted.add(id);
    }
    const recovered = new Set<string>();
    const healthy = idsWith('healthy');
    if (healthy.length > 0) {
      const rows = await trx
        .updateTable('aegis_credentials')
        .set({ status: expiryStatusSql(db.dialect, now) })
        .where('id', 'in', healthy)
        .where('status', '=', 'failed')
        .returning('id')
        .execute();
      for (const row of rows) recovered.add(row.id);
    }

    for (const [index, check] of checks.entries()) {
      if (check.outcome.status !== 'unhealthy' || !alerted.has(check.credential.id)) continue;
      // The key names this failure by the check that began it, so a failure after a recovery alerts again.
      await enqueueAlert(
        trx,
        {
          type: 'health_check_failed',
          conditionKey: `health_check_failed:${check.credential.id}:${ids[index]}`,
          credentialId: check.credential.id,
          credentialName: check.credential.name,
          message: alertMessages.healthCheckFailed(check.credential.name, check.outcome.error ?? 'unhealthy'),
          details: { check_id: ids[index], response_time_ms: check.outcome.responseTimeMs, check_details: check.outcome.details },
        },
        now,
      );
    }

    await audit.recordIn(
      trx,
      ...checks.map((check) => ({
        credentialId: check.credential.id,
        credentialName: check.credential.name,
        action: 'tested',
        actor: caller.actor,
        ipAddress: caller.ipAddress,
        success: true,
        details: {
          status: check.outcome.status,
          response_time_ms: check.outcome.responseTimeMs,
          trigger: check.trigger,
          ...statusChange(check.credential.id, failed, recovered),
        },
      })),
    );
    return { checks, failed, alerted, recovered };
  });

  for (const check of checks) {
    const { id, name } = check.credential;
    deps.metrics?.recordHealthCheck(check.outcome.status);
    if (failed.has(id)) log.warn({ credentialId: id, name, error: check.outcome.error }, 'health check failed; credential marked failed');
    if (recovered.has(id)) log.info({ credentialId: id, name }, 'health check passed; failed credential recovered');
  }
  return checks.map((check, index) => ({
    checkId: ids[index]!,
    credentialId: check.credential.id,
    name: check.credential.name,
    status: check.outcome.status,
    responseTimeMs: check.outcome.responseTimeMs,
    details: check.outcome.details,
    error: check.outcome.error,
    checkedAt,
  }));
}

/**
 * Replaces the outcome of each check whose tested version is no longer the credential's current one
 * with `unknown`, keeping the response time and naming both versions in the error.
 */
async function withoutSupersededResults(trx: Executor, checks: ReadonlyArray<FinishedCheck>): Promise<FinishedCheck[]> {
  const rows = await trx
    .selectFrom('aegis_credential_versions')
    .select(['credential_id', 'version'])
    .where('credential_id', 'in', checks.map((check) => check.credential.id))
    .where('is_current', '=', true)
    .execute();
  const currentVersions = new Map(rows.map((row) => [row.credential_id, toNumber(row.version)]));
  return checks.map((check) => {
    const current = currentVersions.get(check.credential.id) ?? null;
    if (current === check.version || check.outcome.status === 'unknown') return check;
    const error = `version ${check.version ?? 'none'} was tested, but version ${current ?? 'none'} became current while the check ran (a rotation, rollback or new value), so its ${check.outcome.status} result was not applied`;
    return { ...check, outcome: { ...check.outcome, status: 'unknown', details: { ...check.outcome.details, tested_version: check.version }, error } };
  });
}

function statusChange(id: string, failed: ReadonlySet<string>, recovered: ReadonlySet<string>): { status_change?: 'failed' | 'recovered' } {
  if (failed.has(id)) return { status_change: 'failed' };
  if (recovered.has(id)) return { status_change: 'recovered' };
  return {};
}

/**
 * Collects checks from concurrent workers and writes them in batches, so one commit covers many checks.
 * A batch is written once `maxBatch` checks wait or `lingerMs` after the first of them arrived. `submit`
 * returns at once unless two batches wait unwritten, so memory stays bounded when writes fall behind.
 * After a failed write every later `submit` and `flush` rejects with that error.
 */
export class CheckBatcher {
  readonly #write: (checks: FinishedCheck[]) => Promise<unknown>;
  readonly #maxBatch: number;
  readonly #lingerMs: number;
  #queue: FinishedCheck[] = [];
  #writing: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #failure: { error: unknown } | null = null;

  constructor(write: (checks: FinishedCheck[]) => Promise<unknown>, options: { maxBatch: number; lingerMs: number }) {
    this.#write = write;
    this.#maxBatch = options.maxBatch;
    this.#lingerMs = options.lingerMs;
  }

  async submit(check: FinishedCheck): Promise<void> {
    this.#throwIfFailed();
    this.#queue.push(check);
    if (this.#queue.length >= this.#maxBatch) this.#startWrite();
    else this.#timer ??= setTimeout(() => this.#startWrite(), this.#lingerMs);
    while (this.#queue.length >= 2 * this.#maxBatch && this.#writing && !this.#failure) await this.#writing;
    this.#throwIfFailed();
  }

  /** Writes every check still waiting; rejects when any write failed. */
  async flush(): Promise<void> {
    while (this.#queue.length > 0 && !this.#failure) {
      this.#startWrite();
      await this.#writing;
    }
    if (this.#writing) await this.#writing;
    this.#throwIfFailed();
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure.error;
  }

  #startWrite(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#writing ??= this.#drain().finally(() => {
      this.#writing = null;
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 && !this.#failure) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      try {
        await this.#write(batch);
      } catch (error) {
        this.#failure = { error };
      }
    }
  }
}
