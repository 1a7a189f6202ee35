import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { appendEntries } from '../../src/audit/audit.repository.js';
import { verifyAuditChain } from '../../src/audit/verify.js';
import { Keyring } from '../../src/crypto/keyring.js';
import { migrateTo, migrateToLatest } from '../../src/db/migrate.js';
import { testDialects } from '../helpers/databases.js';
import { indexNames, withEmptyDatabase } from '../helpers/upgrade-database.js';

for (const dialect of await testDialects()) {
  describe(`audit log upgrade to 0009 (${dialect})`, () => {
    it('keeps every entry, index and the chain', async () => {
      await withEmptyDatabase(dialect, async (db) => {
        await migrateTo(db, '0008_drop_audit_indexes');
        const entries = Array.from({ length: 40 }, (_, index) => ({
          credentialName: `upgrade-${index % 4}`,
          action: index % 5 === 0 ? 'denied' : 'read',
          actor: 'ARIA',
          success: index % 5 !== 0,
          details: { index },
        }));
        await db.kysely.transaction().execute((trx) => appendEntries(trx, db.dialect, entries, '2026-06-01T12:00:00.000Z'));
        const before = await db.kysely.selectFrom('aegis_audit_log').selectAll().orderBy('seq').execute();
        const indexesBefore = await indexNames(db, 'aegis_audit_log');

        assert.deepEqual(await migrateTo(db, '0009_audit_prev_hash'), ['0009_audit_prev_hash']);

        const after = await db.kysely.selectFrom('aegis_audit_log').selectAll().orderBy('seq').execute();
        assert.deepEqual(after, before);
        assert.deepEqual(await indexNames(db, 'aegis_audit_log'), indexesBefore);
        const report = await verifyAuditChain(db.kysely, new Keyring(new Map()));
        assert.equal(report.ok, true, JSON.stringify(report.problem));
        assert.equal(report.checked, 40);

        // SQLite dropped the constraint on prev_hash; PostgreSQL, where several processes append, kept it.
        const duplicate = { ...after[0]!, id: crypto.randomUUID(), seq: 1_000 } as never;
        const insert = db.kysely.insertInto('aegis_audit_log').values(duplicate).execute();
        if (dialect === 'sqlite') await insert;
        else await assert.rejects(insert, /unique|duplicate/i);
      });
    });
  });
}
