import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/lib/clock.js';
import { testDialects } from '../helpers/databases.js';
import { alertsOf, setupCaller, storedStatus } from '../helpers/health-fixtures.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const hour = 3_600_000;
const start = '2026-06-01T12:00:00.000Z';

async function createExpiring(t: TestVault, name: string, expiresAt: Date, alertThresholdHours?: number): Promise<void> {
  await t.vault.registry.create(setupCaller, {
    name,
    credential_type: 'apiKey',
    provider: 'api',
    value: `value-of-${name}`,
    expires_at: expiresAt.toISOString(),
    ...(alertThresholdHours !== undefined ? { alert_threshold_hours: alertThresholdHours } : {}),
  });
}

for (const dialect of await testDialects()) {
  describe(`expiry alerts on ${dialect}`, () => {
    const opened: TestVault[] = [];
    after(async () => {
      for (const t of opened) await destroyTestVault(t);
    });

    async function open(options: Parameters<typeof openTestVault>[1] = {}): Promise<TestVault> {
      const t = await openTestVault(dialect, { clock: new ManualClock(start), ...options });
      opened.push(t);
      return t;
    }

    it('alerts once per window', async () => {
      let t = await open();
      const name = 'billing/expiring';
      const expiresAt = new Date(new Date(start).getTime() + 8 * 24 * hour);
      await createExpiring(t, name, expiresAt);

      assert.deepEqual(await t.vault.health.evaluateExpiry(), { expiring: 0, expired: 0, alerts: 0 });
      t.clock.set(new Date(expiresAt.getTime() - 168 * hour - 1));
      assert.equal((await t.vault.health.evaluateExpiry()).alerts, 0);
      assert.equal(await storedStatus(t, name), 'active');

      t.clock.set(new Date(expiresAt.getTime() - 168 * hour));
      assert.deepEqual(await t.vault.health.evaluateExpiry(), { expiring: 1, expired: 0, alerts: 1 });
      const expiring = await alertsOf(t, 'credential_expiring', name);
      assert.equal(expiring.length, 1);
      assert.equal(expiring[0]!.message, `🔐 Credential '${name}' expires in 168 hours`);
      assert.equal(expiring[0]!.priority, 'high');
      assert.equal(await storedStatus(t, name), 'expiring');
      const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('alert_sent').where('name', '=', name).executeTakeFirstOrThrow();
      assert.equal(Boolean(row.alert_sent), true);

      for (let run = 0; run < 100; run += 1) {
        t.clock.advanceMs(5 * 60_000);
        assert.equal((await t.vault.health.evaluateExpiry()).alerts, 0, `run ${run}`);
      }
      assert.equal((await alertsOf(t, 'credential_expiring', name)).length, 1);

      // A restart: the same folder and schema, a new process state.
      await t.close();
      t = await open({ clock: t.clock, reuse: { dir: t.dir, ...(t.env.AEGIS_DATABASE_SCHEMA ? { schema: t.env.AEGIS_DATABASE_SCHEMA } : {}) } });
      assert.equal((await t.vault.health.evaluateExpiry()).alerts, 0);
      assert.equal((await alertsOf(t, 'credential_expiring', name)).length, 1);

      t.clock.set(expiresAt);
      assert.equal((await t.vault.health.evaluateExpiry()).alerts, 0, 'expires_at itself is not past yet');
      t.clock.set(new Date(expiresAt.getTime() + 1));
      assert.deepEqual(await t.vault.health.evaluateExpiry(), { expiring: 0, expired: 1, alerts: 1 });
      const expired = await alertsOf(t, 'credential_expired', name);
      assert.equal(expired.length, 1);
      assert.equal(expired[0]!.message, `🚨 Credential '${name}' has EXPIRED`);
      assert.equal(expired[0]!.priority, 'critical');
      assert.equal(await storedStatus(t, name), 'expired');

      for (let run = 0; run < 10; run += 1) {
        t.clock.advanceHours(1);
        assert.equal((await t.vault.health.evaluateExpiry()).alerts, 0);
      }
      assert.equal((await alertsOf(t, 'credential_expired', name)).length, 1);
      assert.equal((await alertsOf(t, 'credential_expiring', name)).length, 1);

      const audited = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('action', '=', 'expired').where('credential_name', '=', name).execute();
      assert.equal(audited.length, 1);
      assert.equal(audited[0]!.actor, 'system');
    });

    it('new expiry date alerts again', async () => {
      const t = await open();
      const name = 'billing/renewed';
      const first = new Date(new Date(start).getTime() + 24 * hour);
      await createExpiring(t, name, first);
      assert.equal((await t.vault.health.evaluateExpiry()).alerts, 1);

      const second = new Date(first.getTime() + 30 * 24 * hour);
      const patched = await call(t.app, 'PATCH', `/credentials/${encodeURIComponent(name)}`, { token: t.adminToken, body: { expires_at: second.toISOString() } });
      assert.equal(patched.status, 200, patched.body);
      assert.equal((await t.vault.health.evaluateExpiry()).alerts, 0);
      assert.equal(await storedStatus(t, name), 'active', 'the stored status leaves expiring with the new date');

      t.clock.set(new Date(second.getTime() - 100 * hour));
      assert.equal((await t.vault.health.evaluateExpiry()).alerts, 1);
      const alerts = await alertsOf(t, 'credential_expiring', name);
      assert.equal(alerts.length, 2);
      assert.equal(alerts[1]!.message, `🔐 Credential '${name}' expires in 100 hours`);
    });

    it('one alert per lead time', async () => {
      const t = await open({ env: { AEGIS_ALERT_LEAD_HOURS: '168,24' } });
      const name = 'billing/two-leads';
      const expiresAt = new Date(new Date(start).getTime() + 8 * 24 * hour);
      await createExpiring(t, name, expiresAt);
      for (let at = new Date(start).getTime(); at <= expiresAt.getTime() + 2 * hour; at += hour) {
        t.clock.set(new Date(at));
        await t.vault.health.evaluateExpiry();
      }
      const expiring = await alertsOf(t, 'credential_expiring', name);
      assert.deepEqual(
        expiring.map((alert) => alert.message),
        [`🔐 Credential '${name}' expires in 168 hours`, `🔐 Credential '${name}' expires in 24 hours`],
      );
      assert.equal((await alertsOf(t, 'credential_expired', name)).length, 1);
    });

    it('late run skips missed leads', async () => {
      const t = await open({ env: { AEGIS_ALERT_LEAD_HOURS: '168,24' } });
      const name = 'billing/late';
      await createExpiring(t, name, new Date(new Date(start).getTime() + 10 * hour));
      assert.equal((await t.vault.health.evaluateExpiry()).alerts, 1);
      assert.equal((await t.vault.health.evaluateExpiry()).alerts, 0);
      const expiring = await alertsOf(t, 'credential_expiring', name);
      assert.equal(expiring.length, 1);
      assert.equal(expiring[0]!.message, `🔐 Credential '${name}' expires in 10 hours`);
    });

    it('own threshold is a lead time', async () => {
      const t = await open();
      const name = 'billing/month-notice';
      const expiresAt = new Date(new Date(start).getTime() + 40 * 24 * hour);
      await createExpiring(t, name, expiresAt, 720);
      t.clock.set(new Date(expiresAt.getTime() - 720 * hour));
      assert.equal((await t.vault.health.evaluateExpiry()).alerts, 1);
      t.clock.set(new Date(expiresAt.getTime() - 168 * hour));
      assert.equal((await t.vault.health.evaluateExpiry()).alerts, 1);
      assert.deepEqual(
        (await alertsOf(t, 'credential_expiring', name)).map((alert) => alert.message),
        [`🔐 Credential '${name}' expires in 720 hours`, `🔐 Credential '${name}' expires in 168 hours`],
      );
    });

    it('retired and failed keep status', async () => {
      const t = await open();
      const expiresAt = new Date(new Date(start).getTime() - hour);
      await createExpiring(t, 'old/retired', expiresAt);
      await createExpiring(t, 'old/failed', expiresAt);
      await t.vault.registry.retire(setupCaller, 'old/retired');
      await t.vault.db.kysely.updateTable('aegis_credentials').set({ status: 'failed' }).where('name', '=', 'old/failed').execute();
      const run = await t.vault.health.evaluateExpiry();
      assert.deepEqual(run, { expiring: 0, expired: 1, alerts: 1 });
      assert.equal(await storedStatus(t, 'old/retired'), 'retired');
      assert.equal(await storedStatus(t, 'old/failed'), 'failed');
      assert.equal((await alertsOf(t, 'credential_expired', 'old/retired')).length, 0);
      assert.equal((await alertsOf(t, 'credential_expired', 'old/failed')).length, 1);
    });
  });
}
