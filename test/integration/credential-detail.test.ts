import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/**
 * GET /credentials/{name} reads the credential, its versions and its latest health check in one
 * statement, and on SQLite serves it from the read cache until the database changes.
 */
for (const dialect of await testDialects()) {
  describe(`credential detail on ${dialect}`, () => {
    let t: TestVault;

    before(async () => {
      t = await openTestVault(dialect);
      const created = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name: 'detail/key', credential_type: 'apiKey', provider: 'api', value: 'detail-value-1' },
      });
      assert.equal(created.status, 201, created.body);
    });

    after(async () => destroyTestVault(t));

    async function credentialId(): Promise<string> {
      const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'detail/key').executeTakeFirstOrThrow();
      return row.id;
    }

    async function insertCheck(id: string, status: string, error: string | null, checkedAt: string): Promise<void> {
      await t.vault.db.kysely
        .insertInto('aegis_health_checks')
        .values({ id, credential_id: await credentialId(), checked_at: checkedAt, status, response_time_ms: 12, details: '{}', error_message: error })
        .execute();
    }

    it('shows the version count and current version', async () => {
      const updated = await call(t.app, 'PATCH', '/credentials/detail%2Fkey', { token: t.adminToken, body: { value: 'detail-value-2' } });
      assert.equal(updated.status, 200, updated.body);
      const read = await call(t.app, 'GET', '/credentials/detail%2Fkey', { token: t.adminToken });
      assert.equal(read.status, 200, read.body);
      assert.equal(read.json.rotation_info.version_count, 2);
      assert.equal(read.json.rotation_info.current_version, 2);
    });

    it('takes every health field from one check when two share a time', async () => {
      const at = '2026-06-01T11:00:00.000Z';
      await insertCheck('00000000-0000-4000-8000-000000000001', 'unhealthy', 'HTTP 500', at);
      await insertCheck('00000000-0000-4000-8000-000000000002', 'healthy', null, at);
      const read = await call(t.app, 'GET', '/credentials/detail%2Fkey', { token: t.adminToken });
      assert.equal(read.status, 200, read.body);
      assert.equal(read.json.health_status.status, 'healthy');
      assert.equal(read.json.health_status.error_message, null);
      assert.equal(read.json.health_status.checked_at, at);
    });

    it('shows a newer check at once, also after a cached read', async () => {
      await call(t.app, 'GET', '/credentials/detail%2Fkey', { token: t.adminToken });
      await insertCheck('00000000-0000-4000-8000-000000000003', 'unhealthy', 'HTTP 503', '2026-06-01T11:30:00.000Z');
      const read = await call(t.app, 'GET', '/credentials/detail%2Fkey', { token: t.adminToken });
      assert.equal(read.json.health_status.status, 'unhealthy');
      assert.equal(read.json.health_status.error_message, 'HTTP 503');
    });
  });
}
