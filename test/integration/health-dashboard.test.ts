import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { setupCaller } from '../helpers/health-fixtures.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const hour = 3_600_000;

/** One credential per status, with the colour and label the dashboard must show for it. */
const seeded = [
  { name: 'set/active', expiresInHours: null, stored: 'active', status: 'active', colour: 'green', label: 'Healthy' },
  { name: 'set/expiring', expiresInHours: 10, stored: 'active', status: 'expiring', colour: 'yellow', label: 'Expiring Soon' },
  { name: 'set/expired', expiresInHours: -2, stored: 'active', status: 'expired', colour: 'red', label: 'Action Required' },
  { name: 'set/failed', expiresInHours: 500, stored: 'failed', status: 'failed', colour: 'red', label: 'Action Required' },
  { name: 'set/rotating', expiresInHours: null, stored: 'rotating', status: 'rotating', colour: 'blue', label: 'Rotation in Progress' },
  { name: 'set/retired', expiresInHours: null, stored: 'retired', status: 'retired', colour: 'gray', label: 'Retired' },
  { name: 'set/soon', expiresInHours: 50, stored: 'active', status: 'expiring', colour: 'yellow', label: 'Expiring Soon' },
  { name: 'set/later', expiresInHours: 200, stored: 'active', status: 'active', colour: 'green', label: 'Healthy' },
] as const;

for (const dialect of await testDialects()) {
  describe(`health dashboard on ${dialect}`, () => {
    let t: TestVault;

    before(async () => {
      t = await openTestVault(dialect);
      const now = t.clock.now().getTime();
      for (const entry of seeded) {
        await t.vault.registry.create(setupCaller, {
          name: entry.name,
          credential_type: 'apiKey',
          provider: 'api',
          value: `value-of-${entry.name}`,
          tags: entry.name === 'set/soon' ? ['team-a'] : [],
          ...(entry.expiresInHours === null ? {} : { expires_at: new Date(now + entry.expiresInHours * hour).toISOString() }),
        });
        await t.vault.db.kysely.updateTable('aegis_credentials').set({ status: entry.stored }).where('name', '=', entry.name).execute();
      }
    });
    after(async () => destroyTestVault(t));

    async function dashboard(query = '', token = t.adminToken) {
      const response = await call(t.app, 'GET', `/health/dashboard${query}`, { token });
      assert.equal(response.status, 200, response.body);
      return response.json;
    }

    it('colours and labels every status', async () => {
      const body = await dashboard();
      for (const entry of seeded) {
        const listed = body.credentials.find((credential: { name: string }) => credential.name === entry.name);
        assert.ok(listed, `${entry.name} missing`);
        assert.equal(listed.status, entry.status, entry.name);
        assert.equal(listed.colour, entry.colour, entry.name);
        assert.equal(listed.label, entry.label, entry.name);
        assert.equal(listed.health, 'unknown', entry.name);
        assert.equal(listed.provider, 'api');
        assert.equal(listed.credential_type, 'apiKey');
        assert.equal(listed.expires_in_hours, entry.expiresInHours, entry.name);
      }
    });

    it('counts every status', async () => {
      const body = await dashboard();
      assert.deepEqual(body.summary, { total: 8, healthy: 2, expiring: 2, expired: 1, failed: 1, rotating: 1, retired: 1 });
    });

    it('pages in name order', async () => {
      const first = await dashboard('?limit=3&offset=0');
      const second = await dashboard('?limit=3&offset=3');
      const names = [...seeded].map((entry) => entry.name).sort();
      assert.deepEqual(first.credentials.map((entry: { name: string }) => entry.name), names.slice(0, 3));
      assert.deepEqual(second.credentials.map((entry: { name: string }) => entry.name), names.slice(3, 6));
      assert.equal(first.total, 8);
      assert.equal(first.summary.total, 8);
    });

    it('filters by status', async () => {
      const body = await dashboard('?status=expiring');
      assert.deepEqual(body.credentials.map((entry: { name: string }) => entry.name), ['set/expiring', 'set/soon']);
      assert.equal(body.total, 2);
      assert.equal(body.summary.total, 8);
    });

    it('shows the newest alerts', async () => {
      await t.vault.health.evaluateExpiry();
      const body = await dashboard();
      const types = body.alerts.map((alert: { credential: string; alert_type: string }) => `${alert.alert_type} ${alert.credential}`).sort();
      assert.deepEqual(types, ['credential_expired set/expired', 'credential_expiring set/expiring', 'credential_expiring set/soon']);
      const expired = body.alerts.find((alert: { alert_type: string }) => alert.alert_type === 'credential_expired');
      assert.equal(expired.message, "🚨 Credential 'set/expired' has EXPIRED");
      assert.equal(expired.created_at, t.clock.now().toISOString());
      assert.equal((await dashboard('?alert_limit=1')).alerts.length, 1);
    });

    it('limited token sees its own', async () => {
      const token = await tokenWith(t, 'team-a-reader', ['credentials:read'], { tags: ['team-a'] });
      const body = await dashboard('', token);
      assert.deepEqual(body.credentials.map((entry: { name: string }) => entry.name), ['set/soon']);
      assert.equal(body.summary.total, 1);
      assert.deepEqual(body.alerts.map((alert: { credential: string }) => alert.credential), ['set/soon']);
    });

    it('expiring list honours threshold_hours', async () => {
      const expiring = async (query: string, token = t.adminToken) => {
        const response = await call(t.app, 'GET', `/health/expiring${query}`, { token });
        assert.equal(response.status, 200, response.body);
        return response.json;
      };
      const names = (body: { credentials: Array<{ name: string }> }) => body.credentials.map((entry) => entry.name);

      const within24 = await expiring('?threshold_hours=24');
      assert.deepEqual(names(within24), ['set/expiring']);
      assert.equal(within24.count, 1);
      assert.equal(within24.credentials[0].expires_in_hours, 10);

      // The failed credential expires in 500 hours: it is listed, with its status.
      const within600 = await expiring('?threshold_hours=600');
      assert.deepEqual(names(within600), ['set/expiring', 'set/soon', 'set/later', 'set/failed']);
      assert.equal(within600.credentials[3].status, 'failed');

      const byOwnThreshold = await expiring('');
      assert.deepEqual(names(byOwnThreshold), ['set/expiring', 'set/soon']);
      assert.equal(byOwnThreshold.count, 2);

      const paged = await expiring('?threshold_hours=600&limit=2&offset=1');
      assert.deepEqual(names(paged), ['set/soon', 'set/later']);
      assert.equal(paged.count, 4);

      const token = await tokenWith(t, 'team-a-expiring', ['credentials:read'], { tags: ['team-a'] });
      const limited = await expiring('?threshold_hours=600', token);
      assert.deepEqual(names(limited), ['set/soon']);
      assert.equal(limited.count, 1);
    });

    it('rejects a bad threshold', async () => {
      for (const query of ['?threshold_hours=-1', '?threshold_hours=abc', '?threshold_hours=1.5', '?limit=0']) {
        const response = await call(t.app, 'GET', `/health/expiring${query}`, { token: t.adminToken });
        assert.equal(response.status, 400, `${query}: ${response.body}`);
      }
      const response = await call(t.app, 'GET', '/health/dashboard?status=broken', { token: t.adminToken });
      assert.equal(response.status, 400, response.body);
    });
  });
}
