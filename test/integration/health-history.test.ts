import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fromJson } from '../../src/db/values.js';
import { testDialects } from '../helpers/databases.js';
import { createApiCredential } from '../helpers/health-fixtures.js';
import { startHttpStub, type HttpStub } from '../helpers/http-stub.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

for (const dialect of await testDialects()) {
  describe(`health-check history on ${dialect}`, () => {
    let t: TestVault;
    let stub: HttpStub;
    /** The HTTP status the stand-in API returns to the next test request. */
    let answer = 200;
    const name = 'billing/api-key';
    const path = `/credentials/${encodeURIComponent(name)}/health-checks`;
    /** The instant of each check, oldest first. */
    const checkedAt: string[] = [];

    before(async () => {
      stub = await startHttpStub((_request, response) => {
        response.writeHead(answer);
        response.end();
      });
      t = await openTestVault(dialect);
      await createApiCredential(t, name, stub.url, { tags: ['billing'] });
      await createApiCredential(t, 'other/api-key', stub.url);
      for (const status of [200, 401, 200]) {
        answer = status;
        t.clock.advanceHours(1);
        const response = await call(t.app, 'POST', `/credentials/${encodeURIComponent(name)}/test`, { token: t.adminToken });
        assert.equal(response.status, 200, response.body);
        checkedAt.push(t.clock.now().toISOString());
      }
    });
    after(async () => {
      await destroyTestVault(t);
      await stub.close();
    });

    it('lists checks newest first', async () => {
      const response = await call(t.app, 'GET', path, { token: t.adminToken });
      assert.equal(response.status, 200, response.body);
      assert.equal(response.json.credential_name, name);
      assert.equal(response.json.total, 3);
      assert.deepEqual(response.json.checks.map((check: { checked_at: string }) => check.checked_at), [...checkedAt].reverse());
      assert.deepEqual(response.json.checks.map((check: { status: string }) => check.status), ['healthy', 'unhealthy', 'healthy']);
      assert.equal(response.json.checks[1].error_message, 'test request answered HTTP 401');
      assert.equal(response.json.checks[0].error_message, null);
      for (const check of response.json.checks) assert.equal(typeof check.response_time_ms, 'number');
      assert.equal('details' in response.json.checks[0], false);
    });

    it('pages with limit and offset', async () => {
      const first = await call(t.app, 'GET', `${path}?limit=2`, { token: t.adminToken });
      assert.equal(first.status, 200, first.body);
      assert.deepEqual(first.json.checks.map((check: { checked_at: string }) => check.checked_at), [checkedAt[2], checkedAt[1]]);
      assert.equal(first.json.total, 3);

      const second = await call(t.app, 'GET', `${path}?limit=2&offset=2`, { token: t.adminToken });
      assert.equal(second.status, 200, second.body);
      assert.deepEqual(second.json.checks.map((check: { checked_at: string }) => check.checked_at), [checkedAt[0]]);
      assert.equal(second.json.total, 3);

      const past = await call(t.app, 'GET', `${path}?offset=10`, { token: t.adminToken });
      assert.deepEqual(past.json.checks, []);
      assert.equal(past.json.total, 3);
    });

    it('unchecked credential has none', async () => {
      const response = await call(t.app, 'GET', '/credentials/other%2Fapi-key/health-checks', { token: t.adminToken });
      assert.equal(response.status, 200, response.body);
      assert.deepEqual(response.json.checks, []);
      assert.equal(response.json.total, 0);
    });

    it('records the read in audit', async () => {
      const reader = await tokenWith(t, 'history-reader', ['credentials:read']);
      const response = await call(t.app, 'GET', `${path}?limit=1`, { token: reader });
      assert.equal(response.status, 200, response.body);
      const entry = await t.vault.db.kysely
        .selectFrom('aegis_audit_log')
        .selectAll()
        .where('actor', '=', 'history-reader')
        .where('action', '=', 'health_checks_read')
        .executeTakeFirstOrThrow();
      assert.equal(entry.credential_name, name);
      assert.ok(entry.success);
      assert.deepEqual(fromJson(entry.details), { returned: 1, total: 3 });
    });

    it('limited token cannot reach others', async () => {
      const limited = await tokenWith(t, 'other-reader', ['credentials:read'], { namePatterns: ['other/*'] });
      const denied = await call(t.app, 'GET', path, { token: limited });
      assert.equal(denied.status, 403, denied.body);
      const allowed = await call(t.app, 'GET', '/credentials/other%2Fapi-key/health-checks', { token: limited });
      assert.equal(allowed.status, 200, allowed.body);

      const byTag = await tokenWith(t, 'billing-reader', ['credentials:read'], { tags: ['billing'] });
      const tagged = await call(t.app, 'GET', path, { token: byTag });
      assert.equal(tagged.status, 200, tagged.body);
      assert.equal(tagged.json.total, 3);

      const failure = await t.vault.db.kysely
        .selectFrom('aegis_audit_log')
        .selectAll()
        .where('actor', '=', 'other-reader')
        .where('action', '=', 'health_checks_read')
        .where('success', '=', false)
        .executeTakeFirst();
      assert.ok(failure, 'the refused read has no audit entry');
    });

    it('unknown name gets 404', async () => {
      const response = await call(t.app, 'GET', '/credentials/no-such-name/health-checks', { token: t.adminToken });
      assert.equal(response.status, 404, response.body);
      assert.equal(response.json.code, 'credential_not_found');
    });

    it('rejects invalid paging', async () => {
      for (const bad of ['limit=0', 'limit=1001', 'offset=-1', 'since=1']) {
        const response = await call(t.app, 'GET', `${path}?${bad}`, { token: t.adminToken });
        assert.equal(response.status, 400, `${bad}: ${response.body}`);
      }
    });

    it('needs credentials:read scope', async () => {
      const auditor = await tokenWith(t, 'auditor', ['audit:read']);
      const response = await call(t.app, 'GET', path, { token: auditor });
      assert.equal(response.status, 403, response.body);
    });
  });
}
