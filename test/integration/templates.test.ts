import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { builtinTemplates } from '../../src/templates/catalogue.js';
import { createLoginRole, dropLoginRole, postgresReachable, testDialects, testPostgresUrl } from '../helpers/databases.js';
import { startHttpStub, type HttpStub, type RecordedRequest } from '../helpers/http-stub.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

interface TemplateCase {
  /** Values that pass the template's checks; `{{stub}}` is replaced by the stand-in server's URL. */
  good: Record<string, string>;
  /** One field set to a value the template must reject. */
  wrong: { field: string; value: string };
  /** Whether the stand-in accepts the request, i.e. it carries the secret where the service expects it. */
  accepts?: (request: RecordedRequest, secret: string) => boolean;
}

// The postgres template logs in as an ordinary role, because AEGIS rejects superusers such as `postgres`.
const loginRole = (await postgresReachable()) ? await createLoginRole() : 'no_test_server';
after(async () => {
  if (loginRole !== 'no_test_server') await dropLoginRole(loginRole);
});

const bearerOf = (request: RecordedRequest, secret: string) => request.headers.authorization === `Bearer ${secret}`;

const cases: Record<string, TemplateCase> = {
  openai: {
    good: { api_key: 'sk-proj-abcdefghijklmnopqrstuvwx', base_url: '{{stub}}' },
    wrong: { field: 'api_key', value: 'pk-abcdefghijklmnopqrstuvwx' },
    accepts: (request, secret) => request.url === '/v1/models' && bearerOf(request, secret),
  },
  anthropic: {
    good: { api_key: 'sk-ant-api03-abcdefghijklmnopqrstuv', base_url: '{{stub}}' },
    wrong: { field: 'api_key', value: 'sk-abcdefghijklmnopqrstuvwx' },
    accepts: (request, secret) => request.headers['x-api-key'] === secret && request.headers['anthropic-version'] === '2023-06-01',
  },
  github: {
    good: { access_token: 'ghp_abcdefghijklmnopqrstuvwxyz0123', base_url: '{{stub}}' },
    wrong: { field: 'access_token', value: 'token-abcdefghijklmnopqrstuvwxyz' },
    accepts: (request, secret) => request.url === '/user' && bearerOf(request, secret),
  },
  cloudflare: {
    good: { api_token: 'abcdefghijklmnopqrstuvwxyz0123456789ABCD', base_url: '{{stub}}' },
    wrong: { field: 'api_token', value: 'short' },
    accepts: (request, secret) => request.url === '/client/v4/user/tokens/verify' && bearerOf(request, secret),
  },
  telegram: {
    good: { access_token: '123456789:AAabcdefghijklmnopqrstuvwxyz012345', base_url: '{{stub}}' },
    wrong: { field: 'access_token', value: 'AAabcdefghijklmnopqrstuvwxyz012345' },
    accepts: (request, secret) => request.url === `/bot${encodeURIComponent(secret)}/getMe`,
  },
  stripe: {
    good: { secret_key: 'sk_test_abcdefghijklmnop', base_url: '{{stub}}' },
    wrong: { field: 'secret_key', value: 'pk_test_abcdefghijklmnop' },
    accepts: (request, secret) => request.url === '/v1/balance' && bearerOf(request, secret),
  },
  sendgrid: {
    good: { api_key: 'SG.abcdefghijklmnopqr.abcdefghijklmnopqrstuv', base_url: '{{stub}}' },
    wrong: { field: 'api_key', value: 'abcdefghijklmnopqr' },
    accepts: (request, secret) => request.url === '/v3/scopes' && bearerOf(request, secret),
  },
  slack: {
    good: { access_token: 'xoxb-1234567890-abcdefghij', base_url: '{{stub}}' },
    wrong: { field: 'access_token', value: 'slack-1234567890-abcdefghij' },
    accepts: (request, secret) => request.method === 'POST' && request.url === '/api/auth.test' && bearerOf(request, secret),
  },
  supabase: {
    good: { api_key: 'sb_secret_abcdefghijklmnopqrstuv', project_ref: 'abcdefghijklmnopqrst', project_url: '{{stub}}', key_type: 'secret' },
    wrong: { field: 'key_type', value: 'root' },
    accepts: (request, secret) => request.url === '/rest/v1/' && request.headers.apikey === secret && request.headers.authorization === undefined,
  },
  postgres: {
    good: { user: loginRole, password: 'any-password-trust-auth' },
    wrong: { field: 'user', value: 'bad role name' },
  },
  bearer: {
    good: { token: 'opaque-token-0123456789', test_url: '{{stub}}/whoami' },
    wrong: { field: 'test_url', value: 'ftp://example.invalid/' },
    accepts: (request, secret) => request.url === '/whoami' && bearerOf(request, secret),
  },
  basic_auth: {
    good: { user: 'alice', password: 'correct horse battery', test_url: '{{stub}}/private' },
    wrong: { field: 'user', value: 'alice:admin' },
    accepts: (request, secret) => request.headers.authorization === `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}`,
  },
};

