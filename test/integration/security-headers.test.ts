import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { buildApp } from '../../src/http/app.js';
import { API_CSP, PERMISSIONS_POLICY } from '../../src/http/security-headers.js';
import { DASHBOARD_CSP } from '../../src/web/dashboard.routes.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

type Method = 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';

/** The headers every response carries, whatever its route or status. */
const expectedHeaders: Record<string, string> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': PERMISSIONS_POLICY,
};

/** Builds a second app on the vault and lists every method and URL Fastify registers, HEAD routes included. */
async function appWithRoutes(t: TestVault): Promise<{ app: FastifyInstance; routes: Array<{ method: Method; url: string }> }> {
  const registered: RouteOptions[] = [];
  const app = await buildApp(t.vault, { onRoute: (route) => registered.push(route) });
  await app.ready();
  const routes: Array<{ method: Method; url: string }> = [];
  for (const route of registered) {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) routes.push({ method: method as Method, url: route.url });
  }
  return { app, routes };
}

/** Fills path parameters with names that do not exist, so no request reaches or changes a record. */
function pathFor(url: string): string {
  return url.replace(/:name/g, 'headers%2Fmissing').replace(/:id/g, '000000000000').replace(/:file/g, 'index.html').replace(/:[a-zA-Z_]+/g, 'missing');
}

/** Asserts the common headers one by one, so a failure names the header and the request. */
function assertSecurityHeaders(label: string, headers: Record<string, unknown>, csp: string): void {
  for (const [name, value] of Object.entries(expectedHeaders)) {
    assert.equal(headers[name], value, `${label}: ${name}`);
  }
  assert.equal(headers['content-security-policy'], csp, `${label}: content-security-policy`);
}

for (const dialect of await testDialects()) {
  describe(`security headers on ${dialect}`, () => {
    let t: TestVault;
    let app: FastifyInstance;
    let routes: Array<{ method: Method; url: string }>;

    before(async () => {
      // Every route is called without a token; a high limit keeps the limiter's 429 out of the way.
      t = await openTestVault(dialect, { env: { AEGIS_AUTH_FAILURE_LIMIT: '1000000' } });
      ({ app, routes } = await appWithRoutes(t));
    });

    after(async () => {
      await app?.close();
      if (t) await destroyTestVault(t);
    });

    it('lists the routes', () => {
      const urls = routes.map((route) => `${route.method} ${route.url}`);
      assert.ok(urls.includes('GET /credentials'), urls.join('\n'));
      assert.ok(urls.includes('GET /openapi.json'), urls.join('\n'));
      assert.ok(urls.includes('GET /ui/'), urls.join('\n'));
      assert.ok(urls.includes('HEAD /health'), urls.join('\n'));
    });

    it('sends them on every route without a token', async () => {
      for (const route of routes) {
        const url = pathFor(route.url);
        const response = await call(app, route.method, url);
        const csp = route.url.startsWith('/ui/') ? DASHBOARD_CSP : API_CSP;
        assertSecurityHeaders(`${route.method} ${url} (${response.status})`, response.headers, csp);
        assert.equal(response.headers['strict-transport-security'], undefined, `${route.method} ${url}: no HSTS over HTTP`);
      }
    });

    it('sends them on every route with the admin token', async () => {
      for (const route of routes) {
        const url = pathFor(route.url);
        const hasBody = route.method === 'POST' || route.method === 'PATCH' || route.method === 'PUT';
        const response = await call(app, route.method, url, { token: t.adminToken, ...(hasBody ? { body: {} } : {}) });
        const csp = route.url.startsWith('/ui/') ? DASHBOARD_CSP : API_CSP;
        assertSecurityHeaders(`${route.method} ${url} (${response.status})`, response.headers, csp);
      }
    });

    it('sends them on 404', async () => {
      const response = await call(app, 'GET', '/no/such/route', { token: t.adminToken });
      assert.equal(response.status, 404);
      assert.equal(response.json.code, 'route_not_found');
      assertSecurityHeaders('GET /no/such/route', response.headers, API_CSP);
    });

    it('sends them on error responses', async () => {
      const malformed = await call(app, 'POST', '/credentials', { token: t.adminToken, rawBody: '{"name": ' });
      assert.equal(malformed.status, 400, malformed.body);
      assert.equal(malformed.headers['content-type'], 'application/problem+json; charset=utf-8');
      assertSecurityHeaders('malformed JSON', malformed.headers, API_CSP);

      const unauthorized = await call(app, 'GET', '/credentials', { token: 'aegis_000000000000_wrong' });
      assert.equal(unauthorized.status, 401, unauthorized.body);
      assertSecurityHeaders('bad token', unauthorized.headers, API_CSP);

      const tooLarge = await call(app, 'POST', '/credentials', { token: t.adminToken, rawBody: JSON.stringify({ value: 'x'.repeat(t.config.bodyLimitBytes) }) });
      assert.equal(tooLarge.status, 413, tooLarge.body);
      assertSecurityHeaders('body over the limit', tooLarge.headers, API_CSP);
    });

    it('keeps the dashboard policy on pages', async () => {
      const page = await call(app, 'GET', '/ui/');
      assert.equal(page.headers['content-security-policy'], DASHBOARD_CSP);
      assert.notEqual(DASHBOARD_CSP, API_CSP);
      const redirect = await call(app, 'GET', '/');
      assert.equal(redirect.status, 302);
      assertSecurityHeaders('GET /', redirect.headers, API_CSP);
    });
  });

  describe(`security headers with TLS on ${dialect}`, () => {
    let t: TestVault;

    before(async () => {
      // buildApp reads only whether TLS is configured; the files are read by `aegis serve`, not here.
      t = await openTestVault(dialect, { env: { AEGIS_TLS_CERT_FILE: 'unused-cert.pem', AEGIS_TLS_KEY_FILE: 'unused-key.pem' } });
    });

    after(async () => {
      if (t) await destroyTestVault(t);
    });

    it('adds strict-transport-security', async () => {
      for (const url of ['/health', '/credentials', '/no/such/route', '/ui/']) {
        const response = await call(t.app, 'GET', url);
        assert.equal(response.headers['strict-transport-security'], 'max-age=31536000', url);
        assert.equal(response.headers['cache-control'], 'no-store', url);
      }
    });
  });
}
