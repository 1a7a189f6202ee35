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
  });
}
