import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { buildApp } from '../../src/http/app.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

type Method = 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';
const tried: Method[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** Fills path parameters with values that match no record. */
function pathFor(url: string): string {
  return url.replace(/:name/g, 'allowed%2Fmissing').replace(/:id/g, '000000000000').replace(/:file/g, 'index.html').replace(/:[a-zA-Z_]+/g, 'missing');
}

// A 405 is decided by the router alone, so one database is enough.
describe('a known path with a method it does not take', () => {
  let t: TestVault;
  let app: FastifyInstance;
  const methodsByUrl = new Map<string, Set<string>>();

  before(async () => {
    t = await openTestVault('sqlite');
    app = await buildApp(t.vault, {
      onRoute: (route: RouteOptions) => {
        const methods = methodsByUrl.get(route.url) ?? new Set<string>();
        for (const method of Array.isArray(route.method) ? route.method : [route.method]) methods.add(method);
        methodsByUrl.set(route.url, methods);
      },
    });
    await app.ready();
  });

  after(async () => {
    await app?.close();
    if (t) await destroyTestVault(t);
  });

  it('answers 405 with Allow on every route', async () => {
    let checked = 0;
    for (const [url, methods] of methodsByUrl) {
      // A wildcard route takes every path under it, so another method there is not a known path.
      if (url.includes('*')) continue;
      const expected = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].filter((method) => methods.has(method)).join(', ');
      for (const method of tried.filter((candidate) => !methods.has(candidate))) {
        const path = pathFor(url);
        const response = await call(app, method, path, { token: t.adminToken });
        const label = `${method} ${path}`;
        assert.equal(response.status, 405, `${label}: ${response.body}`);
        assert.equal(response.json.code, 'method_not_allowed', label);
        assert.equal(response.headers.allow, expected, label);
        assert.ok(response.json.detail.includes(expected), `${label}: ${response.json.detail}`);
        checked += 1;
      }
    }
    assert.ok(checked > 40, `only ${checked} method and path pairs were checked`);
  });

  it('changes nothing on a credential path', async () => {
    const created = await call(app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'allowed-one', credential_type: 'apiKey', provider: 'api', value: 'first-value' } });
    assert.equal(created.status, 201, created.body);
    const response = await call(app, 'PUT', '/credentials/allowed-one', { token: t.adminToken, body: { value: 'second-value' } });
    assert.equal(response.status, 405, response.body);
    assert.equal(response.headers.allow, 'GET, HEAD, PATCH, DELETE');
    assert.equal(response.json.detail, 'PUT is not allowed on /credentials/allowed-one; it takes GET, HEAD, PATCH, DELETE. The API is described at /openapi.json.');
    const read = await call(app, 'GET', '/credentials/allowed-one', { token: t.adminToken });
    assert.equal(read.json.rotation_info.current_version, 1, read.body);
    assert.equal(read.json.rotation_info.version_count, 1, read.body);
  });

  it('refuses HEAD on the reveal route', async () => {
    const created = await call(app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'allowed-head', credential_type: 'apiKey', provider: 'api', value: 'head-value' } });
    assert.equal(created.status, 201, created.body);
    const response = await call(app, 'HEAD', '/credentials/allowed-head/value', { token: t.adminToken });
    assert.equal(response.status, 405);
    assert.equal(response.headers.allow, 'GET');
    const reveals = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('seq').where('action', '=', 'revealed').where('credential_name', '=', 'allowed-head').execute();
    assert.equal(reveals.length, 0);
  });

  it('hints at a trailing slash', async () => {
    const response = await call(app, 'GET', '/credentials/allowed-one/versions/', { token: t.adminToken });
    assert.equal(response.status, 404, response.body);
    assert.match(response.json.detail, /Remove the trailing \/\./);
    // An empty segment where a route has a parameter is no match either.
    const empty = await call(app, 'POST', '/credentials/', { token: t.adminToken, body: {} });
    assert.equal(empty.status, 404, empty.body);
    assert.match(empty.json.detail, /Remove the trailing \/\./);
  });

  it('names a path segment that is too long', async () => {
    const response = await call(app, 'GET', `/credentials/${'a'.repeat(300)}`, { token: t.adminToken });
    assert.equal(response.status, 400, response.body);
    assert.equal(response.json.field, 'path');
    assert.equal(response.json.detail, 'A path segment is longer than 256 characters; credential names have at most 128.');
  });

  it('keeps 404 for unknown paths', async () => {
    const response = await call(app, 'PUT', '/no/such/route', { token: t.adminToken });
    assert.equal(response.status, 404, response.body);
    assert.equal(response.json.code, 'route_not_found');
    assert.equal(response.headers.allow, undefined);
  });
});
