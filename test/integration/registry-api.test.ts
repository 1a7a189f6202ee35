import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

for (const dialect of await testDialects()) {
  describe(`registry API on ${dialect}`, () => {
    let t: TestVault;
    before(async () => {
      t = await openTestVault(dialect);
    });
    after(async () => destroyTestVault(t));

    it('creates a credential with a value as version 1', async () => {
      const created = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name: 'openai/prod', credential_type: 'openAiApi', provider: 'api', value: 'sk-live-1', tags: ['prod'] },
      });
      assert.equal(created.status, 201);
      assert.equal(created.json.name, 'openai/prod');
      assert.equal(created.json.status, 'active');

      const versions = await call(t.app, 'GET', '/credentials/openai%2Fprod/versions', { token: t.adminToken });
      assert.equal(versions.status, 200);
      assert.equal(versions.json.total, 1);
      assert.equal(versions.json.versions[0].version, 1);
      assert.equal(versions.json.versions[0].reason, 'initial');
      assert.equal(versions.json.versions[0].is_current, true);
    });

    it('reads a credential without its value', async () => {
      const read = await call(t.app, 'GET', '/credentials/openai%2Fprod', { token: t.adminToken });
      assert.equal(read.status, 200);
      assert.equal(read.json.credential_details.name, 'openai/prod');
      assert.equal(read.json.credential_details.has_value, true);
      assert.equal(read.json.rotation_info.current_version, 1);
      assert.equal(read.json.health_status.status, 'unknown');
      assert.ok(!read.body.includes('sk-live-1'));
    });

    it('writes a manual_update version when the value changes', async () => {
      const patched = await call(t.app, 'PATCH', '/credentials/openai%2Fprod', {
        token: t.adminToken,
        body: { value: 'sk-live-2', description: 'rotated by hand' },
      });
      assert.equal(patched.status, 200);
      assert.deepEqual(patched.json.updated_fields.sort(), ['description', 'value']);
      const versions = await call(t.app, 'GET', '/credentials/openai%2Fprod/versions', { token: t.adminToken });
      assert.equal(versions.json.total, 2);
      assert.equal(versions.json.versions[0].version, 2);
      assert.equal(versions.json.versions[0].reason, 'manual_update');
      assert.equal(versions.json.versions[0].is_current, true);
      assert.equal(versions.json.versions[1].is_current, false);
    });

    it('pages the versions', async () => {
      const page = await call(t.app, 'GET', '/credentials/openai%2Fprod/versions?limit=1&offset=1', { token: t.adminToken });
      assert.equal(page.status, 200, page.body);
      assert.equal(page.json.total, 2);
      assert.deepEqual(page.json.versions.map((version: { version: number }) => version.version), [1]);
      assert.equal(page.json.versions[0].has_value, true);

      const tooMany = await call(t.app, 'GET', '/credentials/openai%2Fprod/versions?limit=1001', { token: t.adminToken });
      assert.equal(tooMany.status, 400);
      assert.equal(tooMany.json.field, 'querystring.limit');
    });

    it('reveals current and earlier values', async () => {
      const current = await call(t.app, 'GET', '/credentials/openai%2Fprod/value', { token: t.adminToken });
      assert.equal(current.status, 200);
      assert.equal(current.json.value, 'sk-live-2');
      assert.equal(current.json.version, 2);
      const first = await call(t.app, 'GET', '/credentials/openai%2Fprod/value?version=1', { token: t.adminToken });
      assert.equal(first.json.value, 'sk-live-1');
    });

    it('lists with filters and totals', async () => {
      await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name: 'github', credential_type: 'githubApi', provider: 'n8n', provider_credential_id: '17', expires_at: '2026-06-03T12:00:00Z' },
      });
      const all = await call(t.app, 'GET', '/credentials', { token: t.adminToken });
      assert.equal(all.status, 200);
      assert.equal(all.json.total, 2);
      assert.equal(all.json.healthy, 1);
      assert.equal(all.json.expiring, 1);
      const byTag = await call(t.app, 'GET', '/credentials?tag=prod', { token: t.adminToken });
      assert.deepEqual(byTag.json.credentials.map((c: { name: string }) => c.name), ['openai/prod']);
      const expiring = await call(t.app, 'GET', '/credentials?status=expiring', { token: t.adminToken });
      assert.deepEqual(expiring.json.credentials.map((c: { name: string }) => c.name), ['github']);
      const byProvider = await call(t.app, 'GET', '/credentials?provider=n8n&limit=1&offset=0', { token: t.adminToken });
      assert.equal(byProvider.json.credentials.length, 1);
      assert.equal(byProvider.json.total, 1);
    });

    it('reports expired once time passes the expiry', async () => {
      t.clock.advanceHours(49);
      const read = await call(t.app, 'GET', '/credentials/github', { token: t.adminToken });
      assert.equal(read.json.credential_details.status, 'expired');
      const expired = await call(t.app, 'GET', '/credentials?status=expired', { token: t.adminToken });
      assert.deepEqual(expired.json.credentials.map((c: { name: string }) => c.name), ['github']);
    });

    it('retires a credential and rejects later changes', async () => {
      const retired = await call(t.app, 'DELETE', '/credentials/github', { token: t.adminToken });
      assert.equal(retired.status, 200);
      assert.deepEqual(retired.json, { status: 'retired', credential_name: 'github' });
      const patch = await call(t.app, 'PATCH', '/credentials/github', { token: t.adminToken, body: { description: 'x' } });
      assert.equal(patch.status, 409);
      assert.equal(patch.json.code, 'credential_retired');
    });

    it('rejects a duplicate name with 409', async () => {
      const duplicate = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'openai/prod', credential_type: 'x' } });
      assert.equal(duplicate.status, 409);
      assert.equal(duplicate.json.code, 'credential_exists');
    });

    it('keeps limited tokens to their names', async () => {
      const limited = await tokenWith(t, 'ARIA', ['credentials:read'], { namePatterns: ['openai/*'] });
      assert.equal((await call(t.app, 'GET', '/credentials/openai%2Fprod', { token: limited })).status, 200);
      assert.equal((await call(t.app, 'GET', '/credentials/github', { token: limited })).status, 403);
      const list = await call(t.app, 'GET', '/credentials', { token: limited });
      assert.deepEqual(list.json.credentials.map((c: { name: string }) => c.name), ['openai/prod']);
    });

    it('serves /health without a token', async () => {
      const health = await call(t.app, 'GET', '/health');
      assert.equal(health.status, 200);
      assert.equal(health.json.agent, 'AEGIS');
      assert.equal(health.json.credentials_count, 2);
    });

    it('reveal without a stored value says how to store one', async () => {
      const created = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'no/value', credential_type: 'apiKey', provider: 'api' } });
      assert.equal(created.status, 201, created.body);
      const revealed = await call(t.app, 'GET', '/credentials/no%2Fvalue/value', { token: t.adminToken });
      assert.equal(revealed.status, 404, revealed.body);
      assert.equal(revealed.json.code, 'value_not_stored');
      assert.match(revealed.json.detail, /registered without one, or its provider keeps the value\. Store one with PATCH/);
    });
  });
}
