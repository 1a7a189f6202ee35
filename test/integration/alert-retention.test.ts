import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { AlertType } from '../../src/alerts/alert-types.js';
import { enqueueAlert } from '../../src/alerts/outbox.repository.js';
import { ManualClock } from '../../src/lib/clock.js';
import { testDialects } from '../helpers/databases.js';
import { alertsOf, setupCaller } from '../helpers/health-fixtures.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const dayMs = 86_400_000;
const start = '2026-06-01T12:00:00.000Z';
const sinks = ['event_bus', 'hermes'];

interface StoredAlert {
  type: AlertType;
  credentialName: string;
  daysAgo: number;
  state: 'pending' | 'delivered' | 'dead';
}

/** Stores an alert raised `daysAgo` days before the clock's time, in `state`, with a delivery row per sink in the same state. */
async function storeAlert(t: TestVault, alert: StoredAlert): Promise<string> {
  const conditionKey = `${alert.type}:${alert.credentialName}:${crypto.randomUUID()}`;
  const raisedAt = new Date(t.clock.now().getTime() - alert.daysAgo * dayMs);
  const db = t.vault.db.kysely;
  await enqueueAlert(
    db,
    { type: alert.type, conditionKey, credentialId: null, credentialName: alert.credentialName, message: `test alert ${alert.type} for '${alert.credentialName}'` },
    raisedAt,
  );
  const { id } = await db.selectFrom('aegis_alert_outbox').select('id').where('condition_key', '=', conditionKey).executeTakeFirstOrThrow();
  const finishedAt = alert.state === 'pending' ? null : raisedAt.toISOString();
  await db
    .updateTable('aegis_alert_outbox')
    .set({ state: alert.state, delivered_at: alert.state === 'delivered' ? finishedAt : null })
    .where('id', '=', id)
    .execute();
  await db
    .insertInto('aegis_alert_deliveries')
    .values(
      sinks.map((sink) => ({
        alert_id: id,
        sink,
        state: alert.state,
        attempts: 1,
        next_attempt_at: raisedAt.toISOString(),
        delivered_at: alert.state === 'delivered' ? finishedAt : null,
      })),
    )
    .execute();
  return id;
}

async function storedAlertIds(t: TestVault): Promise<string[]> {
  const rows = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').select('id').execute();
  return rows.map((row) => row.id).sort();
}

async function deliveryCount(t: TestVault, alertIds: string[]): Promise<number> {
  const rows = await t.vault.db.kysely.selectFrom('aegis_alert_deliveries').select('alert_id').where('alert_id', 'in', alertIds).execute();
  return rows.length;
}

