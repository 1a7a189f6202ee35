import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { ProviderError } from '../../src/providers/adapter.js';
import { createApiAdapter } from '../../src/providers/api/api.adapter.js';
import type { Credential } from '../../src/registry/credential.types.js';
import { testDialects } from '../helpers/databases.js';
import { sendJson, startHttpStub, type HttpStub } from '../helpers/http-stub.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/** Builds an `api` credential with the given provider_config, checked by the adapter as the registry would. */
function apiCredential(providerConfig: Record<string, unknown>): Credential {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    name: 'vendor/api',
    credentialType: 'httpHeaderAuth',
    provider: 'api',
    description: null,
    encryptedValue: null,
    encryptionKeyId: null,
    providerCredentialId: null,
    providerConfig: createApiAdapter().checkConfig(providerConfig),
    status: 'active',
    createdAt: '2026-06-01T12:00:00.000Z',
    updatedAt: '2026-06-01T12:00:00.000Z',
    expiresAt: null,
    lastRotatedAt: null,
    lastUsedAt: null,
    lastHealthCheck: null,
    rotationEnabled: false,
    rotationIntervalHours: 720,
    rotationStrategy: 'manual',
    nextRotationAt: null,
    alertThresholdHours: 168,
    alertSent: false,
    tags: [],
    metadata: {},
    rotationCron: null,
    rotationTimezone: null,
    valuePolicy: null,
  } as Credential;
}

