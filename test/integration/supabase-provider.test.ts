import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { sendJson, startHttpStub, type HttpStub } from '../helpers/http-stub.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const accessToken = 'sbp_test_access_token_0123456789';
const projectRef = 'abcdefghijklmnopqrst';
const oldKey = 'sb_secret_old_key_0123456789abcdef';

interface StoredKey {
  id: string;
  type: string;
  name: string;
  api_key: string;
}

/**
 * A stand-in for the Supabase Management API and one project's REST endpoint. It records each call in
 * order (create, rest:<key id>, list, delete:<key id>) and accepts a key at /rest/v1/ when it exists and
 * is not in `rejected`.
 */
class SupabaseStandIn {
  keys: StoredKey[] = [];
  calls: string[] = [];
  rejected = new Set<string>();
  /** The Authorization header of the last /rest/v1/ request. */
  restAuthorization: string | undefined;
  created = 0;

  reset(): void {
    this.keys = [{ id: 'key-old', type: 'secret', name: 'default', api_key: oldKey }, { id: 'key-anon', type: 'legacy', name: 'anon', api_key: 'eyJanon.legacy.jwt' }];
    this.calls = [];
    this.rejected.clear();
    this.created = 0;
  }

  handler(): Parameters<typeof startHttpStub>[0] {
    return (request, response) => {
      const url = new URL(request.url, 'http://stand-in');
      if (url.pathname === '/rest/v1/') {
        const key = this.keys.find((entry) => entry.api_key === request.headers.apikey);
        this.calls.push(`rest:${key?.id ?? 'unknown'}`);
        this.restAuthorization = request.headers.authorization;
        return response.writeHead(key && !this.rejected.has(key.id) ? 200 : 401).end('{}');
      }
      if (request.headers.authorization !== `Bearer ${accessToken}`) return sendJson(response, 401, { message: 'bad token' });
      const base = `/v1/projects/${projectRef}/api-keys`;
      if (request.method === 'POST' && url.pathname === base) {
        const body = JSON.parse(request.body) as { type: string; name: string };
        this.created += 1;
        const key = { id: `key-new-${this.created}`, type: body.type, name: body.name, api_key: `sb_secret_new_key_${this.created}_abcdefghij` };
        this.keys.push(key);
        this.calls.push('create');
        return sendJson(response, 201, { ...key, secret_jwt_template: { role: 'service_role' } });
      }
      if (request.method === 'GET' && url.pathname === base && url.searchParams.get('reveal') === 'true') {
        this.calls.push('list');
        return sendJson(response, 200, this.keys);
      }
      const deleted = request.method === 'DELETE' && url.pathname.startsWith(`${base}/`) ? url.pathname.slice(base.length + 1) : null;
      if (deleted !== null) {
        this.calls.push(`delete:${deleted}`);
        this.keys = this.keys.filter((entry) => entry.id !== deleted);
        return sendJson(response, 200, { id: deleted });
      }
      return sendJson(response, 404, { message: 'not found' });
    };
  }
}

