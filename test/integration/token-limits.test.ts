import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { N8nStub } from '../helpers/n8n-stub.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const apiKey = 'token-limits-n8n-key';
const secretData = { accessToken: 'xoxb-token-limits-secret' };

for (const dialect of await testDialects()) {
  describe(`tokens without reveal or with limits on ${dialect}`, () => {
    let stub: N8nStub;
    let t: TestVault;

    before(async () => {
      stub = await N8nStub.start({ apiKey, recentApi: true });
      stub.addCredential({ id: '7', name: 'Slack bot', type: 'slackApi', data: secretData });
      // An n8n credential that the holder of the write token can also read in n8n.
      stub.addCredential({ id: '8', name: 'Readable elsewhere', type: 'slackApi', data: {} });
      t = await openTestVault(dialect, { env: { N8N_URL: stub.url, N8N_API_KEY: apiKey } });
      const created = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name: 'slack/bot', credential_type: 'slackApi', provider: 'n8n', provider_credential_id: '7', value: JSON.stringify(secretData) },
      });
      assert.equal(created.status, 201, created.body);
    });

    after(async () => {
      await destroyTestVault(t);
      await stub.close();
    });

    it('provider_credential_id change needs reveal', async () => {
      const writer = await tokenWith(t, 'writer', ['credentials:write', 'credentials:rotate']);

      const patched = await call(t.app, 'PATCH', '/credentials/slack%2Fbot', { token: writer, body: { provider_credential_id: '8' } });
      assert.equal(patched.status, 403, patched.body);
      assert.match(patched.json.detail, /provider_credential_id .* needs the credentials:reveal scope/);

      // A rollback would otherwise write version 1's value into the n8n credential the writer chose.
      const rolledBack = await call(t.app, 'POST', '/credentials/slack%2Fbot/rollback', { token: writer, body: { version: 1 } });
      assert.notEqual(rolledBack.status, 200, rolledBack.body);
      assert.deepEqual(stub.credentials.get('8')!.data, {});
      const detail = await call(t.app, 'GET', '/credentials/slack%2Fbot', { token: t.adminToken });
      assert.equal(detail.json.credential_details.provider_credential_id, '7');
    });

    it('provider_credential_id change works with reveal', async () => {
      const revealer = await tokenWith(t, 'revealer', ['credentials:write', 'credentials:reveal']);

      const patched = await call(t.app, 'PATCH', '/credentials/slack%2Fbot', { token: revealer, body: { provider_credential_id: '8' } });
      assert.equal(patched.status, 200, patched.body);
      const back = await call(t.app, 'PATCH', '/credentials/slack%2Fbot', { token: revealer, body: { provider_credential_id: '7' } });
      assert.equal(back.status, 200, back.body);
    });

    it('limited token cannot sync n8n', async () => {
      // n8n renamed and retyped the credential, and lists one AEGIS does not have yet.
      stub.credentials.get('7')!.name = 'Slack bot (renamed)';
      stub.credentials.get('7')!.type = 'slackOAuth2Api';
      stub.addCredential({ id: '9', name: 'New in n8n', type: 'httpHeaderAuth', data: {} });
      const limited = await tokenWith(t, 'team-a', ['credentials:write', 'credentials:read'], { namePatterns: ['team-a/*'] });
      const countCredentials = async () => (await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').execute()).length;
      const before = await countCredentials();

      const synced = await call(t.app, 'POST', '/sync/n8n', { token: limited });

      assert.equal(synced.status, 403, synced.body);
      assert.equal(synced.json.code, 'forbidden');
      assert.doesNotMatch(synced.body, /slack\/bot/);
      const detail = (await call(t.app, 'GET', '/credentials/slack%2Fbot', { token: t.adminToken })).json.credential_details;
      assert.equal(detail.credential_type, 'slackApi');
      assert.equal(detail.metadata.n8n_name, undefined);
      assert.equal(await countCredentials(), before);
      const denied = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('action', '=', 'synced').where('actor', '=', 'team-a').executeTakeFirstOrThrow();
      assert.equal(Boolean(denied.success), false);
      assert.match(denied.error_message ?? '', /^forbidden: /);
    });

    it('limited token cannot probe names', async () => {
      const hidden = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'team-b/db', credential_type: 'apiKey', provider: 'api', tags: ['b'], value: 'team-b-value' } });
      assert.equal(hidden.status, 201, hidden.body);
      const byName = await tokenWith(t, 'prober-name', ['credentials:read', 'credentials:write', 'credentials:rotate', 'credentials:reveal', 'audit:read'], { namePatterns: ['team-a/*'] });
      const byTag = await tokenWith(t, 'prober-tag', ['credentials:read', 'credentials:write', 'credentials:rotate', 'credentials:reveal', 'audit:read'], { tags: ['a'] });
      const requests: Array<[method: 'GET' | 'POST' | 'PATCH' | 'DELETE', suffix: string, body?: unknown]> = [
        ['GET', ''],
        ['GET', '/versions'],
        ['GET', '/value'],
        ['GET', '/health-checks'],
        ['POST', '/test'],
        ['PATCH', '', { description: 'probe' }],
        ['DELETE', ''],
        ['POST', '/rotate', { trigger: 'manual', value: 'probe-value-1' }],
        ['POST', '/rollback', {}],
        ['POST', '/apply', { workflow_id: 'wf1', node_name: 'Node' }],
      ];

      for (const [actor, token] of [['prober-name', byName], ['prober-tag', byTag]] as const) {
        for (const [method, suffix, body] of requests) {
          const existing = await call(t.app, method, `/credentials/team-b%2Fdb${suffix}`, { token, ...(body !== undefined ? { body } : {}) });
          const missing = await call(t.app, method, `/credentials/team-b%2Fnone${suffix}`, { token, ...(body !== undefined ? { body } : {}) });
          assert.equal(existing.status, 403, `${actor} ${method} existing${suffix}: ${existing.body}`);
          assert.equal(missing.status, existing.status, `${actor} ${method} missing${suffix}: ${missing.body}`);
          assert.equal(missing.json.code, existing.json.code, `${actor} ${method}${suffix}`);
        }
        const entries = await t.vault.db.kysely.selectFrom('aegis_audit_log').select(['credential_name', 'credential_id']).where('actor', '=', actor).where('success', '=', false).execute();
        assert.ok(entries.length >= requests.length, `${actor} failures are audited`);
        assert.deepEqual(entries.filter((entry) => entry.credential_id !== null), [], `${actor} entries name no id of an unreached credential`);
      }

      // A token that would reach the name still learns that it is missing.
      const missingOwn = await call(t.app, 'GET', '/credentials/team-a%2Fnone', { token: byName });
      assert.equal(missingOwn.status, 404, missingOwn.body);
      assert.equal(missingOwn.json.code, 'credential_not_found');
    });
  });
}
