import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Db } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import {
  countPendingDeliveries,
  createMissingDeliveries,
  listAlerts,
  recordAttempt,
  reserveDelivery,
  selectDueDelivery,
  settleAlert,
  type AlertFilter,
  type AlertRecord,
  type AttemptOutcome,
  type DueDelivery,
} from './deliveries.repository.js';
import { pruneAlerts } from './alert-retention.js';
import { createSinks, SinkError, type AlertSink, type SinkConfig } from './sinks/index.js';

/** When a failed delivery is tried again, and when it is given up. */
export interface RetryPolicy {
  /** Wait after the first failure; it doubles after each further failure. */
  baseDelayMs: number;
  /** Maximum wait between two attempts. */
  maxDelayMs: number;
  /** Failed attempts after which a delivery is marked dead. */
  maxAttempts: number;
  /** Age of the alert after which a failed delivery is marked dead instead of retried. */
  maxAgeMs: number;
}

/** 5 s, 10 s, 20 s ... capped at 15 minutes; dead after 100 failures or once the alert is a day old, whichever comes first. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  baseDelayMs: 5_000,
  maxDelayMs: 15 * 60_000,
  maxAttempts: 100,
  maxAgeMs: 24 * 3_600_000,
};

/** Deliveries sent at once by one `deliverDue` run. On PostgreSQL each keeps a pooled connection while it sends. */
const DEFAULT_CONCURRENCY = 4;

export interface DeliveryRun {
  /** Deliveries that got a 2xx in this run. */
  delivered: number;
  /** Attempts that failed in this run, including deliveries given up. */
  failed: number;
  /** Deliveries still pending after the run, due or not. */
  pending: number;
}

export interface AlertServiceDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  config: SinkConfig & Pick<Config, 'alertRetentionDays' | 'audit'>;
  retry?: Partial<RetryPolicy>;
  /** Replaces the sinks built from `config`. */
  sinks?: AlertSink[];
  concurrency?: number;
}

/**
 * Delivers the alerts of the outbox to every configured sink, each sink with its own retries, and
 * lists them. A delivery counts as done only after the sink responded with 2xx, so a sink that is down
 * delays its alerts without losing them. A crash between that response and the commit sends the alert
 * again, with the same `idempotency-key`.
 */
export class AlertService {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #sinks: AlertSink[];
  readonly #retry: RetryPolicy;
  readonly #concurrency: number;
  readonly #retention: { retentionDays: number; auditRetentionDays: number };
  /** Maximum time a SQLite run reserves a delivery for: one request's time limit plus a margin. */
  readonly #reservationMs: number;

  constructor(deps: AlertServiceDeps) {
    this.#db = deps.db;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#sinks = deps.sinks ?? createSinks(deps.config, deps.clock);
    this.#retry = { ...DEFAULT_RETRY_POLICY, ...deps.retry };
    this.#concurrency = deps.concurrency ?? DEFAULT_CONCURRENCY;
    this.#retention = { retentionDays: deps.config.alertRetentionDays, auditRetentionDays: deps.config.audit.retentionDays };
    this.#reservationMs = deps.config.providerTimeoutMs + 60_000;
  }

  /** The names of the configured sinks, as stored in `aegis_alert_deliveries.sink`. */
  get sinkNames(): string[] {
    return this.#sinks.map((sink) => sink.name);
  }

