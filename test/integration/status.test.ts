import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { listCredentials } from '../../src/registry/credentials.repository.js';
import { effectiveStatus } from '../../src/registry/status.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/** Credentials placed around every boundary of the status rule, relative to the test clock's start. */
const cases = [
  { name: 'no-expiry', expiresInHours: null, threshold: 168, stored: 'active', expected: 'active' },
  { name: 'far-expiry', expiresInHours: 500, threshold: 168, stored: 'active', expected: 'active' },
  { name: 'window-edge', expiresInHours: 168, threshold: 168, stored: 'active', expected: 'expiring' },
  { name: 'just-outside', expiresInHours: 169, threshold: 168, stored: 'active', expected: 'active' },
  { name: 'zero-threshold', expiresInHours: 1, threshold: 0, stored: 'active', expected: 'active' },
  { name: 'past-expiry', expiresInHours: -1, threshold: 168, stored: 'active', expected: 'expired' },
  { name: 'expired-rotating', expiresInHours: -1, threshold: 168, stored: 'rotating', expected: 'expired' },
  { name: 'rotating', expiresInHours: 10, threshold: 168, stored: 'rotating', expected: 'rotating' },
  { name: 'failed', expiresInHours: 10, threshold: 168, stored: 'failed', expected: 'failed' },
  { name: 'retired-expired', expiresInHours: -1, threshold: 168, stored: 'retired', expected: 'retired' },
  { name: 'stale-expiring', expiresInHours: 1000, threshold: 168, stored: 'expiring', expected: 'active' },
] as const;

for (const dialect of await testDialects()) {
  describe(`status rule on ${dialect}`, () => {
    let t: TestVault;
    before(async () => {
      t = await openTestVault(dialect);
      const now = t.clock.now().getTime();
      for (const entry of cases) {
        const expiresAt = entry.expiresInHours === null ? null : new Date(now + entry.expiresInHours * 3_600_000).toISOString();
        const created = await call(t.app, 'POST', '/credentials', {
          token: t.adminToken,
          body: { name: entry.name, credential_type: 'test', provider: 'api', expires_at: expiresAt, alert_threshold_hours: entry.threshold },
        });
        assert.equal(created.status, 201, created.body);
        await t.vault.db.kysely.updateTable('aegis_credentials').set({ status: entry.stored }).where('name', '=', entry.name).execute();
      }
    });
    after(async () => destroyTestVault(t));

    it('orders expired, rotating, failed, expiring', async () => {
      for (const entry of cases) {
        const read = await call(t.app, 'GET', `/credentials/${entry.name}`, { token: t.adminToken });
        assert.equal(read.json.credential_details.status, entry.expected, entry.name);
      }
    });

    it('agrees between SQL and code', async () => {
      const now = t.clock.now();
      const page = await listCredentials(t.vault.db.kysely, t.vault.db.dialect, {}, { limit: 100, offset: 0 }, now);
      const expectedCounts: Record<string, number> = {};
      for (const credential of page.credentials) {
        const status = effectiveStatus(credential, now);
        expectedCounts[status] = (expectedCounts[status] ?? 0) + 1;
      }
      for (const [status, count] of Object.entries(page.byStatus)) {
        assert.equal(count, expectedCounts[status] ?? 0, status);
      }
    });

    it('filters by the status as of now', async () => {
      for (const status of ['active', 'expiring', 'expired', 'rotating', 'failed', 'retired']) {
        const listed = await call(t.app, 'GET', `/credentials?status=${status}`, { token: t.adminToken });
        const expected = cases.filter((entry) => entry.expected === status).map((entry) => entry.name).sort();
        assert.deepEqual(listed.json.credentials.map((c: { name: string }) => c.name), expected, status);
      }
    });
  });

  describe(`status of a new credential on ${dialect}`, () => {
    let t: TestVault;
    before(async () => {
      t = await openTestVault(dialect);
    });
    after(async () => destroyTestVault(t));

    it('create returns status as of now', async () => {
      const now = t.clock.now().getTime();
      const created = [
        { name: 'new-expired', expiresInHours: -1, expected: 'expired' },
        { name: 'new-expiring', expiresInHours: 24, expected: 'expiring' },
        { name: 'new-active', expiresInHours: 500, expected: 'active' },
      ];
      for (const entry of created) {
        const expiresAt = new Date(now + entry.expiresInHours * 3_600_000).toISOString();
        const response = await call(t.app, 'POST', '/credentials', {
          token: t.adminToken,
          body: { name: entry.name, credential_type: 'test', provider: 'api', expires_at: expiresAt, alert_threshold_hours: 168 },
        });
        assert.equal(response.status, 201, response.body);
        assert.equal(response.json.status, entry.expected, entry.name);

        const read = await call(t.app, 'GET', `/credentials/${entry.name}`, { token: t.adminToken });
        assert.equal(read.json.credential_details.status, entry.expected, entry.name);
      }
    });
  });
}
