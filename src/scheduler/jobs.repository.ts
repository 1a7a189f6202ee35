import type { Db, Executor } from '../db/database.js';
import { toIso } from '../db/values.js';

export type JobStatus = 'running' | 'succeeded' | 'failed' | 'interrupted';

/** One row of `aegis_scheduler_jobs`: the last run of a job, shared by every process on the database. */
export interface JobRecord {
  name: string;
  /** The scheduled time of the last run, or the time the job was first seen before its first run. */
  lastScheduledAt: string;
  lastRunAt: string | null;
  lastStatus: JobStatus | null;
  lastError: string | null;
  lastDurationMs: number | null;
}

export async function listJobRecords(db: Executor): Promise<Map<string, JobRecord>> {
  const rows = await db.selectFrom('aegis_scheduler_jobs').selectAll().execute();
  return new Map(
    rows.map((row) => [
      row.name,
      {
        name: row.name,
        lastScheduledAt: toIso(row.last_scheduled_at),
        lastRunAt: toIso(row.last_run_at),
        lastStatus: row.last_status as JobStatus | null,
        lastError: row.last_error,
        lastDurationMs: row.last_duration_ms,
      },
    ]),
  );
}

/** Adds a job seen for the first time; its first run is its first scheduled time after `now`. */
export async function insertJobRecord(db: Executor, name: string, now: Date): Promise<void> {
  await db
    .insertInto('aegis_scheduler_jobs')
    .values({ name, last_scheduled_at: now.toISOString() })
    .onConflict((conflict) => conflict.column('name').doNothing())
    .execute();
}

/**
 * Claims the run of `name` at `scheduledAt`: one conditional update, so of several processes only the
 * first gets it, and a time that already ran is never claimed again. Returns whether this caller got it.
 */
export async function claimJobRun(db: Executor, name: string, scheduledAt: Date, now: Date): Promise<boolean> {
  const result = await db
    .updateTable('aegis_scheduler_jobs')
    .set({ last_scheduled_at: scheduledAt.toISOString(), last_run_at: now.toISOString(), last_status: 'running', last_error: null, last_duration_ms: null })
    .where('name', '=', name)
    .where('last_scheduled_at', '<', scheduledAt.toISOString())
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Records how the run claimed for `scheduledAt` ended, unless a later run has been claimed meanwhile. */
export async function finishJobRun(
  db: Executor,
  name: string,
  scheduledAt: Date,
  outcome: { status: 'succeeded' | 'failed'; error: string | null; durationMs: number },
): Promise<void> {
  await db
    .updateTable('aegis_scheduler_jobs')
    .set({ last_status: outcome.status, last_error: outcome.error, last_duration_ms: outcome.durationMs })
    .where('name', '=', name)
    .where('last_scheduled_at', '=', scheduledAt.toISOString())
    .execute();
}

/**
 * Marks runs left `running` by an earlier leader as `interrupted`, except the jobs in `stillRunning`,
 * which this process started itself and is still running.
 */
export async function markInterrupted(db: Db, stillRunning: string[]): Promise<number> {
  let query = db.kysely
    .updateTable('aegis_scheduler_jobs')
    .set({ last_status: 'interrupted', last_error: 'the leader stopped before the job ended' })
    .where('last_status', '=', 'running');
  if (stillRunning.length > 0) query = query.where('name', 'not in', stillRunning);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows);
}
