import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Db } from '../db/database.js';
import { acquireLease, findLease, ownerProcessIsGone, releaseLease, renewLease, stillHolds, takeOverLease, type Lease } from '../leases/leases.repository.js';
import type { Clock } from '../lib/clock.js';
import { CronSchedule, IntervalSchedule, type JobSchedule } from './job-schedule.js';
import { claimJobRun, finishJobRun, insertJobRecord, listJobRecords, markInterrupted, type JobRecord } from './jobs.repository.js';

/** The name of the lease that makes one process the scheduler leader. */
export const SCHEDULER_LEASE = 'scheduler';

/** The jobs the scheduler runs. A job left out is not scheduled. */
export interface SchedulerJobs {
  healthChecks?: () => Promise<unknown>;
  rotations?: () => Promise<unknown>;
  expiryChecks?: () => Promise<unknown>;
  alertDelivery?: () => Promise<unknown>;
  dailyReport?: () => Promise<unknown>;
  retention?: () => Promise<unknown>;
}

export type JobKey = keyof SchedulerJobs;

/** Job names as stored in `aegis_scheduler_jobs` and shown by GET /scheduler, in the order jobs start. */
export const JOB_NAMES: Record<JobKey, string> = {
  alertDelivery: 'alert_delivery',
  expiryChecks: 'expiry_checks',
  healthChecks: 'health_checks',
  rotations: 'rotations',
  dailyReport: 'daily_report',
  retention: 'retention',
};

export interface SchedulerSettings {
  schedules: Config['schedules'];
  /** IANA time zone of the daily report's cron expression; the other expressions are read in UTC. */
  reportTimezone: string;
  alertDeliverySeconds: number;
  /** How long the leader lease lasts without renewal; the leader renews it every third of that. */
  leaseTtlMs: number;
  /** This process's lease owner name (`processOwner()`). */
  owner: string;
  /** Milliseconds between the ticks of `start()`. */
  tickMs?: number;
}

export interface SchedulerDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  jobs: SchedulerJobs;
  settings: SchedulerSettings;
}

interface ScheduledJob {
  name: string;
  schedule: JobSchedule;
  run: () => Promise<unknown>;
  /** Alert delivery runs every few seconds, so its start and end are logged at debug level. */
  quiet: boolean;
}

/** A job's schedule and last run, as GET /scheduler shows it. */
export interface JobState {
  name: string;
  schedule: string;
  timezone: string | null;
  lastRunAt: string | null;
  lastStatus: JobRecord['lastStatus'];
  lastError: string | null;
  lastDurationMs: number | null;
  /** The next scheduled time; in the past when a run is overdue, which the leader's next tick starts. */
  nextRunAt: string | null;
}

export interface SchedulerState {
  /** The process holding the leader lease, or null when none holds an unexpired one. */
  leader: { owner: string; fencingToken: number; expiresAt: string } | null;
  owner: string;
  isLeader: boolean;
  running: boolean;
  jobs: JobState[];
}

/**
 * Runs the periodic jobs on their schedules in one process at a time. Every process on the database
 * may run a Scheduler, but only the holder of the `scheduler` lease runs jobs. A follower takes the
 * lease over when it expires, or at once when its holder was a process on this host that has ended.
 * Each run is claimed in `aegis_scheduler_jobs` by scheduled time, so no scheduled time runs twice,
 * across a restart or a change of leader. A time missed while no leader ran is made up once, by the
 * first tick after it, however late. A job that throws is logged and recorded; the others still run.
 */
export class Scheduler {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #settings: SchedulerSettings;
  readonly #jobs: ScheduledJob[];
  readonly #renewEveryMs: number;
  #lease: Lease | null = null;
  #renewedAt = 0;
  readonly #running = new Map<string, Promise<void>>();
  #ticking: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #stopping = false;

  constructor(deps: SchedulerDeps) {
    this.#db = deps.db;
    this.#clock = deps.clock;
    this.#log = deps.log.child({ component: 'scheduler' });
    this.#settings = deps.settings;
    this.#renewEveryMs = Math.floor(deps.settings.leaseTtlMs / 3);
    this.#jobs = buildJobs(deps.jobs, deps.settings);
  }

  get owner(): string {
    return this.#settings.owner;
  }

  get isLeader(): boolean {
    return this.#lease !== null;
  }