describe('api adapter against HTTP servers', () => {
  let stub: HttpStub;
  const adapter = createApiAdapter({ defaultTimeoutMs: 5_000 });

  before(async () => {
    stub = await startHttpStub((_request, response) => sendJson(response, 500, {}));
  });
  afterEach(() => {
    stub.requests.length = 0;
  });
  after(async () => stub.close());

  it('sends the value in header and query', async () => {
    stub.handle((request, response) => {
      const url = new URL(request.url, stub.url);
      const good = request.headers['x-api-key'] === 'sk-current' && url.searchParams.get('key') === 'sk-current';
      response.writeHead(good ? 204 : 401).end();
    });
    const credential = apiCredential({
      test: { method: 'GET', url: `${stub.url}/check`, headers: { 'x-api-key': '{{value}}' }, query: { key: '{{value}}', fixed: 'a b' }, expected_status: [204] },
    });

    const healthy = await adapter.test!(credential, 'sk-current');
    assert.equal(healthy.healthy, true);
    assert.equal(healthy.error, null);
    assert.deepEqual(healthy.details, { status: 204 });
    assert.equal(stub.requests[0]?.method, 'GET');
    assert.equal(stub.requests[0]?.url, '/check?key=sk-current&fixed=a+b');
    assert.equal(stub.requests[0]?.headers['x-api-key'], 'sk-current');

    const unhealthy = await adapter.test!(credential, 'sk-wrong');
    assert.equal(unhealthy.healthy, false);
    assert.equal(unhealthy.error, 'test request answered HTTP 401');
    assert.deepEqual(unhealthy.details, { status: 401 });
  });

  it('rejects a 200 outside expected_status', async () => {
    stub.handle((_request, response) => sendJson(response, 200, { ok: true }));
    const credential = apiCredential({ test: { method: 'GET', url: `${stub.url}/check`, expected_status: 204 } });

    const result = await adapter.test!(credential, 'sk-current');

    assert.equal(result.healthy, false);
    assert.equal(result.error, 'test request answered HTTP 200');
  });

  it('reads the issued key at value_pointer', async () => {
    stub.handle((request, response) => {
      if (request.headers.authorization !== 'Bearer sk-current') return sendJson(response, 401, { error: 'bad key' });
      sendJson(response, 201, { data: { 'new/key': 'sk-issued-1', old: 'ignored' } });
    });
    const credential = apiCredential({
      rotate: { method: 'POST', url: `${stub.url}/rotate`, headers: { authorization: 'Bearer {{value}}' }, body: { reason: 'rotate {{value}}' }, value_pointer: '/data/new~1key' },
    });

    const issued = await adapter.issueValue!(credential, 'sk-current');

    assert.equal(issued, 'sk-issued-1');
    assert.equal(stub.requests.length, 1);
    assert.equal(stub.requests[0]?.method, 'POST');
    assert.equal(stub.requests[0]?.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(stub.requests[0]!.body), { reason: 'rotate sk-current' });
  });

  it('rejects a response without the key', async () => {
    const credential = apiCredential({ rotate: { method: 'POST', url: `${stub.url}/rotate`, value_pointer: '/key' } });
    const cases: Array<[(response: import('node:http').ServerResponse) => void, RegExp]> = [
      [(response) => sendJson(response, 200, { other: 'x' }), /no string at \/key/],
      [(response) => sendJson(response, 200, { key: 42 }), /no string at \/key/],
      [(response) => sendJson(response, 200, { key: '' }), /no string at \/key/],
      [(response) => response.writeHead(200, { 'content-type': 'text/plain' }).end('sk-plain'), /not JSON/],
      [(response) => sendJson(response, 403, { key: 'sk-denied' }), /answered HTTP 403/],
    ];
    for (const [answer, message] of cases) {
      stub.handle((_request, response) => answer(response));
      await assert.rejects(adapter.issueValue!(credential, 'sk-current'), (error: Error) => {
        assert.ok(error instanceof ProviderError);
        assert.match(error.message, message);
        assert.ok(!error.message.includes('sk-current'));
        return true;
      });
    }
  });

  it('sends the old key to revoke', async () => {
    stub.handle((_request, response) => response.writeHead(204).end());
    const credential = apiCredential({
      revoke: { method: 'DELETE', url: `${stub.url}/keys/{{old_value}}`, headers: { authorization: 'Bearer {{new_value}}' }, expected_status: 204 },
    });

    await adapter.revoke!(credential, 'sk-old/1', 'sk-new-1');

    assert.equal(stub.requests.length, 1);
    assert.equal(stub.requests[0]?.method, 'DELETE');
    assert.equal(stub.requests[0]?.url, '/keys/sk-old%2F1');
    assert.equal(stub.requests[0]?.headers.authorization, 'Bearer sk-new-1');
  });

  it('reports a failed revoke', async () => {
    stub.handle((_request, response) => response.writeHead(404).end());
    const credential = apiCredential({ revoke: { method: 'POST', url: `${stub.url}/revoke`, body: { key: '{{old_value}}' } } });

    await assert.rejects(adapter.revoke!(credential, 'sk-old-1', 'sk-new-1'), /revoke request answered HTTP 404/);
    assert.deepEqual(JSON.parse(stub.requests[0]!.body), { key: 'sk-old-1' });
  });

  it('times out on a silent server', async () => {
    stub.handle(() => {});
    const credential = apiCredential({
      test: { method: 'GET', url: `${stub.url}/check?key={{value}}` },
      rotate: { method: 'POST', url: `${stub.url}/rotate/{{value}}`, value_pointer: '/key' },
      revoke: { method: 'DELETE', url: `${stub.url}/keys/{{old_value}}` },
      timeout_ms: 200,
    });

    const result = await adapter.test!(credential, 'sk-secret-value');
    assert.equal(result.healthy, false);
    assert.equal(result.error, 'the request timed out');

    await assert.rejects(adapter.issueValue!(credential, 'sk-secret-value'), (error: Error) => {
      assert.equal(error.message, 'rotation request failed: the request timed out');
      return true;
    });
    await assert.rejects(adapter.revoke!(credential, 'sk-secret-value', 'sk-other-value'), (error: Error) => {
      assert.equal(error.message, 'revoke request failed: the request timed out');
      return true;
    });
  });

  it('times out on a stalled body', async () => {
    stub.handle((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"key": "sk-partial');
    });
    const credential = apiCredential({ rotate: { method: 'POST', url: `${stub.url}/rotate`, value_pointer: '/key' }, timeout_ms: 200 });

    await assert.rejects(adapter.issueValue!(credential, 'sk-secret-value'), (error: Error) => {
      assert.equal(error.message, 'reading the rotation response failed: the request timed out');
      return true;
    });
  });

  it('reports a refused connection', async () => {
    const closed = await startHttpStub(() => {});
    await closed.close();
    const credential = apiCredential({ test: { method: 'GET', url: `${closed.url}/check?key={{value}}` } });

    const result = await adapter.test!(credential, 'sk-secret-value');

    assert.equal(result.healthy, false);
    assert.equal(result.error, 'the request failed (ECONNREFUSED)');
  });
});