  /**
   * Sends every delivery that is due, each alert of any type to each configured sink. A sink that
   * fails once in a run gets no more attempts in that run, so a sink that is down costs one time-out
   * per run rather than one per alert. Each sink's first delivery of a run goes alone: a sink that
   * hangs occupies one of the `concurrency` slots until its time-out, and the other sinks use the rest.
   * After a success a sink takes at most `concurrency - 1` slots, so one that hangs later leaves a slot.
   */
  async deliverDue(): Promise<DeliveryRun> {
    const names = this.sinkNames;
    if (names.length === 0) return { delivered: 0, failed: 0, pending: 0 };
    const now = this.#clock.now();
    await createMissingDeliveries(this.#db.kysely, names);

    const run = { delivered: 0, failed: 0 };
    const slots = new Slots(this.#concurrency);
    // Each sink is a lane: one delivery first, then up to `concurrency - 1` at once after it succeeded,
    // so a sink that starts to hang part-way leaves at least one slot to the others.
    const lane = async (sink: string) => {
      let stopped = false;
      const sendOne = async () => {
        // A lane that stopped while this call waited for a slot sends nothing more.
        const outcome = await slots.run(async () => (stopped ? undefined : this.#deliverNext([sink], now)));
        if (outcome === undefined || outcome.result.kind !== 'delivered') stopped = true;
        if (outcome?.result.kind === 'delivered') run.delivered += 1;
        else if (outcome !== undefined) run.failed += 1;
      };
      await sendOne();
      const worker = async () => {
        while (!stopped) await sendOne();
      };
      await Promise.all(Array.from({ length: Math.max(1, this.#concurrency - 1) }, worker));
    };
    const results = await Promise.allSettled(names.map(lane));
    const rejected = results.find((result) => result.status === 'rejected');
    if (rejected) throw rejected.reason;

    const pending = await countPendingDeliveries(this.#db.kysely, names);
    if (run.delivered + run.failed > 0) this.#log.info({ ...run, pending }, 'alert delivery run finished');
    return { ...run, pending };
  }

  /** Lists alerts newest first with their delivery to each sink. The caller audits the read. */
  list(filter: AlertFilter): Promise<{ alerts: AlertRecord[]; total: number }> {
    return listAlerts(this.#db.kysely, this.#db.dialect, filter);
  }

  /** Removes finished alerts older than `AEGIS_ALERT_RETENTION_DAYS`, with their deliveries, and returns how many. */
  retention(): Promise<number> {
    return pruneAlerts({ db: this.#db, clock: this.#clock, log: this.#log }, this.#retention);
  }

  /** Claims, sends and records one due delivery; returns undefined when none is due. */
  async #deliverNext(sinks: string[], now: Date): Promise<{ sink: string; result: AttemptOutcome } | undefined> {
    const nowIso = now.toISOString();
    if (this.#db.dialect === 'postgres') {
      // The row stays locked (FOR UPDATE) while the sink is called, and the 2xx is recorded in the
      // same transaction, so another process skips the row instead of sending it again.
      return this.#db.kysely.transaction().execute(async (trx) => {
        const delivery = await selectDueDelivery(trx, 'postgres', sinks, nowIso);
        if (!delivery) return undefined;
        const result = await this.#attempt(delivery);
        const finished = this.#clock.now().toISOString();
        await recordAttempt(trx, delivery, result, finished);
        await settleAlert(trx, 'postgres', delivery.alert.id, this.sinkNames, finished);
        return { sink: delivery.sink, result };
      });
    }

    // SQLite: a write transaction would block every other writer of the file while the sink responds,
    // so the row is reserved by moving its next attempt out, and the outcome is written afterwards.
    for (;;) {
      const delivery = await selectDueDelivery(this.#db.kysely, 'sqlite', sinks, nowIso);
      if (!delivery) return undefined;
      const until = new Date(now.getTime() + this.#reservationMs).toISOString();
      if (!(await reserveDelivery(this.#db.kysely, delivery, until))) continue;
      const result = await this.#attempt(delivery);
      const finished = this.#clock.now().toISOString();
      await this.#db.kysely.transaction().execute(async (trx) => {
        await recordAttempt(trx, delivery, result, finished);
        await settleAlert(trx, 'sqlite', delivery.alert.id, this.sinkNames, finished);
      });
      return { sink: delivery.sink, result };
    }
  }

  /** Sends one delivery and decides what follows a failure; the wait before a retry counts from the failure. */
  async #attempt(delivery: DueDelivery): Promise<AttemptOutcome> {
    const sink = this.#sinks.find((candidate) => candidate.name === delivery.sink)!;
    try {
      await sink.send(delivery.alert);
      return { kind: 'delivered' };
    } catch (error) {
      // A SinkError's message names a status or network error only. Other errors are bugs, and their
      // message is not stored because it could quote the request.
      const message = error instanceof SinkError ? error.message : `unexpected ${error instanceof Error ? error.name : typeof error}`;
      const now = this.#clock.now();
      const attempts = delivery.attempts + 1;
      const ids = { alertId: delivery.alert.id, alertType: delivery.alert.alertType, sink: delivery.sink, attempts };
      const ageMs = now.getTime() - new Date(delivery.alert.createdAt).getTime();
      if (attempts >= this.#retry.maxAttempts || ageMs >= this.#retry.maxAgeMs) {
        this.#log.error({ ...ids, error: message }, 'alert delivery failed and was given up');
        return { kind: 'dead', error: message };
      }
      const nextAttemptAt = new Date(now.getTime() + backoffMs(attempts, this.#retry)).toISOString();
      this.#log.warn({ ...ids, error: message, nextAttemptAt }, 'alert delivery failed; it will be retried');
      return { kind: 'retry', error: message, nextAttemptAt };
    }
  }
}

/** Wait after the given number of failed attempts: base × 2^(attempts − 1), at most the policy's maximum. */
export function backoffMs(attempts: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>): number {
  return Math.min(policy.baseDelayMs * 2 ** Math.max(0, attempts - 1), policy.maxDelayMs);
}

/** A fixed number of slots: `run` waits for a free one, so at most `size` calls run at once. */
class Slots {
  #free: number;
  readonly #waiting: Array<() => void> = [];

  constructor(size: number) {
    this.#free = size;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free -= 1;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free += 1;
    }
  }
}