for (const dialect of await testDialects()) {
  describe(`alert retention on ${dialect}`, () => {
    const opened: TestVault[] = [];
    after(async () => {
      for (const t of opened) await destroyTestVault(t);
    });

    async function open(env: Record<string, string> = {}): Promise<TestVault> {
      const t = await openTestVault(dialect, { clock: new ManualClock(start), env });
      opened.push(t);
      return t;
    }

    it('removes finished old alerts only', async () => {
      const t = await open();
      const delivered = await storeAlert(t, { type: 'rotation_success', credentialName: 'app/one', daysAgo: 100, state: 'delivered' });
      const dead = await storeAlert(t, { type: 'health_check_failed', credentialName: 'app/one', daysAgo: 91, state: 'dead' });
      const pending = await storeAlert(t, { type: 'rotation_success', credentialName: 'app/two', daysAgo: 400, state: 'pending' });
      const recent = await storeAlert(t, { type: 'rotation_success', credentialName: 'app/two', daysAgo: 89, state: 'delivered' });

      assert.equal(await t.vault.alerts.retention(), 2);
      assert.deepEqual(await storedAlertIds(t), [pending, recent].sort());
      assert.equal(await deliveryCount(t, [delivered, dead]), 0, 'deliveries of removed alerts');
      assert.equal(await deliveryCount(t, [pending, recent]), 4, 'deliveries of kept alerts');
      assert.equal(await t.vault.alerts.retention(), 0);
    });

    it('keeps newest lasting condition alert', async () => {
      const t = await open();
      const olderExpired = await storeAlert(t, { type: 'credential_expired', credentialName: 'app/one', daysAgo: 300, state: 'delivered' });
      const newerExpired = await storeAlert(t, { type: 'credential_expired', credentialName: 'app/one', daysAgo: 200, state: 'delivered' });
      const expiring = await storeAlert(t, { type: 'credential_expiring', credentialName: 'app/one', daysAgo: 310, state: 'delivered' });
      const otherCredential = await storeAlert(t, { type: 'credential_expired', credentialName: 'app/two', daysAgo: 300, state: 'delivered' });
      const failed = await storeAlert(t, { type: 'rotation_failed', credentialName: 'app/two', daysAgo: 150, state: 'dead' });
      const olderN8n = await storeAlert(t, { type: 'n8n_unsupported', credentialName: '*', daysAgo: 200, state: 'delivered' });
      const newerN8n = await storeAlert(t, { type: 'n8n_unsupported', credentialName: '*', daysAgo: 100, state: 'delivered' });

      assert.equal(await t.vault.alerts.retention(), 2);
      assert.deepEqual(await storedAlertIds(t), [newerExpired, expiring, otherCredential, failed, newerN8n].sort());
      assert.equal(await deliveryCount(t, [olderExpired, olderN8n]), 0);
    });

    it('never raises a kept condition again', async () => {
      const t = await open();
      await t.vault.registry.create(setupCaller, {
        name: 'app/expired',
        credential_type: 'apiKey',
        provider: 'api',
        value: 'value-of-app/expired',
        expires_at: new Date(t.clock.now().getTime() + 3_600_000).toISOString(),
      });
      t.clock.advanceMs(2 * 3_600_000);
      assert.equal((await t.vault.health.evaluateExpiry()).alerts, 1);
      await t.vault.db.kysely.updateTable('aegis_alert_outbox').set({ state: 'delivered' }).where('alert_type', '=', 'credential_expired').execute();

      t.clock.advanceMs(200 * dayMs);
      await t.vault.alerts.retention();
      assert.equal((await t.vault.health.evaluateExpiry()).alerts, 0);
      assert.equal((await alertsOf(t, 'credential_expired', 'app/expired')).length, 1);
    });

    it('keeps anomaly alerts for the audit retention', async () => {
      const t = await open({ AEGIS_AUDIT_RETENTION_DAYS: '400' });
      const withinAudit = await storeAlert(t, { type: 'audit_anomaly', credentialName: '*', daysAgo: 399, state: 'delivered' });
      await storeAlert(t, { type: 'audit_anomaly', credentialName: '*', daysAgo: 401, state: 'delivered' });

      assert.equal(await t.vault.alerts.retention(), 1);
      assert.deepEqual(await storedAlertIds(t), [withinAudit]);
    });

    it('reads AEGIS_ALERT_RETENTION_DAYS', async () => {
      const t = await open({ AEGIS_ALERT_RETENTION_DAYS: '30' });
      await storeAlert(t, { type: 'rotation_success', credentialName: 'app/one', daysAgo: 31, state: 'delivered' });
      const withinRetention = await storeAlert(t, { type: 'rotation_success', credentialName: 'app/one', daysAgo: 29, state: 'delivered' });

      assert.equal(await t.vault.alerts.retention(), 1);
      assert.deepEqual(await storedAlertIds(t), [withinRetention]);
    });

    it('removes in several pages', async () => {
      const t = await open();
      // More than the 500 alerts one statement looks at, and the pending one is the oldest.
      const pending = await storeAlert(t, { type: 'rotation_success', credentialName: 'app/one', daysAgo: 200, state: 'pending' });
      for (let index = 0; index < 600; index += 1) {
        await storeAlert(t, { type: 'rotation_success', credentialName: `app/${index}`, daysAgo: 100 + index / 100, state: 'delivered' });
      }

      assert.equal(await t.vault.alerts.retention(), 600);
      assert.deepEqual(await storedAlertIds(t), [pending]);
    });

    it('runs in the retention job', async () => {
      const t = await open();
      await storeAlert(t, { type: 'rotation_success', credentialName: 'app/old', daysAgo: 90, state: 'delivered' });
      const recent = await storeAlert(t, { type: 'rotation_success', credentialName: 'app/recent', daysAgo: 1, state: 'delivered' });
      await t.vault.scheduler.tick(t.clock.now());
      t.clock.set(new Date(t.clock.now().getTime() + dayMs).toISOString().slice(0, 10) + 'T03:15:00.000Z');
      await t.vault.scheduler.tick(t.clock.now());

      assert.deepEqual(await storedAlertIds(t), [recent]);
      const list = await call(t.app, 'GET', '/alerts', { token: t.adminToken });
      assert.equal(list.status, 200, list.body);
      assert.equal(list.json.total, 1);
      assert.deepEqual(
        list.json.alerts.map((alert: { credential_name: string }) => alert.credential_name),
        ['app/recent'],
      );
      const dashboard = await call(t.app, 'GET', '/health/dashboard', { token: t.adminToken });
      assert.equal(dashboard.status, 200, dashboard.body);
      assert.deepEqual(
        dashboard.json.alerts.map((alert: { credential: string }) => alert.credential),
        ['app/recent'],
      );
    });
  });
}
