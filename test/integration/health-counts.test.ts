import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/** Waits until the database reports a change count, which PostgreSQL does once its listener hears its first heartbeat. */
async function changeCountReady(t: TestVault): Promise<void> {
  const deadline = performance.now() + 5_000;
  while (t.vault.db.changeCount?.() === undefined) {
    if (performance.now() > deadline) assert.fail('the database reported no change count within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

for (const dialect of await testDialects()) {
  describe(`GET /health counts on ${dialect}`, () => {
    let t: TestVault;

    before(async () => {
      t = await openTestVault(dialect);
      await changeCountReady(t);
    });
    after(async () => destroyTestVault(t));

    it('reuses counts within a second', async () => {
      // Its 24-hour alert threshold starts 300 ms from now, so it turns from active to expiring then.
      const expiresAt = new Date(t.clock.now().getTime() + 24 * 3_600_000 + 300).toISOString();
      const created = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name: 'counts/soon', credential_type: 'apiKey', provider: 'api', value: 'counted-value-1', expires_at: expiresAt, alert_threshold_hours: 24 },
      });
      assert.equal(created.status, 201, created.body);
      // PostgreSQL reports this process's own commit again when its notice arrives, which moves the change count.
      await t.vault.db.changesHeard?.();

      const first = await call(t.app, 'GET', '/health');
      assert.equal(first.json.healthy_count, 1);
      assert.equal(first.json.expiring_count, 0);

      t.clock.advanceMs(500);
      const reused = await call(t.app, 'GET', '/health');
      assert.equal(reused.json.healthy_count, 1);
      assert.equal(reused.json.expiring_count, 0);

      t.clock.advanceMs(600);
      const counted = await call(t.app, 'GET', '/health');
      assert.equal(counted.json.healthy_count, 0);
      assert.equal(counted.json.expiring_count, 1);
    });

    it('counts again after a change', async () => {
      const before = await call(t.app, 'GET', '/health');
      const created = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name: 'counts/new', credential_type: 'apiKey', provider: 'api', value: 'counted-value-2' },
      });
      assert.equal(created.status, 201, created.body);

      const after = await call(t.app, 'GET', '/health');
      assert.equal(after.json.credentials_count, before.json.credentials_count + 1);
      assert.equal(after.json.healthy_count, before.json.healthy_count + 1);
    });
  });
}