function valuesFor(name: string, stub: HttpStub): Record<string, string> {
  return Object.fromEntries(Object.entries(cases[name]!.good).map(([field, value]) => [field, value.replace('{{stub}}', stub.url)]));
}

function secretOf(name: string): string {
  const template = builtinTemplates.find((entry) => entry.name === name)!;
  return cases[name]!.good[template.schema.secret_field]!;
}

for (const dialect of await testDialects()) {
  describe(`templates (${dialect})`, () => {
    let t: TestVault;
    let stub: HttpStub;

    before(async () => {
      // The postgres template logs in to the local test server, which trusts local connections.
      t = await openTestVault(dialect, { env: { AEGIS_POSTGRES_ADMIN_URL: testPostgresUrl } });
      stub = await startHttpStub((_request, response) => response.writeHead(401).end());
    });
    after(async () => {
      await stub.close();
      await destroyTestVault(t);
    });

    it('catalogue covers every case', () => {
      assert.deepEqual(builtinTemplates.map((template) => template.name).sort(), Object.keys(cases).sort());
    });

    it('lists templates with n8n types', async () => {
      const response = await call(t.app, 'GET', '/templates', { token: await tokenWith(t, 'reader', ['credentials:read']) });
      assert.equal(response.status, 200, response.body);
      const byName = new Map<string, { n8n_credential_type: string; builtin: boolean }>(response.json.templates.map((entry: { name: string }) => [entry.name, entry]));
      assert.equal(byName.get('openai')?.n8n_credential_type, 'openAiApi');
      assert.equal(byName.get('basic_auth')?.n8n_credential_type, 'httpBasicAuth');
      assert.equal(byName.get('supabase')?.builtin, true);
    });

    for (const template of builtinTemplates) {
      it(`${template.name} rejects a wrong field`, async () => {
        const values = { ...valuesFor(template.name, stub), [cases[template.name]!.wrong.field]: cases[template.name]!.wrong.value };
        const response = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: template.name, values, name: `bad/${template.name}` } });
        assert.equal(response.status, 400, response.body);
        assert.equal(response.json.field, `values.${cases[template.name]!.wrong.field}`);
        assert.ok(!response.body.includes(cases[template.name]!.wrong.value), 'the problem repeats the rejected value');
      });

      it(`${template.name} rejects a missing secret`, async () => {
        const values = valuesFor(template.name, stub);
        delete values[template.schema.secret_field];
        const response = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: template.name, values } });
        assert.equal(response.status, 400, response.body);
        assert.equal(response.json.field, `values.${template.schema.secret_field}`);
      });

      it(`${template.name} import passes its test`, async () => {
        const secret = secretOf(template.name);
        const accepts = cases[template.name]!.accepts;
        stub.handle((request, response) => response.writeHead(accepts?.(request, secret) ? 200 : 401).end('{}'));
        const name = `imported/${template.name}`;
        const imported = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: template.name, values: valuesFor(template.name, stub), name, tags: ['imported'] } });
        assert.equal(imported.status, 201, imported.body);
        assert.equal(imported.json.created, true);
        assert.equal(imported.json.credential.credential_type, template.credential_type);
        assert.equal(imported.json.credential.provider, template.provider);
        assert.equal(imported.json.credential.has_value, true);
        assert.equal(imported.json.credential.metadata.template, template.name);
        assert.equal(imported.json.credential.metadata[template.schema.secret_field], undefined);
        assert.ok(!imported.body.includes(secret), 'the import response contains the secret');

        const tested = await call(t.app, 'POST', `/credentials/${encodeURIComponent(name)}/test`, { token: t.adminToken });
        assert.equal(tested.status, 200, tested.body);
        assert.equal(tested.json.status, 'healthy', tested.body);
        assert.ok(!tested.body.includes(secret), 'the test response contains the secret');

        const revealed = await call(t.app, 'GET', `/credentials/${encodeURIComponent(name)}/value`, { token: t.adminToken });
        assert.equal(revealed.status, 200, revealed.body);
        assert.equal(revealed.json.value, secret);
        assert.ok(!t.logs.text().includes(secret), 'the logs contain the secret');
      });
    }

    it('wrong secret fails its test', async () => {
      stub.handle((request, response) => response.writeHead(bearerOf(request, 'sk-proj-abcdefghijklmnopqrstuvwx') ? 200 : 401).end());
      const values = { api_key: 'sk-proj-zzzzzzzzzzzzzzzzzzzzzzzz', base_url: stub.url };
      const imported = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: 'openai', values, name: 'imported/openai-wrong' } });
      assert.equal(imported.status, 201, imported.body);
      const tested = await call(t.app, 'POST', '/credentials/imported%2Fopenai-wrong/test', { token: t.adminToken });
      assert.equal(tested.json.status, 'unhealthy', tested.body);
    });

    it('second import returns existing', async () => {
      const body = { template_name: 'stripe', values: valuesFor('stripe', stub), name: 'imported/stripe-twice' };
      const first = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body });
      assert.equal(first.status, 201, first.body);
      const second = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body });
      assert.equal(second.status, 200, second.body);
      assert.equal(second.json.created, false);
      assert.equal(second.json.credential.id, first.json.credential.id);
    });

    it('import onto other credential conflicts', async () => {
      const created = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'imported/taken', credential_type: 'httpHeaderAuth' } });
      assert.equal(created.status, 201, created.body);
      const response = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: 'openai', values: valuesFor('openai', stub), name: 'imported/taken' } });
      assert.equal(response.status, 409, response.body);
      assert.equal(response.json.code, 'credential_exists');
    });

    it('unknown template is 404', async () => {
      const response = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: 'nonexistent', values: {} } });
      assert.equal(response.status, 404, response.body);
      assert.equal(response.json.code, 'template_not_found');
    });

    it('unknown field is named', async () => {
      const values = { ...valuesFor('openai', stub), api_secret: 'x' };
      const response = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: 'openai', values } });
      assert.equal(response.status, 400, response.body);
      assert.equal(response.json.field, 'values.api_secret');
    });

    it('admin adds and imports template', async () => {
      const template = {
        name: 'internal-api',
        credential_type: 'httpHeaderAuth',
        provider: 'api',
        description: 'Internal service key',
        schema: {
          fields: {
            type: 'object',
            additionalProperties: false,
            required: ['key', 'base_url'],
            properties: { key: { type: 'string', pattern: '^int_[a-z0-9]{8,}$' }, base_url: { type: 'string', pattern: '^https?://' } },
          },
          secret_field: 'key',
          provider_config: { test: { method: 'GET', url: '{{values.base_url}}/ping', headers: { 'x-internal-key': '{{value}}' } } },
        },
      };
      const writer = await tokenWith(t, 'writer', ['credentials:write']);
      const denied = await call(t.app, 'POST', '/templates', { token: writer, body: template });
      assert.equal(denied.status, 403, denied.body);
      const added = await call(t.app, 'POST', '/templates', { token: t.adminToken, body: template });
      assert.equal(added.status, 201, added.body);
      const again = await call(t.app, 'POST', '/templates', { token: t.adminToken, body: template });
      assert.equal(again.status, 409, again.body);

      const bad = await call(t.app, 'POST', '/import/template', { token: writer, body: { template_name: 'internal-api', values: { key: 'wrong', base_url: stub.url } } });
      assert.equal(bad.status, 400, bad.body);
      assert.equal(bad.json.field, 'values.key');

      stub.handle((request, response) => response.writeHead(request.url === '/ping' && request.headers['x-internal-key'] === 'int_abcdefgh1' ? 204 : 401).end());
      const imported = await call(t.app, 'POST', '/import/template', { token: writer, body: { template_name: 'internal-api', values: { key: 'int_abcdefgh1', base_url: stub.url }, name: 'imported/internal' } });
      assert.equal(imported.status, 201, imported.body);
      const tested = await call(t.app, 'POST', '/credentials/imported%2Finternal/test', { token: t.adminToken });
      assert.equal(tested.json.status, 'healthy', tested.body);
    });

    it('template schema errors are named', async () => {
      const response = await call(t.app, 'POST', '/templates', {
        token: t.adminToken,
        body: {
          name: 'broken',
          credential_type: 'httpHeaderAuth',
          provider: 'api',
          schema: { fields: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] }, secret_field: 'key', provider_config: { test: { method: 'GET', url: '{{values.host}}' } } },
        },
      });
      assert.equal(response.status, 400, response.body);
      assert.equal(response.json.field, 'schema.provider_config');
    });

    it('nested repetition in patterns is rejected', async () => {
      const add = (name: string, fields: Record<string, unknown>) =>
        call(t.app, 'POST', '/templates', {
          token: t.adminToken,
          body: { name, credential_type: 'httpHeaderAuth', provider: 'api', schema: { fields, secret_field: 'key', provider_config: { test: { method: 'GET', url: 'https://api.example.com/me' } } } },
        });
      const nested = await add('slow-pattern', { type: 'object', properties: { key: { type: 'string', pattern: '^(a+)+$' } }, required: ['key'] });
      assert.equal(nested.status, 400, nested.body);
      assert.equal(nested.json.field, 'schema.fields');
      assert.match(nested.json.detail, /\^\(a\+\)\+\$/);
      const keyed = await add('slow-keys', { type: 'object', properties: { key: { type: 'string' } }, patternProperties: { '^(\\w+\\s?)*$': { type: 'string' } } });
      assert.equal(keyed.status, 400, keyed.body);
      assert.equal(keyed.json.field, 'schema.fields');
      const behind = await add('slow-lookbehind', { type: 'object', properties: { key: { type: 'string', pattern: '^(?<!x)(a+)+$' } }, required: ['key'] });
      assert.equal(behind.status, 400, behind.body);
      assert.match(behind.json.detail, /cannot check/);
      const listed = await call(t.app, 'GET', '/templates', { token: t.adminToken });
      assert.ok(!listed.json.templates.some((template: { name: string }) => template.name.startsWith('slow-')), listed.body);
      const plain = await add('plain-pattern', { type: 'object', properties: { key: { type: 'string', pattern: '^key_[a-z0-9]{8,}$' } }, required: ['key'] });
      assert.equal(plain.status, 201, plain.body);
      // Bounded repetition inside a group is fine: a MAC address and a GUID.
      const bounded = await add('bounded-pattern', {
        type: 'object',
        properties: { key: { type: 'string', pattern: '^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$' }, id: { type: 'string', pattern: '^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$' } },
        required: ['key'],
      });
      assert.equal(bounded.status, 201, bounded.body);
    });

    it('fixed provider settings are checked when added', async () => {
      const fields = { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] };
      const add = (name: string, provider_config: Record<string, unknown>) =>
        call(t.app, 'POST', '/templates', { token: t.adminToken, body: { name, credential_type: 'httpHeaderAuth', provider: 'api', schema: { fields, secret_field: 'key', provider_config } } });
      const broken = await add('fixed-broken', { test: { method: 'GET', url: 'not a url' } });
      assert.equal(broken.status, 400, broken.body);
      assert.equal(broken.json.field, 'schema.provider_config.test.url');
      const header = await add('fixed-header', { test: { method: 'GET', url: 'https://api.example.com/me', headers: { 'transfer-encoding': 'chunked' } } });
      assert.equal(header.status, 400, header.body);
      assert.equal(header.json.field, 'schema.provider_config.test.headers.transfer-encoding');
      const valid = await add('fixed-valid', { test: { method: 'GET', url: 'https://api.example.com/me', headers: { authorization: 'Bearer {{value}}' } } });
      assert.equal(valid.status, 201, valid.body);
    });

    it('placeholder in array value is rejected', async () => {
      const fields = { type: 'object', properties: { key: { type: 'string' }, host: {} }, required: ['key'] };
      const provider_config = { test: { method: 'GET', url: 'http://{{values.host}}/ping', headers: { 'x-key': '{{value}}' } } };
      const added = await call(t.app, 'POST', '/templates', { token: t.adminToken, body: { name: 'any-host', credential_type: 'httpHeaderAuth', provider: 'api', schema: { fields, secret_field: 'key', provider_config } } });
      assert.equal(added.status, 201, added.body);

      // String(['{{value}}']) is '{{value}}', so the secret would be put into the test URL.
      for (const host of [['{{value}}'], { name: '{{value}}' }]) {
        const response = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: 'any-host', values: { key: 'any-host-secret', host }, name: 'any-host/one' } });
        assert.equal(response.status, 400, response.body);
        assert.equal(response.json.field, 'values.host');
      }
      const stored = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'any-host/one').executeTakeFirst();
      assert.equal(stored, undefined);
    });

    it('unfilled placeholder names its field', async () => {
      const fields = { type: 'object', properties: { key: { type: 'string' }, host: { type: 'string' }, url: { type: 'string' }, team: { type: 'string' } }, required: ['key'] };
      const add = (name: string, url: string) =>
        call(t.app, 'POST', '/templates', {
          token: t.adminToken,
          body: { name, credential_type: 'httpHeaderAuth', provider: 'api', schema: { fields, secret_field: 'key', provider_config: { test: { method: 'GET', url, headers: { 'x-key': '{{value}}', 'x-team': '{{values.team}}' } } } } },
        });
      assert.equal((await add('partial-host', 'https://{{values.host}}/ping')).status, 201);
      assert.equal((await add('whole-url', '{{values.url}}')).status, 201);

      const partial = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: 'partial-host', values: { key: 'partial-host-secret' }, name: 'unfilled/partial' } });
      assert.equal(partial.status, 400, partial.body);
      assert.equal(partial.json.field, 'values.host');
      assert.equal(partial.json.detail, "values.host: is required, because the template's provider_config.test.url uses it");
      const whole = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: 'whole-url', values: { key: 'whole-url-secret' }, name: 'unfilled/whole' } });
      assert.equal(whole.status, 400, whole.body);
      assert.equal(whole.json.field, 'values.url');
      assert.equal(whole.json.detail, "values.url: is required, because the template's provider_config.test.url uses it");
      const stored = await t.vault.db.kysely.selectFrom('aegis_credentials').select('name').where('name', 'like', 'unfilled/%').execute();
      assert.deepEqual(stored, []);

      // An optional setting that is only a placeholder is still left out.
      const filled = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: 'partial-host', values: { key: 'partial-host-secret', host: 'api.example.com' }, name: 'filled/partial' } });
      assert.equal(filled.status, 201, filled.body);
      assert.deepEqual(filled.json.credential.provider_config.test, { method: 'GET', url: 'https://api.example.com/ping', headers: { 'x-key': '{{value}}' } });
    });

    it('Object property names are not fields', async () => {
      const provider_config = (field: string) => ({ test: { method: 'GET', url: `https://api.example.com/{{values.${field}}}`, headers: { 'x-key': '{{value}}' } } });
      const undeclared = await call(t.app, 'POST', '/templates', {
        token: t.adminToken,
        body: { name: 'undeclared-constructor', credential_type: 'httpHeaderAuth', provider: 'api', schema: { fields: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] }, secret_field: 'key', provider_config: provider_config('constructor') } },
      });
      assert.equal(undeclared.status, 400, undeclared.body);
      assert.equal(undeclared.json.field, 'schema.provider_config');

      const fields = { type: 'object', properties: { key: { type: 'string' }, constructor: { type: 'string' } }, required: ['key'] };
      const declared = await call(t.app, 'POST', '/templates', {
        token: t.adminToken,
        body: { name: 'declared-constructor', credential_type: 'httpHeaderAuth', provider: 'api', schema: { fields, secret_field: 'key', provider_config: provider_config('constructor') } },
      });
      assert.equal(declared.status, 201, declared.body);
      const imported = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: 'declared-constructor', values: { key: 'declared-constructor-secret' }, name: 'declared/constructor' } });
      assert.equal(imported.status, 400, imported.body);
      assert.equal(imported.json.field, 'values.constructor');
    });

    it('bad secret names its field', async () => {
      const fields = { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] };
      const provider_config = { test: { method: 'GET', url: 'https://api.example.com/me', headers: { 'x-key': '{{value}}' } } };
      const added = await call(t.app, 'POST', '/templates', { token: t.adminToken, body: { name: 'plain-secret', credential_type: 'httpHeaderAuth', provider: 'api', schema: { fields, secret_field: 'key', provider_config } } });
      assert.equal(added.status, 201, added.body);
      const cases = [
        { key: '', status: 400, detail: /^values\.key: must not be empty/ },
        { key: 'line\nbreak', status: 400, detail: /^values\.key: cannot be sent in provider_config\.test\.headers\.x-key/ },
        { key: 'k'.repeat(65_537), status: 413, detail: /^values\.key: must be at most 65536 bytes/ },
      ];
      for (const { key, status, detail } of cases) {
        const response = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: 'plain-secret', values: { key }, name: 'plain-secret/one' } });
        assert.equal(response.status, status, response.body);
        assert.equal(response.json.field, 'values.key');
        assert.match(response.json.detail, detail);
      }
      const failures = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('id').where('credential_name', '=', 'plain-secret/one').execute();
      assert.equal(failures.length, cases.length, 'one audit entry per failed import');
    });

    it('field named template is rejected', async () => {
      const provider_config = { test: { method: 'GET', url: 'https://api.example.com/me', headers: { 'x-key': '{{value}}' } } };
      const declared = { type: 'object', properties: { key: { type: 'string' }, template: { type: 'string' } }, required: ['key'] };
      const rejected = await call(t.app, 'POST', '/templates', { token: t.adminToken, body: { name: 'named-template', credential_type: 'httpHeaderAuth', provider: 'api', schema: { fields: declared, secret_field: 'key', provider_config } } });
      assert.equal(rejected.status, 400, rejected.body);
      assert.equal(rejected.json.field, 'schema.fields.properties.template');

      // A template that allows any extra field would let values.template replace metadata.template, and a
      // later openai import of the same name would then return this credential as its own.
      const open = { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] };
      const added = await call(t.app, 'POST', '/templates', { token: t.adminToken, body: { name: 'open-fields', credential_type: 'httpHeaderAuth', provider: 'api', schema: { fields: open, secret_field: 'key', provider_config } } });
      assert.equal(added.status, 201, added.body);
      const imported = await call(t.app, 'POST', '/import/template', { token: t.adminToken, body: { template_name: 'open-fields', values: { key: 'open-fields-secret', template: 'openai' }, name: 'open-fields/one' } });
      assert.equal(imported.status, 400, imported.body);
      assert.equal(imported.json.field, 'values.template');
      const stored = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'open-fields/one').executeTakeFirst();
      assert.equal(stored, undefined);
    });

    it('secret field default is rejected', async () => {
      const fields = { type: 'object', properties: { key: { type: 'string', default: 'shared-default-secret' } }, required: ['key'] };
      const provider_config = { test: { method: 'GET', url: 'https://api.example.com/me', headers: { 'x-key': '{{value}}' } } };
      const response = await call(t.app, 'POST', '/templates', { token: t.adminToken, body: { name: 'default-secret', credential_type: 'httpHeaderAuth', provider: 'api', schema: { fields, secret_field: 'key', provider_config } } });
      assert.equal(response.status, 400, response.body);
      assert.equal(response.json.field, 'schema.fields.properties.key.default');
      assert.ok(!response.body.includes('shared-default-secret'), response.body);
      const listed = await call(t.app, 'GET', '/templates', { token: t.adminToken });
      assert.ok(!listed.body.includes('shared-default-secret'), 'the default secret is listed');
    });

    it('impossible rotation defaults are rejected', async () => {
      const fields = { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] };
      const test = { method: 'GET', url: 'https://api.example.com/me', headers: { 'x-key': '{{value}}' } };
      const body = (name: string, provider_config: Record<string, unknown>) => ({
        name,
        credential_type: 'httpHeaderAuth',
        provider: 'api',
        schema: { fields, secret_field: 'key', provider_config },
        rotation_defaults: { rotation_enabled: true, rotation_strategy: 'scheduled', rotation_interval_hours: 24 },
      });
      // Without a rotate request, an api credential gets no new value unless the request brings one.
      const rejected = await call(t.app, 'POST', '/templates', { token: t.adminToken, body: body('no-rotate', { test }) });
      assert.equal(rejected.status, 400, rejected.body);
      assert.equal(rejected.json.field, 'rotation_defaults.rotation_strategy');
      const missing = await call(t.app, 'GET', '/templates', { token: t.adminToken });
      assert.ok(!missing.json.templates.some((template: { name: string }) => template.name === 'no-rotate'), missing.body);

      const rotate = { method: 'POST', url: 'https://api.example.com/keys', headers: { 'x-key': '{{value}}' }, value_pointer: '/key' };
      const accepted = await call(t.app, 'POST', '/templates', { token: t.adminToken, body: body('with-rotate', { test, rotate }) });
      assert.equal(accepted.status, 201, accepted.body);
    });

    it('built-in name cannot be reused', async () => {
      const response = await call(t.app, 'POST', '/templates', {
        token: t.adminToken,
        body: { name: 'openai', credential_type: 'openAiApi', provider: 'api', schema: { fields: { type: 'object', properties: { k: { type: 'string' } }, required: ['k'] }, secret_field: 'k', provider_config: {} } },
      });
      assert.equal(response.status, 409, response.body);
    });
  });
}
