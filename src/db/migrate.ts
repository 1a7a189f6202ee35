import { Migrator, sql, type Kysely, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';
import { StartupError } from '../lib/errors.js';
import { tableExists, type Db, type DialectName } from './database.js';
import { isConnectionRejected, isDatabaseUnavailable } from './database-errors.js';
import * as initial from './migrations/0001_initial.js';
import * as rotation from './migrations/0002_rotation.js';
import * as alertDeliveries from './migrations/0003_alert_deliveries.js';
import * as schedulerJobs from './migrations/0004_scheduler_jobs.js';
import * as auditCheckpoints from './migrations/0005_audit_checkpoints.js';
import * as auditIndexes from './migrations/0006_audit_indexes.js';
import * as auditFailureIndexes from './migrations/0007_audit_failure_indexes.js';
import * as dropAuditIndexes from './migrations/0008_drop_audit_indexes.js';
import * as auditPrevHash from './migrations/0009_audit_prev_hash.js';
import * as changeNotices from './migrations/0010_change_notices.js';
import * as dropUnusedAuditIndexes from './migrations/0011_drop_unused_audit_indexes.js';
import * as changeCount from './migrations/0012_change_count.js';
import * as applyIntents from './migrations/0013_apply_intents.js';
import * as auditReachIndexes from './migrations/0014_audit_reach_indexes.js';
import * as alertListIndexes from './migrations/0015_alert_list_indexes.js';

interface DialectMigration {
  up(db: Kysely<any>, dialect: DialectName): Promise<void>;
}

/** Every migration in order. Names sort in the order they run; never rename or edit a released one. */
const migrations: Record<string, DialectMigration> = {
  '0001_initial': initial,
  '0002_rotation': rotation,
  '0003_alert_deliveries': alertDeliveries,
  '0004_scheduler_jobs': schedulerJobs,
  '0005_audit_checkpoints': auditCheckpoints,
  '0006_audit_indexes': auditIndexes,
  '0007_audit_failure_indexes': auditFailureIndexes,
  '0008_drop_audit_indexes': dropAuditIndexes,
  '0009_audit_prev_hash': auditPrevHash,
  '0010_change_notices': changeNotices,
  '0011_drop_unused_audit_indexes': dropUnusedAuditIndexes,
  '0012_change_count': changeCount,
  '0013_apply_intents': applyIntents,
  '0014_audit_reach_indexes': auditReachIndexes,
  '0015_alert_list_indexes': alertListIndexes,
};

/** The name of the newest migration, which a database brought up to date has applied last. */
export const LATEST_MIGRATION = Object.keys(migrations).at(-1)!;

class StaticMigrationProvider implements MigrationProvider {
  constructor(private readonly dialect: DialectName) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const bound: Record<string, Migration> = {};
    for (const [name, migration] of Object.entries(migrations)) {
      bound[name] = { up: (db) => migration.up(db, this.dialect) };
    }
    return bound;
  }
}

function migratorFor(db: Db): Migrator {
  return new Migrator({
    db: db.kysely,
    provider: new StaticMigrationProvider(db.dialect),
    migrationTableName: 'aegis_migrations',
    migrationLockTableName: 'aegis_migrations_lock',
    // Kysely looks for its tables across all schemas unless given one, so name ours.
    ...(db.schema ? { migrationTableSchema: db.schema } : {}),
  });
}

/** Brings the schema up to date. Safe to run on every start and from several processes at once (Kysely takes a lock). */
export async function migrateToLatest(db: Db): Promise<string[]> {
  return migrate(db, (migrator) => migrator.migrateToLatest());
}

/** Brings the schema to the migration `name` and no further; upgrade tests start from an older schema with it. */
export async function migrateTo(db: Db, name: string): Promise<string[]> {
  return migrate(db, (migrator) => migrator.migrateTo(name));
}

async function migrate(db: Db, run: (migrator: Migrator) => Promise<MigrationResultSet>): Promise<string[]> {
  const unknown = await unknownAppliedMigrations(db);
  if (unknown.length > 0) throw new StartupError(`${describeNewerSchema(db, unknown)} ${newerSchemaFix}`);
  const migrator = migratorFor(db);
  let { error, results } = await run(migrator);
  // Trying again is safe: the race fails the catalog read before any migration runs.
  for (let retry = 0; retry < 3 && isCatalogRace(error) && !results?.some((result) => result.status === 'Success'); retry += 1) {
    ({ error, results } = await run(migrator));
  }
  if (error) {
    // A busy SQLite file or an unreachable database is no fault of the migrations, so its own error
    // goes to the caller, which reports it with what to do (reportFailure in src/cli/context.ts).
    if (isDatabaseUnavailable(error) || isConnectionRejected(error)) throw error;
    const failed = results?.find((result) => result.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`Database migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return (results ?? []).filter((result) => result.status === 'Success').map((result) => result.migrationName);
}

/**
 * Tells whether a failure is a catalog race. Kysely reads PostgreSQL's catalog across all schemas,
 * resolving each table by name, so a schema or table that another client drops or renames at that
 * moment fails the read with invalid_schema_name (3F000) or undefined_table (42P01).
 */
function isCatalogRace(failure: unknown): boolean {
  return ['3F000', '42P01'].includes(String((failure as { code?: unknown } | undefined)?.code));
}

/** Tells whether migrations are waiting, for `aegis doctor` and start-up messages. A catalog race is read again. */
export async function pendingMigrations(db: Db): Promise<string[]> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const all = await migratorFor(db).getMigrations();
      return all.filter((migration) => migration.executedAt === undefined).map((migration) => migration.name);
    } catch (error) {
      if (attempt >= 4 || !isCatalogRace(error)) throw error;
    }
  }
}

/**
 * Lists the migrations the database has applied that this build does not have, which means a newer
 * build migrated it. Kysely would reject such a database with "corrupted migrations", naming no cause.
 */
export async function unknownAppliedMigrations(db: Db): Promise<string[]> {
  if (!(await tableExists(db, 'aegis_migrations'))) return [];
  const applied = await sql<{ name: string }>`select name from aegis_migrations order by name`.execute(db.kysely);
  return applied.rows.map((row) => row.name).filter((name) => !Object.hasOwn(migrations, name));
}

/** Explains a database migrated by a newer build, for start-up and `aegis doctor`. */
export function describeNewerSchema(db: Pick<Db, 'location'>, unknown: string[]): string {
  return `The database ${db.location} was migrated by a newer AEGIS build: it has applied ${unknown.join(', ')}, which this build does not have (its newest is ${LATEST_MIGRATION}).`;
}

/** The fix for a database migrated by a newer build. */
export const newerSchemaFix = 'Migrations cannot be undone, so start the newer build again, or restore the backup taken before the upgrade (see docs/deployment.md).';
