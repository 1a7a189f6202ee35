import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { buildApp } from '../../src/http/app.js';
import { SCOPES, type Scope } from '../../src/tokens/scopes.js';
import { testDialects } from '../helpers/databases.js';
import { N8nStub } from '../helpers/n8n-stub.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

type Method = 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';

interface RouteUnderTest {
  method: Method;
  url: string;
  scope: Scope;
}

/** A request that gets a 2xx response from the route when the token has the route's scope. */
interface SuccessRequest {
  url: string;
  body?: unknown;
}

const seededName = 'matrix/seed';
const seededPath = encodeURIComponent(seededName);

/** Builds a second app on the vault and records every route Fastify registers, HEAD routes included. */
async function appWithRoutes(t: TestVault): Promise<{ app: FastifyInstance; routes: RouteUnderTest[] }> {
  const registered: RouteOptions[] = [];
  const app = await buildApp(t.vault, { onRoute: (route) => registered.push(route) });
  await app.ready();
  const routes: RouteUnderTest[] = [];
  for (const route of registered) {
    const scope = route.config?.scope;
    if (scope === null || scope === undefined) continue;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) routes.push({ method: method as Method, url: route.url, scope });
  }
  return { app, routes };
}

/** Fills path parameters with values that exist, so a rejected call would otherwise have reached a record. */
function pathFor(url: string): string {
  return url.replace(':name', seededPath).replace(':id', '000000000000');
}

let addressCounter = 0;

/** Returns a new client address for each request, so each request's audit rows can be found by address alone. */
function nextAddress(): string {
  addressCounter += 1;
  return `10.${(addressCounter >> 16) & 255}.${(addressCounter >> 8) & 255}.${addressCounter & 255}`;
}

