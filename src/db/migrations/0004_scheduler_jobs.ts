import type { Kysely } from 'kysely';

/**
 * Adds `aegis_scheduler_jobs`: one row per scheduler job with its last run, so a new leader or a
 * restarted process knows which scheduled time already ran and does not run it again.
 */
export async function up(db: Kysely<any>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const instant = dialect === 'postgres' ? 'timestamptz' : 'text';
  await db.schema
    .createTable('aegis_scheduler_jobs')
    .addColumn('name', 'text', (col) => col.primaryKey())
    // The scheduled time of the last run, or the time the job was first seen; the next run is the first
    // scheduled time after it. A leader claims a run by moving it forward in one conditional update.
    .addColumn('last_scheduled_at', instant, (col) => col.notNull())
    .addColumn('last_run_at', instant)
    .addColumn('last_status', 'text')
    .addColumn('last_error', 'text')
    .addColumn('last_duration_ms', 'integer')
    .execute();
}
