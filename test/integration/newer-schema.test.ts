import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { LATEST_MIGRATION, migrateToLatest } from '../../src/db/migrate.js';
import { StartupError } from '../../src/lib/errors.js';
import { openScratchDatabase, testDialects } from '../helpers/databases.js';

for (const dialect of await testDialects()) {
  describe(`database migrated by a newer build (${dialect})`, () => {
    it('start names the unknown migration', async () => {
      const { db, remove } = await openScratchDatabase(dialect);
      try {
        await migrateToLatest(db);
        // A newer build's migration sorts after every one this build has.
        await sql`insert into aegis_migrations (name, timestamp) values ('9999_from_a_newer_build', '2027-01-01T00:00:00.000Z')`.execute(db.kysely);

        const failure = await migrateToLatest(db).then(
          () => assert.fail('the migration succeeded on a newer database'),
          (error: unknown) => error,
        );
        assert.ok(failure instanceof StartupError, String(failure));
        assert.match(failure.message, /was migrated by a newer AEGIS build: it has applied 9999_from_a_newer_build, which this build does not have/);
        assert.ok(failure.message.includes(`(its newest is ${LATEST_MIGRATION})`), failure.message);
        assert.match(failure.message, /restore the backup taken before the upgrade/);

        const applied = await sql<{ count: number | string }>`select count(*) as count from aegis_migrations`.execute(db.kysely);
        assert.equal(Number(applied.rows[0]!.count), Number(LATEST_MIGRATION.slice(0, 4)) + 1);
      } finally {
        await remove();
      }
    });
  });
}