for (const dialect of await testDialects()) {
  // The limiter would return 429 after a few of the many failures below. Each failure comes from its
  // own address anyway, and a high limit keeps the limiter out of this test (rate-limit.test.ts covers it).
  // A stand-in n8n, so the n8n routes (apply, sync) have something to succeed against.
  const n8n = await N8nStub.start({ apiKey: 'matrix-n8n-key', recentApi: true });
  n8n.addCredential({ id: '7', name: 'Matrix n8n', type: 'slackApi', data: {} });
  n8n.addWorkflow({ id: 'wf1', name: 'Matrix', nodes: [{ name: 'Slack', type: 'n8n-nodes-base.slack' }], connections: {}, settings: {} });
  const t = await openTestVault(dialect, { env: { AEGIS_AUTH_FAILURE_LIMIT: '1000000', N8N_URL: n8n.url, N8N_API_KEY: 'matrix-n8n-key' } });
  const { app, routes } = await appWithRoutes(t);

  /** Creates an env credential whose file lies in the vault's folder, so rotating it touches nothing else; returns its path segment. */
  async function createEnvCredential(): Promise<string> {
    const name = `matrix/env-${crypto.randomUUID()}`;
    const file = path.join(t.dir, `${crypto.randomUUID()}.env`);
    fs.writeFileSync(file, 'API_KEY=first-value\n', { mode: 0o600 });
    const created = await call(app, 'POST', '/credentials', {
      token: t.adminToken,
      body: { name, credential_type: 'env', provider: 'env', provider_config: { file, variable: 'API_KEY' }, value: 'first-value' },
    });
    assert.equal(created.status, 201, created.body);
    return encodeURIComponent(name);
  }

  /** Builds a request that succeeds on the route, creating any record it consumes. */
  async function successRequest(route: RouteUnderTest): Promise<SuccessRequest> {
    const key = `${route.method} ${route.url}`;
    switch (key) {
      case 'POST /credentials':
        return { url: '/credentials', body: { name: `matrix/new-${crypto.randomUUID()}`, credential_type: 'httpHeaderAuth', provider: 'api' } };
      case 'PATCH /credentials/:name':
        return { url: `/credentials/${seededPath}`, body: { description: `changed ${crypto.randomUUID()}` } };
      case 'DELETE /credentials/:name': {
        const name = `matrix/retire-${crypto.randomUUID()}`;
        const created = await call(app, 'POST', '/credentials', { token: t.adminToken, body: { name, credential_type: 'httpHeaderAuth' } });
        assert.equal(created.status, 201, created.body);
        return { url: `/credentials/${encodeURIComponent(name)}` };
      }
      case 'POST /credentials/:name/rotate':
        return { url: `/credentials/${await createEnvCredential()}/rotate`, body: { trigger: 'manual', reason: 'auth matrix' } };
      case 'POST /credentials/:name/rollback': {
        const name = await createEnvCredential();
        const rotated = await call(app, 'POST', `/credentials/${name}/rotate`, { token: t.adminToken, body: { trigger: 'manual' } });
        assert.equal(rotated.status, 200, rotated.body);
        return { url: `/credentials/${name}/rollback`, body: {} };
      }
      case 'GET /audit/report':
      case 'HEAD /audit/report':
        return { url: '/audit/report?start_date=2026-01-01T00:00:00Z&end_date=2026-02-01T00:00:00Z' };
      case 'POST /rotation/run-scheduled':
        return { url: '/rotation/run-scheduled' };
      case 'POST /credentials/:name/test':
        return { url: `/credentials/${seededPath}/test` };
      case 'POST /health/check-all':
        return { url: '/health/check-all' };
      case 'POST /credentials/:name/apply': {
        const name = `matrix/n8n-${crypto.randomUUID()}`;
        const created = await call(app, 'POST', '/credentials', { token: t.adminToken, body: { name, credential_type: 'slackApi', provider: 'n8n', provider_credential_id: '7' } });
        assert.equal(created.status, 201, created.body);
        return { url: `/credentials/${encodeURIComponent(name)}/apply`, body: { workflow_id: 'wf1', node_name: 'Slack', requested_by: 'matrix' } };
      }
      case 'POST /sync/n8n':
        return { url: '/sync/n8n' };
      case 'POST /alerts/deliver':
        return { url: '/alerts/deliver' };
      case 'POST /templates':
        return {
          url: '/templates',
          body: {
            name: `matrix-${crypto.randomUUID()}`,
            credential_type: 'httpHeaderAuth',
            provider: 'api',
            schema: { fields: { type: 'object', required: ['key'], properties: { key: { type: 'string' } } }, secret_field: 'key', provider_config: {} },
          },
        };
      case 'POST /import/template':
        return {
          url: '/import/template',
          body: { template_name: 'bearer', values: { token: 'matrix-token-0123', test_url: 'http://127.0.0.1:9/' }, name: `matrix/template-${crypto.randomUUID()}` },
        };
      case 'POST /tokens':
        return { url: '/tokens', body: { actor: 'matrix-created', scopes: ['credentials:read'] } };
      case 'DELETE /tokens/:id': {
        const token = await tokenWith(t, 'matrix-revoked', ['credentials:read']);
        return { url: `/tokens/${token.split('_')[1]}` };
      }
    }
    const unknownParameter = /:(?!name\b)\w+/.exec(route.url);
    if (route.method !== 'GET' && route.method !== 'HEAD') {
      assert.fail(`No successful request is defined for ${key}. Add one to successRequest in this file.`);
    }
    if (unknownParameter) assert.fail(`No value is defined for ${unknownParameter[0]} in ${key}. Add one to successRequest in this file.`);
    return { url: pathFor(route.url) };
  }

  async function auditRowsFrom(address: string) {
    return t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('ip_address', '=', address).execute();
  }

  async function assertProblem(response: Awaited<ReturnType<typeof call>>, method: Method, status: number): Promise<void> {
    assert.equal(response.status, status, response.body);
    assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
    if (method === 'HEAD') return;
    assert.equal(response.json.status, status);
    for (const field of ['type', 'title', 'detail', 'code']) {
      assert.equal(typeof response.json[field], 'string', `problem field ${field} in ${response.body}`);
    }
  }

  async function assertFailureAudited(address: string, actor: string): Promise<void> {
    const rows = await auditRowsFrom(address);
    assert.equal(rows.length, 1, `audit rows from ${address}: ${JSON.stringify(rows)}`);
    const [row] = rows;
    assert.equal(Boolean(row!.success), false);
    assert.equal(row!.actor, actor);
    assert.equal(row!.ip_address, address);
    assert.ok(row!.error_message, 'a failure row names its reason');
  }

  describe(`auth matrix on ${dialect}`, () => {
    const tokens: Partial<Record<string, string>> = {};
    let unknownSecretToken = '';

    after(async () => {
      await app.close();
      await destroyTestVault(t);
      await n8n.close();
    });

    it('finds the authenticated routes', async () => {
      const keys = routes.map((route) => `${route.method} ${route.url}`);
      for (const expected of ['GET /credentials', 'POST /credentials', 'GET /credentials/:name/value', 'DELETE /tokens/:id', 'GET /audit/log']) {
        assert.ok(keys.includes(expected), `${expected} missing from ${keys.join(', ')}`);
      }
      assert.ok(!keys.some((key) => key.endsWith(' /health')), '/health needs no token');

      const seeded = await call(app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name: seededName, credential_type: 'httpHeaderAuth', provider: 'api', value: 'matrix-seed-value' },
      });
      assert.equal(seeded.status, 201, seeded.body);

      // A well-formed token whose id exists but whose secret is wrong.
      const real = await tokenWith(t, 'matrix-real', ['credentials:read']);
      unknownSecretToken = `aegis_${real.split('_')[1]}_${crypto.randomBytes(32).toString('base64url')}`;
    });

    for (const route of routes) {
      const key = `${route.method} ${route.url}`;
      const others = SCOPES.filter((scope) => scope !== route.scope && scope !== 'admin');

      it(`${key} without token`, async () => {
        const address = nextAddress();
        const response = await call(app, route.method, pathFor(route.url), { remoteAddress: address });
        await assertProblem(response, route.method, 401);
        await assertFailureAudited(address, 'anonymous');
      });

      it(`${key} with malformed token`, async () => {
        for (const header of ['Bearer not-a-token', 'Bearer aegis_xyz_123', 'Basic dXNlcjpwYXNz', 'Bearer']) {
          const address = nextAddress();
          const response = await call(app, route.method, pathFor(route.url), { remoteAddress: address, headers: { authorization: header } });
          await assertProblem(response, route.method, 401);
          await assertFailureAudited(address, 'anonymous');
        }
      });

      it(`${key} with wrong token`, async () => {
        const randomToken = `aegis_${crypto.randomBytes(6).toString('hex')}_${crypto.randomBytes(32).toString('base64url')}`;
        for (const token of [randomToken, unknownSecretToken]) {
          const address = nextAddress();
          const response = await call(app, route.method, pathFor(route.url), { token, remoteAddress: address });
          await assertProblem(response, route.method, 401);
          await assertFailureAudited(address, 'anonymous');
        }
      });

      it(`${key} lacking its scope`, async () => {
        const actor = `lacks-${route.scope.replace(':', '-')}`;
        tokens[actor] ??= await tokenWith(t, actor, others);
        const address = nextAddress();
        const request = await successRequest(route);
        const response = await call(app, route.method, request.url, { token: tokens[actor], body: request.body, remoteAddress: address });
        await assertProblem(response, route.method, 403);
        await assertFailureAudited(address, actor);
      });

      it(`${key} with exactly its scope`, async () => {
        const actor = `has-${route.scope.replace(':', '-')}`;
        tokens[actor] ??= await tokenWith(t, actor, [route.scope]);
        const address = nextAddress();
        const request = await successRequest(route);
        const response = await call(app, route.method, request.url, { token: tokens[actor], body: request.body, remoteAddress: address });
        assert.ok(response.status >= 200, `${key} gave ${response.status}: ${response.body}`);
        assert.ok(response.status < 300, `${key} gave ${response.status}: ${response.body}`);

        const rows = await auditRowsFrom(address);
        assert.ok(rows.length >= 1, `${key} wrote no audit row`);
        for (const row of rows) {
          assert.equal(Boolean(row.success), true, `audit row ${JSON.stringify(row)}`);
          assert.equal(row.actor, actor);
        }
      });

      if (route.scope !== 'audit:read') continue;
      // Audit routes filter what a limited token reads, except the vault-wide report, which it cannot get.
      for (const limit of ['name', 'tag'] as const) {
        it(`${key} with its scope and a ${limit} limit`, async () => {
          const actor = `${limit}-limited-audit-reader`;
          tokens[actor] ??= await tokenWith(t, actor, [route.scope], limit === 'name' ? { namePatterns: ['matrix/*'] } : { tags: ['matrix'] });
          const address = nextAddress();
          const request = await successRequest(route);
          const response = await call(app, route.method, request.url, { token: tokens[actor], body: request.body, remoteAddress: address });
          if (route.url === '/audit/report') {
            await assertProblem(response, route.method, 403);
            await assertFailureAudited(address, actor);
            return;
          }
          assert.ok(response.status >= 200, `${key} gave ${response.status}: ${response.body}`);
          assert.ok(response.status < 300, `${key} gave ${response.status}: ${response.body}`);
        });
      }
    }
  });
}
