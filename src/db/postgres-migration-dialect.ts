import { PostgresAdapter, PostgresDialect, sql, type DialectAdapter, type Kysely, type MigrationLockOptions } from 'kysely';

/**
 * Lifts statement_timeout on the connection that migrates, for as long as it holds Kysely's migration
 * lock. The pool sets that limit (60 s by default) on every connection. Without this, an index built
 * over a large audit log was cancelled and the start failed. A second process that waited longer than
 * the limit for the lock failed as well. Kysely takes the lock on one connection and runs every
 * migration in one transaction on that connection, so only the migrator's statements run unlimited.
 * The lock wait itself stays bounded by the lock_timeout (1 hour) that Kysely 0.28 sets while waiting.
 */
class MigrationPostgresAdapter extends PostgresAdapter {
  override async acquireMigrationLock(db: Kysely<any>, options: MigrationLockOptions): Promise<void> {
    await sql`set statement_timeout = 0`.execute(db);
    await super.acquireMigrationLock(db, options);
  }

  override async releaseMigrationLock(db: Kysely<any>, options: MigrationLockOptions): Promise<void> {
    try {
      await super.releaseMigrationLock(db, options);
    } finally {
      // Restores the value the connection opened with, so it keeps the pool's limit back in the pool.
      await sql`reset statement_timeout`.execute(db);
    }
  }
}

/** The PostgreSQL dialect whose migrations run without statement_timeout. */
export class MigrationPostgresDialect extends PostgresDialect {
  override createAdapter(): DialectAdapter {
    return new MigrationPostgresAdapter();
  }
}
