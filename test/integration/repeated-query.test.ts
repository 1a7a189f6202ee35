import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { buildApp } from '../../src/http/app.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/** Fills path parameters with values that match no record. */
function pathFor(url: string): string {
  return url.replace(/:name/g, 'repeated%2Fmissing').replace(/:id/g, '000000000000').replace(/:[a-zA-Z_]+/g, 'missing');
}

// The check runs before any handler, so one database is enough.
describe('a query parameter given twice', () => {
  let t: TestVault;
  let app: FastifyInstance;
  const queries: Array<{ method: 'GET' | 'POST' | 'DELETE'; url: string; parameters: string[] }> = [];

  before(async () => {
    t = await openTestVault('sqlite');
    app = await buildApp(t.vault, {
      onRoute: (route: RouteOptions) => {
        const properties = (route.schema?.querystring as { properties?: Record<string, { type?: string }> } | undefined)?.properties;
        if (properties === undefined || route.method === 'HEAD') return;
        const parameters = Object.keys(properties).filter((name) => properties[name]?.type !== 'array');
        queries.push({ method: route.method as 'GET' | 'POST' | 'DELETE', url: route.url, parameters });
      },
    });
    await app.ready();
  });

  after(async () => {
    await app?.close();
    if (t) await destroyTestVault(t);
  });

  it('is a 400 naming it, on every route', async () => {
    let checked = 0;
    for (const route of queries) {
      for (const parameter of route.parameters) {
        const url = `${pathFor(route.url)}?${parameter}=1&${parameter}=2`;
        const response = await call(app, route.method, url, { token: t.adminToken });
        const label = `${route.method} ${url}`;
        assert.equal(response.status, 400, `${label}: ${response.body}`);
        assert.equal(response.json.field, `querystring.${parameter}`, label);
        assert.equal(response.json.detail, `querystring.${parameter}: is given 2 times. Give it once.`, label);
        checked += 1;
      }
    }
    assert.ok(checked > 20, `only ${checked} parameters were checked`);
  });

  it('still needs a token', async () => {
    const response = await call(app, 'GET', '/credentials?limit=1&limit=2');
    assert.equal(response.status, 401, response.body);
  });
});
