import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import type { RouteOptions } from 'fastify';
import { buildApp } from '../../src/http/app.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault } from '../helpers/test-vault.js';

interface FuzzedRoute {
  method: string;
  url: string;
  bodyFields: string[];
  queryFields: string[];
}

/** Strings without ':' cannot form a URL, so no fuzzed request makes AEGIS call another host. */
const text = fc.string({ maxLength: 40, unit: 'binary' }).filter((value) => !value.includes(':'));
const scalar = fc.oneof(text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }), fc.dictionary(text, scalar, { maxKeys: 4 }));

function fieldsOf(schema: unknown): string[] {
  const properties = (schema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return properties ? Object.keys(properties) : [];
}

/** Generates a body with the route's own fields, so validation looks deeper, or any JSON value. */
function bodyFor(route: FuzzedRoute) {
  const known = fc.record(Object.fromEntries(route.bodyFields.map((field) => [field, value])), { requiredKeys: [] });
  return fc.oneof(known, value);
}

function queryFor(route: FuzzedRoute) {
  return fc.record(Object.fromEntries([...route.queryFields, 'x'].map((field) => [field, text])), { requiredKeys: [] });
}

/** A credential name that exists, or any string; each is percent-encoded into the path. */
const pathName = fc.oneof(fc.constant('fuzz/seed'), text.filter((name) => name.length > 0));

for (const dialect of await testDialects()) {
  describe(`request fuzzing (${dialect})`, async () => {
    const t = await openTestVault(dialect, { env: { AEGIS_AUTH_FAILURE_LIMIT: '1000000' } });
    const registered: RouteOptions[] = [];
    const app = await buildApp(t.vault, { onRoute: (route) => registered.push(route) });
    await app.ready();
    const seeded = await call(app, 'POST', '/credentials', {
      token: t.adminToken,
      body: { name: 'fuzz/seed', credential_type: 'apiKey', provider: 'n8n', value: 'fuzz-seed-value' },
    });
    assert.equal(seeded.status, 201, seeded.body);

    const routes: FuzzedRoute[] = registered
      .filter((route) => route.url.startsWith('/') && !route.url.startsWith('/ui'))
      .flatMap((route) =>
        (Array.isArray(route.method) ? route.method : [route.method])
          .filter((method) => method !== 'HEAD')
          .map((method) => ({ method, url: route.url, bodyFields: fieldsOf(route.schema?.body), queryFields: fieldsOf(route.schema?.querystring) })),
      );

    after(async () => {
      await app.close();
      await destroyTestVault(t);
    });

    it('finds every route', () => {
      assert.ok(routes.length >= 30, `only ${routes.length} routes`);
    });

    for (const route of routes) {
      it(`returns no 5xx on ${route.method} ${route.url}`, async () => {
        await fc.assert(
          fc.asyncProperty(pathName, queryFor(route), bodyFor(route), async (name, query, body) => {
            const url = route.url.replace(':name', encodeURIComponent(name)).replace(':id', encodeURIComponent(name).slice(0, 40) || 'x');
            const search = new URLSearchParams(query as Record<string, string>).toString();
            const hasBody = route.method !== 'GET' && route.method !== 'DELETE';
            const response = await app.inject({
              method: route.method as 'GET',
              url: search ? `${url}?${search}` : url,
              headers: { authorization: `Bearer ${t.adminToken}`, ...(hasBody ? { 'content-type': 'application/json' } : {}) },
              ...(hasBody ? { payload: JSON.stringify(body) } : {}),
            });
            // n8n is not configured here, so its routes return 503 n8n_not_configured by design.
            const expected503 = response.statusCode === 503 && response.body.includes('"code":"n8n_not_configured"');
            assert.ok(response.statusCode < 500 || expected503, `${route.method} ${url} answered ${response.statusCode}: ${response.body.slice(0, 300)}`);
            if (response.statusCode >= 400) assert.match(String(response.headers['content-type']), /application\/problem\+json/);
          }),
          { numRuns: 25 },
        );
      });
    }

    it('rejects a malformed percent-encoding with a problem', async () => {
      const response = await app.inject({ method: 'GET', url: '/credentials/%F0%90', headers: { authorization: `Bearer ${t.adminToken}` } });
      assert.equal(response.statusCode, 400);
      assert.match(String(response.headers['content-type']), /application\/problem\+json/);
      assert.equal(response.json().code, 'invalid_url');
      assert.equal(response.headers['x-frame-options'], 'DENY');
    });

    it('rejects malformed JSON bodies with 400', async () => {
      await fc.assert(
        fc.asyncProperty(fc.string({ minLength: 1, maxLength: 60 }), async (payload) => {
          fc.pre(!isJson(payload));
          const response = await app.inject({
            method: 'POST',
            url: '/credentials',
            headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
            payload,
          });
          assert.equal(response.statusCode, 400, response.body);
        }),
        { numRuns: 100 },
      );
    });
  });
}

function isJson(payload: string): boolean {
  try {
    JSON.parse(payload);
    return true;
  } catch {
    return false;
  }
}
