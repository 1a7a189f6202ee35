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
describe('query parameters', () => {
  let t: TestVault;
  let app: FastifyInstance;
  const queries: Array<{ method: 'GET' | 'POST' | 'DELETE'; url: string; parameters: string[] }> = [];
  const withoutQuery: Array<{ method: 'GET' | 'POST' | 'PATCH' | 'DELETE'; url: string }> = [];

  before(async () => {
    t = await openTestVault('sqlite');
    app = await buildApp(t.vault, {
      onRoute: (route: RouteOptions) => {
        const properties = (route.schema?.querystring as { properties?: Record<string, { type?: string }> } | undefined)?.properties;
        if (route.method === 'HEAD' || (route.schema as { hide?: boolean } | undefined)?.hide === true) return;
        if (properties === undefined) {
          withoutQuery.push({ method: route.method as 'GET' | 'POST' | 'PATCH' | 'DELETE', url: route.url });
          return;
        }
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

  it('given twice is a 400 on every route', async () => {
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

  it('on a route without any is a 400 that changes nothing', async () => {
    const created = await call(app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'query/kept', credential_type: 'apiKey', provider: 'api', value: 'kept-value' } });
    assert.equal(created.status, 201, created.body);
    for (const route of withoutQuery) {
      const url = `${pathFor(route.url).replace('repeated%2Fmissing', 'query%2Fkept')}?dry_run=true`;
      const label = `${route.method} ${url}`;
      const response = await call(app, route.method, url, { token: t.adminToken, ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { body: {} }) });
      assert.equal(response.status, 400, `${label}: ${response.body}`);
      assert.equal(response.json.field, 'querystring.dry_run', label);
      assert.equal(response.json.detail, `querystring.dry_run: is not a parameter of ${route.method} ${route.url}, which takes none. Send the request without it.`, label);
    }
    assert.ok(withoutQuery.length > 20, `only ${withoutQuery.length} routes were checked`);
    const unchanged = await call(app, 'GET', '/credentials/query%2Fkept', { token: t.adminToken });
    assert.equal(unchanged.status, 200, unchanged.body);
    assert.equal(unchanged.json.credential_details.status, 'active');
    assert.equal(unchanged.json.rotation_info.current_version, 1);
  });

  it('with a name that is not plain is not repeated', async () => {
    const response = await call(app, 'DELETE', '/credentials/query%2Fkept?%01x=1', { token: t.adminToken });
    assert.equal(response.status, 400, response.body);
    assert.equal(response.json.field, 'querystring');
    assert.ok(!response.body.includes('\\u0001'), response.body);

    // A token pasted into the query string by mistake stays out of the response and the audit log.
    const tokenName = t.adminToken;
    const pasted = await call(app, 'GET', `/credentials/query%2Fkept/versions?${tokenName}`, { token: t.adminToken });
    assert.equal(pasted.status, 400, pasted.body);
    assert.ok(!pasted.body.includes(tokenName), pasted.body);
    const entries = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('error_message').execute();
    assert.ok(entries.every((entry) => !String(entry.error_message).includes(tokenName)), 'the token reached the audit log');
  });

  it('unknown names like tokens are not repeated', async () => {
    // Routes with a schema reject unknown names through the validator, which named them in the problem.
    const token = t.adminToken;
    const query = await call(app, 'GET', `/credentials?${token}`, { token });
    assert.equal(query.status, 400, query.body);
    assert.equal(query.json.field, 'querystring');
    assert.ok(!query.body.includes(token), query.body);

    const body = await call(app, 'POST', '/tokens', { token, body: { actor: 'pasted', scopes: ['admin'], [token]: true } });
    assert.equal(body.status, 400, body.body);
    assert.equal(body.json.field, 'body');
    assert.match(body.json.detail, /contains a field that is not known/);
    assert.ok(!body.body.includes(token), body.body);

    const entries = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('error_message').execute();
    assert.ok(entries.every((entry) => !String(entry.error_message).includes(token)), 'the token reached the audit log');

    const known = await call(app, 'GET', '/credentials?colour=red', { token });
    assert.equal(known.json.field, 'querystring.colour');
    const camel = await call(app, 'POST', '/tokens', { token, body: { actor: 'pasted', scopes: ['admin'], tokenScopes: [] } });
    assert.equal(camel.json.field, 'tokenScopes', camel.body);
  });

  it('takes integers only in decimal digits', async () => {
    for (const text of ['%20', '1e2', '0x10', '%2B1', '1.5', '']) {
      const response = await call(app, 'GET', `/credentials?limit=${text}`, { token: t.adminToken });
      assert.equal(response.status, 400, `${text}: ${response.body}`);
      assert.equal(response.json.field, 'querystring.limit', text);
    }
    const plain = await call(app, 'GET', '/credentials?limit=50&offset=0', { token: t.adminToken });
    assert.equal(plain.status, 200, plain.body);
  });

  it('still needs a token', async () => {
    const response = await call(app, 'GET', '/credentials?limit=1&limit=2');
    assert.equal(response.status, 401, response.body);
  });
});