for (const dialect of await testDialects()) {
  describe(`api rotation on ${dialect}`, () => {
    let t: TestVault;
    let stub: HttpStub;
    /** The keys the stand-in vendor accepts; rotation adds one, revoke removes one. */
    const activeKeys = new Set(['sk-old-1']);
    let issued = 0;

    before(async () => {
      stub = await startHttpStub((request, response) => {
        const url = new URL(request.url, 'http://stub');
        const bearer = (request.headers.authorization ?? '').replace(/^Bearer /, '');
        if (request.method === 'GET' && url.pathname === '/check') {
          return response.writeHead(activeKeys.has(url.searchParams.get('key') ?? '') ? 200 : 401).end();
        }
        if (request.method === 'POST' && url.pathname === '/rotate') {
          if (!activeKeys.has(bearer)) return sendJson(response, 401, { error: 'unknown key' });
          issued += 1;
          const key = `sk-issued-${issued}`;
          activeKeys.add(key);
          return sendJson(response, 200, { api_key: { secret: key } });
        }
        // Issues a key that the check never accepts, and fails to revoke it.
        if (request.method === 'POST' && url.pathname === '/rotate-unusable') return sendJson(response, 200, { api_key: { secret: 'sk-unusable-1' } });
        if (request.method === 'DELETE' && url.pathname.startsWith('/keys-failing/')) return response.writeHead(500).end();
        if (request.method === 'DELETE' && url.pathname.startsWith('/keys/')) {
          const revoked = decodeURIComponent(url.pathname.slice('/keys/'.length));
          return response.writeHead(activeKeys.delete(revoked) ? 204 : 404).end();
        }
        response.writeHead(404).end();
      });
      t = await openTestVault(dialect);
    });
    after(async () => {
      await destroyTestVault(t);
      await stub.close();
    });

    it('creates an api credential', async () => {
      const created = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: {
          name: 'vendor/api',
          credential_type: 'httpHeaderAuth',
          provider: 'api',
          value: 'sk-old-1',
          provider_config: {
            test: { method: 'GET', url: `${stub.url}/check`, query: { key: '{{value}}' } },
            rotate: { method: 'POST', url: `${stub.url}/rotate`, headers: { authorization: 'Bearer {{value}}' }, value_pointer: '/api_key/secret' },
            revoke: { method: 'DELETE', url: `${stub.url}/keys/{{old_value}}`, expected_status: 204 },
          },
        },
      });
      assert.equal(created.status, 201, created.body);
    });

    it('rotates an emergency through the vendor', async () => {
      const rotated = await call(t.app, 'POST', '/credentials/vendor%2Fapi/rotate', { token: t.adminToken, body: { trigger: 'emergency' } });
      assert.equal(rotated.status, 200, rotated.body);
      assert.equal(rotated.json.previous_version, 1);
      assert.equal(rotated.json.new_version, 2);
      assert.equal(rotated.json.revoked_old_value, true);

      assert.equal(issued, 1);
      const revokes = stub.requests.filter((request) => request.method === 'DELETE');
      assert.deepEqual(revokes.map((request) => request.url), ['/keys/sk-old-1']);
      assert.deepEqual([...activeKeys], ['sk-issued-1']);
    });

    it('reveals the issued key', async () => {
      const revealed = await call(t.app, 'GET', '/credentials/vendor%2Fapi/value', { token: t.adminToken });
      assert.equal(revealed.status, 200);
      assert.equal(revealed.json.value, 'sk-issued-1');
      assert.equal(revealed.json.version, 2);
    });

    it('records emergency history and alert', async () => {
      const history = await call(t.app, 'GET', '/rotation/history?credential_name=vendor/api', { token: t.adminToken });
      assert.equal(history.status, 200);
      assert.equal(history.json.total, 1);
      assert.equal(history.json.history[0].trigger, 'emergency');
      assert.equal(history.json.history[0].success, true);
      assert.equal(history.json.history[0].new_version, 2);

      const alerts = await t.vault.db.kysely
        .selectFrom('aegis_alert_outbox')
        .select(['alert_type', 'priority', 'credential_name'])
        .where('alert_type', '=', 'rotation_success')
        .execute();
      assert.deepEqual(alerts, [{ alert_type: 'rotation_success', priority: 'critical', credential_name: 'vendor/api' }]);
    });

    it('says when an issued key could not be revoked', async () => {
      const created = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: {
          name: 'vendor/unusable',
          credential_type: 'httpHeaderAuth',
          provider: 'api',
          value: 'sk-old-1',
          provider_config: {
            test: { method: 'GET', url: `${stub.url}/check`, query: { key: '{{value}}' } },
            rotate: { method: 'POST', url: `${stub.url}/rotate-unusable`, value_pointer: '/api_key/secret' },
            revoke: { method: 'DELETE', url: `${stub.url}/keys-failing/{{old_value}}`, expected_status: 204 },
          },
        },
      });
      assert.equal(created.status, 201, created.body);
      const rotated = await call(t.app, 'POST', '/credentials/vendor%2Funusable/rotate', { token: t.adminToken, body: {} });
      assert.equal(rotated.status, 502, rotated.body);
      assert.match(rotated.json.detail, /the key the provider issued for this rotation may still be valid: revoke it at the provider before retrying/);
      assert.ok(!rotated.json.detail.includes('safe to retry'), rotated.json.detail);
      assert.ok(!rotated.body.includes('sk-unusable-1'), 'no key in the response');
    });

    it('keeps keys out of logs', () => {
      const logs = t.logs.text();
      assert.ok(!logs.includes('sk-old-1'));
      assert.ok(!logs.includes('sk-issued-1'));
    });
  });
}