for (const dialect of await testDialects()) {
  describe(`supabase provider (${dialect})`, () => {
    let t: TestVault;
    let stub: HttpStub;
    const standIn = new SupabaseStandIn();
    let counter = 0;

    before(async () => {
      stub = await startHttpStub(standIn.handler());
      t = await openTestVault(dialect, { env: { SUPABASE_ACCESS_TOKEN: accessToken, SUPABASE_API_URL: stub.url } });
    });
    beforeEach(() => standIn.reset());
    after(async () => {
      await stub.close();
      await destroyTestVault(t);
    });

    async function createKey(keyType: string, value: string): Promise<string> {
      counter += 1;
      const name = `supabase/${keyType}-${counter}`;
      const created = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name, credential_type: 'supabaseApi', provider: 'supabase', provider_config: { project_ref: projectRef, key_type: keyType, project_url: stub.url }, value },
      });
      assert.equal(created.status, 201, created.body);
      return encodeURIComponent(name);
    }

    it('health check sends apikey', async () => {
      const name = await createKey('secret', oldKey);
      const tested = await call(t.app, 'POST', `/credentials/${name}/test`, { token: t.adminToken });
      assert.equal(tested.json.status, 'healthy', tested.body);
      assert.equal(standIn.restAuthorization, undefined);
    });

    it('legacy check sends bearer', async () => {
      const name = await createKey('anon', 'eyJanon.legacy.jwt');
      const tested = await call(t.app, 'POST', `/credentials/${name}/test`, { token: t.adminToken });
      assert.equal(tested.json.status, 'healthy', tested.body);
      assert.equal(standIn.restAuthorization, 'Bearer eyJanon.legacy.jwt');
    });

    it('bad config names field', async () => {
      const response = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name: 'supabase/bad', credential_type: 'supabaseApi', provider: 'supabase', provider_config: { project_ref: projectRef, key_type: 'root', project_url: stub.url } },
      });
      assert.equal(response.status, 400, response.body);
      assert.equal(response.json.field, 'provider_config.key_type');
    });

    it('emergency rotation deletes old after test', async () => {
      const name = await createKey('secret', oldKey);
      const rotated = await call(t.app, 'POST', `/credentials/${name}/rotate`, { token: t.adminToken, body: { trigger: 'emergency' } });
      assert.equal(rotated.status, 200, rotated.body);
      assert.equal(rotated.json.new_version, 2);
      assert.equal(rotated.json.revoked_old_value, true);
      assert.deepEqual(standIn.calls, ['create', 'rest:key-new-1', 'list', 'delete:key-old']);
      assert.ok(!standIn.keys.some((key) => key.id === 'key-old'), 'the old key is still at the project');

      const revealed = await call(t.app, 'GET', `/credentials/${name}/value`, { token: t.adminToken });
      assert.equal(revealed.json.value, 'sb_secret_new_key_1_abcdefghij');
      assert.ok(!rotated.body.includes('sb_secret_'), 'the rotation response contains a key');
      assert.ok(!t.logs.text().includes('sb_secret_'), 'the logs contain a key');
      assert.ok(!t.logs.text().includes(accessToken), 'the logs contain the access token');
    });

    it('manual rotation deletes old key', async () => {
      const name = await createKey('secret', oldKey);
      const rotated = await call(t.app, 'POST', `/credentials/${name}/rotate`, { token: t.adminToken, body: { trigger: 'manual' } });
      assert.equal(rotated.status, 200, rotated.body);
      assert.equal(rotated.json.revoked_old_value, true);
      // Supabase secret keys declare revokeAfterRotation, so every rotation deletes the old key after the new one passed.
      assert.deepEqual(standIn.calls, ['create', 'rest:key-new-1', 'list', 'delete:key-old']);
      assert.ok(!standIn.keys.some((key) => key.id === 'key-old'), 'the old key is still at the project');
    });

    it('failed test keeps old key', async () => {
      const name = await createKey('secret', oldKey);
      standIn.rejected.add('key-new-1');
      const rotated = await call(t.app, 'POST', `/credentials/${name}/rotate`, { token: t.adminToken, body: { trigger: 'emergency' } });
      assert.equal(rotated.status, 502, rotated.body);
      assert.equal(rotated.json.code, 'rotation_failed');
      assert.ok(standIn.keys.some((key) => key.id === 'key-old'), 'the old key was deleted');
      assert.ok(!standIn.calls.includes('delete:key-old'), `calls: ${standIn.calls.join(', ')}`);
      // The rejected new key is deleted, so no unused live key stays at the project.
      assert.deepEqual(standIn.calls, ['create', 'rest:key-new-1', 'list', 'delete:key-new-1']);

      const revealed = await call(t.app, 'GET', `/credentials/${name}/value`, { token: t.adminToken });
      assert.equal(revealed.json.value, oldKey);
      assert.ok(!rotated.body.includes('sb_secret_'), 'the problem contains a key');
    });

    it('legacy keys are not rotatable', async () => {
      for (const keyType of ['anon', 'service_role']) {
        const name = await createKey(keyType, 'eyJlegacy.jwt.value');
        const rotated = await call(t.app, 'POST', `/credentials/${name}/rotate`, { token: t.adminToken, body: { trigger: 'manual' } });
        assert.equal(rotated.status, 409, rotated.body);
        assert.equal(rotated.json.code, 'rotation_unsupported');
        assert.match(rotated.json.detail, /JWT secret/);
        assert.equal(rotated.json.key_type, keyType);
      }
      assert.deepEqual(standIn.calls, []);
    });

    it('legacy key takes supplied value', async () => {
      const name = await createKey('anon', 'eyJlegacy.jwt.value');
      const rotated = await call(t.app, 'POST', `/credentials/${name}/rotate`, { token: t.adminToken, body: { trigger: 'manual', value: 'eyJanon.legacy.jwt' } });
      assert.equal(rotated.status, 200, rotated.body);
      assert.deepEqual(standIn.calls, ['rest:key-anon']);
    });

    it('missing access token fails rotation', async () => {
      const other = await openTestVault(dialect, { env: { SUPABASE_API_URL: stub.url } });
      try {
        const created = await call(other.app, 'POST', '/credentials', {
          token: other.adminToken,
          body: { name: 'supabase/no-token', credential_type: 'supabaseApi', provider: 'supabase', provider_config: { project_ref: projectRef, key_type: 'secret', project_url: stub.url }, value: oldKey },
        });
        assert.equal(created.status, 201, created.body);
        const rotated = await call(other.app, 'POST', '/credentials/supabase%2Fno-token/rotate', { token: other.adminToken, body: {} });
        assert.equal(rotated.status, 502, rotated.body);
        assert.match(rotated.json.detail, /SUPABASE_ACCESS_TOKEN/);
        assert.deepEqual(standIn.calls, []);
      } finally {
        await destroyTestVault(other);
      }
    });
  });
}