  /** Names of the jobs running in this process now. */
  get runningJobs(): string[] {
    return [...this.#running.keys()];
  }

  /**
   * Renews or takes the leader lease, then starts every job due at `now` and waits until they end.
   * Tests call it with a manual clock; `start()` calls the same steps from a timer.
   */
  async tick(now: Date = this.#clock.now()): Promise<void> {
    const started = await this.#startDueJobs(now);
    await Promise.all(started);
  }

  /** Ticks every `tickMs` (one second by default) until `stop()`. A job still running is not started again. */
  start(): void {
    if (this.#timer) return;
    this.#stopping = false;
    this.#timer = setInterval(() => this.#onTimer(), this.#settings.tickMs ?? 1000);
    // The HTTP server keeps `aegis serve` alive; this timer alone must not.
    this.#timer.unref();
    this.#log.info({ owner: this.owner, jobs: this.#jobs.map((job) => `${job.name}: ${job.schedule.expression}`) }, 'scheduler started');
    this.#onTimer();
  }

  /**
   * Starts no more jobs, waits for the running ones to end (renewing the lease meanwhile), then releases
   * the lease so another process can lead at once.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#ticking;
    await Promise.allSettled([...this.#running.values()]);
    if (this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
      this.#log.info({ owner: this.owner }, 'scheduler stopped');
    }
    await this.#ticking;
    if (this.#lease) {
      const lease = this.#lease;
      this.#lease = null;
      try {
        await releaseLease(this.#db.kysely, lease);
        this.#log.info({ owner: lease.owner, fencingToken: lease.fencingToken }, 'released the scheduler lease');
      } catch (error) {
        // With the database unreachable the lease cannot be released; another process takes it once it expires.
        this.#log.warn({ owner: lease.owner, fencingToken: lease.fencingToken, err: describeError(error) }, 'failed to release the scheduler lease; it expires by itself');
      }
    }
  }

  /** Reads the leader, each job's schedule, last run and next run. */
  async state(): Promise<SchedulerState> {
    const now = this.#clock.now();
    const holder = await findLease(this.#db.kysely, SCHEDULER_LEASE);
    const records = await listJobRecords(this.#db.kysely);
    const leader = holder && new Date(holder.expiresAt).getTime() >= now.getTime() ? { owner: holder.owner, fencingToken: holder.fencingToken, expiresAt: holder.expiresAt } : null;
    return {
      leader,
      owner: this.owner,
      isLeader: leader?.owner === this.owner,
      running: this.#timer !== null,
      jobs: this.#jobs.map((job) => {
        const record = records.get(job.name);
        const next = job.schedule.nextAfter(record ? new Date(record.lastScheduledAt) : now);
        return {
          name: job.name,
          schedule: job.schedule.expression,
          timezone: job.schedule.timezone,
          lastRunAt: record?.lastRunAt ?? null,
          lastStatus: record?.lastStatus ?? null,
          lastError: record?.lastError ?? null,
          lastDurationMs: record?.lastDurationMs ?? null,
          nextRunAt: next ? next.toISOString() : null,
        };
      }),
    };
  }

  #onTimer(): void {
    if (this.#ticking) return;
    this.#ticking = this.#startDueJobs(this.#clock.now())
      .then(() => undefined)
      .catch((error: unknown) => this.#log.error({ err: describeError(error) }, 'scheduler tick failed; retrying at the next tick'))
      .finally(() => {
        this.#ticking = null;
      });
  }

  /** Starts the due jobs and returns their runs without waiting for them. */
  async #startDueJobs(now: Date): Promise<Array<Promise<void>>> {
    if (!(await this.#holdLeadership(now))) return [];
    if (this.#stopping) return [];
    const records = await listJobRecords(this.#db.kysely);
    const started: Array<Promise<void>> = [];
    for (const job of this.#jobs) {
      if (this.#running.has(job.name)) continue;
      const record = records.get(job.name);
      if (!record) {
        await insertJobRecord(this.#db.kysely, job.name, now);
        continue;
      }
      const scheduledAt = job.schedule.latestDue(new Date(record.lastScheduledAt), now);
      if (scheduledAt === null || !(await this.#claim(job, scheduledAt, now))) continue;
      const run = this.#run(job, scheduledAt).finally(() => this.#running.delete(job.name));
      this.#running.set(job.name, run);
      started.push(run);
    }
    return started;
  }

  /**
   * Claims a run while checking, in the same transaction, that this process still holds the lease. On
   * PostgreSQL the lease row stays locked until the commit, so a takeover cannot slip in between.
   */
  async #claim(job: ScheduledJob, scheduledAt: Date, now: Date): Promise<boolean> {
    const lease = this.#lease;
    if (!lease) return false;
    return this.#db.kysely.transaction().execute(async (trx) => {
      if (!(await stillHolds(trx, this.#db.dialect, lease))) return false;
      return claimJobRun(trx, job.name, scheduledAt, now);
    });
  }

  async #run(job: ScheduledJob, scheduledAt: Date): Promise<void> {
    const context = { job: job.name, scheduledAt: scheduledAt.toISOString() };
    const started = performance.now();
    if (job.quiet) this.#log.debug(context, 'scheduler job started');
    else this.#log.info(context, 'scheduler job started');
    let outcome: { status: 'succeeded' | 'failed'; error: string | null; durationMs: number };
    try {
      await job.run();
      outcome = { status: 'succeeded', error: null, durationMs: Math.round(performance.now() - started) };
      if (job.quiet) this.#log.debug({ ...context, ms: outcome.durationMs }, 'scheduler job succeeded');
      else this.#log.info({ ...context, ms: outcome.durationMs }, 'scheduler job succeeded');
    } catch (error) {
      outcome = { status: 'failed', error: errorText(error), durationMs: Math.round(performance.now() - started) };
      this.#log.error({ ...context, ms: outcome.durationMs, err: describeError(error) }, 'scheduler job failed');
    }
    try {
      await finishJobRun(this.#db.kysely, job.name, scheduledAt, outcome);
    } catch (error) {
      this.#log.error({ ...context, err: describeError(error) }, 'failed to record the end of a scheduler job');
    }
  }

  /** Renews the lease every third of its TTL, or tries to take it; returns whether this process leads. */
  async #holdLeadership(now: Date): Promise<boolean> {
    const ttl = this.#settings.leaseTtlMs;
    if (this.#lease) {
      if (now.getTime() - this.#renewedAt < this.#renewEveryMs) return true;
      if (await renewLease(this.#db.kysely, this.#lease, ttl, now)) {
        this.#renewedAt = now.getTime();
        this.#lease = { ...this.#lease, expiresAt: new Date(now.getTime() + ttl).toISOString() };
        return true;
      }
      this.#log.warn({ owner: this.owner, fencingToken: this.#lease.fencingToken }, 'lost the scheduler lease to another process');
      this.#lease = null;
      return false;
    }
    if (this.#stopping) return false;

    const holder = await findLease(this.#db.kysely, SCHEDULER_LEASE);
    let lease: Lease | null = null;
    if (!holder || new Date(holder.expiresAt).getTime() < now.getTime()) {
      lease = await acquireLease(this.#db.kysely, SCHEDULER_LEASE, this.owner, ttl, now);
    } else if (ownerProcessIsGone(holder.owner)) {
      lease = await takeOverLease(this.#db.kysely, holder, this.owner, ttl, now);
    }
    if (!lease) return false;

    this.#lease = lease;
    this.#renewedAt = now.getTime();
    const interrupted = await markInterrupted(this.#db, [...this.#running.keys()]);
    this.#log.info({ owner: this.owner, fencingToken: lease.fencingToken, previousOwner: holder?.owner ?? null, interrupted }, 'became the scheduler leader');
    return true;
  }
}

function buildJobs(jobs: SchedulerJobs, settings: SchedulerSettings): ScheduledJob[] {
  const schedules: Record<JobKey, JobSchedule> = {
    alertDelivery: new IntervalSchedule(settings.alertDeliverySeconds),
    expiryChecks: new CronSchedule(settings.schedules.expiryChecks, 'UTC'),
    healthChecks: new CronSchedule(settings.schedules.healthChecks, 'UTC'),
    rotations: new CronSchedule(settings.schedules.rotations, 'UTC'),
    dailyReport: new CronSchedule(settings.schedules.dailyReport, settings.reportTimezone),
    retention: new CronSchedule(settings.schedules.retention, 'UTC'),
  };
  const scheduled: ScheduledJob[] = [];
  for (const key of Object.keys(JOB_NAMES) as JobKey[]) {
    const run = jobs[key];
    if (run) scheduled.push({ name: JOB_NAMES[key], schedule: schedules[key], run, quiet: key === 'alertDelivery' });
  }
  return scheduled;
}

/** Formats a job's error for `last_error`, at most 500 characters. Services write their errors without values. */
function errorText(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.length > 500 ? `${text.slice(0, 497)}...` : text;
}

function describeError(error: unknown): Record<string, unknown> {
  if (error instanceof Error) return { type: error.name, message: error.message, code: (error as { code?: unknown }).code };
  return { type: typeof error };
}