describe('api rotation timeout', () => {
  let t: TestVault;
  let stub: HttpStub;

  before(async () => {
    stub = await startHttpStub(() => {});
    t = await openTestVault('sqlite', { env: { AEGIS_PROVIDER_TIMEOUT_MS: '200', AEGIS_ROTATION_ATTEMPTS: '1' } });
  });
  after(async () => {
    await destroyTestVault(t);
    await stub.close();
  });

  it('fails cleanly after the timeout', async () => {
    const created = await call(t.app, 'POST', '/credentials', {
      token: t.adminToken,
      body: {
        name: 'slow-vendor',
        credential_type: 'httpHeaderAuth',
        provider: 'api',
        value: 'sk-slow-secret',
        provider_config: { rotate: { method: 'POST', url: `${stub.url}/rotate?key={{value}}`, value_pointer: '/key' } },
      },
    });
    assert.equal(created.status, 201, created.body);

    const rotated = await call(t.app, 'POST', '/credentials/slow-vendor/rotate', { token: t.adminToken, body: { trigger: 'manual' } });

    assert.equal(rotated.status, 502, rotated.body);
    assert.equal(rotated.json.code, 'rotation_failed');
    assert.match(rotated.json.detail, /rotation request failed: the request timed out/);
    assert.ok(!rotated.body.includes('sk-slow-secret'));
    assert.equal(stub.requests.length, 1);

    const revealed = await call(t.app, 'GET', '/credentials/slow-vendor/value', { token: t.adminToken });
    assert.equal(revealed.json.value, 'sk-slow-secret');
    assert.equal(revealed.json.version, 1);
  });
});
