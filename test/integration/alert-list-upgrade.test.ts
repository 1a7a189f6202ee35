import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listAlerts } from '../../src/alerts/deliveries.repository.js';
import { enqueueAlert } from '../../src/alerts/outbox.repository.js';
import { migrateTo } from '../../src/db/migrate.js';
import { testDialects } from '../helpers/databases.js';
import { indexNames, withEmptyDatabase } from '../helpers/upgrade-database.js';

for (const dialect of await testDialects()) {
  describe(`alert outbox upgrade to 0015 (${dialect})`, () => {
    it('keeps every alert and adds the list indexes', async () => {
      await withEmptyDatabase(dialect, async (db) => {
        await migrateTo(db, '0014_audit_reach_indexes');
        for (let index = 0; index < 30; index += 1) {
          const raisedAt = new Date(Date.UTC(2026, 5, 1, 12, index));
          const type = index % 2 === 0 ? 'rotation_success' : 'rotation_failed';
          const alert = { type, conditionKey: `upgrade:${index}`, credentialId: null, credentialName: `app/${index % 3}`, message: `alert ${index}` } as const;
          await enqueueAlert(db.kysely, alert, raisedAt);
        }
        const before = await db.kysely.selectFrom('aegis_alert_outbox').selectAll().orderBy('condition_key').execute();

        assert.deepEqual(await migrateTo(db, '0015_alert_list_indexes'), ['0015_alert_list_indexes']);

        const after = await db.kysely.selectFrom('aegis_alert_outbox').selectAll().orderBy('condition_key').execute();
        assert.deepEqual(after, before);
        assert.deepEqual(await indexNames(db, 'aegis_alert_outbox'), [
          'idx_alert_outbox_created',
          'idx_alert_outbox_due',
          'idx_alert_outbox_name_created',
          'idx_alert_outbox_name_type_created',
          'idx_alert_outbox_type_created',
        ]);
        const page = await listAlerts(db.kysely, db.dialect, { credentialName: 'app/1', limit: 3, offset: 0 });
        assert.equal(page.total, 10);
        assert.deepEqual(
          page.alerts.map((alert) => alert.message),
          ['alert 28', 'alert 25', 'alert 22'],
        );
      });
    });
  });
}
