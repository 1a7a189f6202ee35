import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { snapshotDatabase } from '../helpers/db-snapshot.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/** One rejected request: the problem must name `field` in its `field` member (or a child of it), or in its detail. */
interface BadInput {
  title: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  body?: unknown;
  /** Sent as is, for text that JSON.stringify cannot produce (broken JSON, unpaired surrogates). */
  rawBody?: string;
  contentType?: string;
  field: string;
  /** The exact status, when the case fixes one; any 4xx otherwise. */
  status?: number;
}

const bodyLimitBytes = 128 * 1024;
const sqlInjection = "x'; drop table aegis_credentials; --";
const validCreate = { name: 'bad/new', credential_type: 'httpHeaderAuth', provider: 'api' };

/** Names the name rule rejects: `..`, control characters, NUL, SQL text, Unicode, empty and too long. */
const badNames = [
  'a..b',
  '../etc/passwd',
  'team/../secret',
  'line\nbreak',
  'tab\there',
  'nul\u0000byte',
  'del\u007fchar',
  sqlInjection,
  'ключ',
  'café',
  'key🔑',
  'with space',
  '',
  'a'.repeat(129),
];

/** Credential types the type rule rejects: path-like text, separators at an end or in a row, a leading `-`, spaces and Unicode. */
const badTypes = ['..', '.', '/', ':', '../etc/passwd', '/etc/passwd', 'a/../b', 'a//b', 'a..b', 'a.:b', 'slackApi/', 'slackApi.', '.slackApi', '-slackApi', 'a.-b', 'slack Api', 'ключ', 't'.repeat(129)];

/** Date-time strings that are not valid instants, or that PostgreSQL's timestamptz cannot hold. */
const badInstants = ['2026-02-30T00:00:00Z', 'tomorrow', '2026-06-01', '2026-06-01T25:00:00Z', '', '2026-06-30T23:59:60Z', '0000-01-01T00:00:00Z'];

/** Nests `levels` objects inside each other: {"a":{"a":...}}. */
function nested(levels: number): string {
  return '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
}

function corpus(dir: string): BadInput[] {
  const cases: BadInput[] = [];
  const create = (title: string, body: unknown, field: string, status?: number) =>
    cases.push({ title: `create ${title}`, method: 'POST', url: '/credentials', body, field, status });
  const patch = (title: string, body: unknown, field: string, status?: number, name = 'seed%2Fone') =>
    cases.push({ title: `patch ${title}`, method: 'PATCH', url: `/credentials/${name}`, body, field, status });

  // POST /credentials
  cases.push({ title: 'create malformed JSON', method: 'POST', url: '/credentials', rawBody: '{"name": "bad/new",', field: 'body', status: 400 });
  cases.push({ title: 'create JSON array body', method: 'POST', url: '/credentials', rawBody: '[1, 2]', field: 'body', status: 400 });
  cases.push({ title: 'create empty JSON body', method: 'POST', url: '/credentials', rawBody: '', field: 'body', status: 400 });
  cases.push({ title: 'create text body', method: 'POST', url: '/credentials', rawBody: 'name=bad', contentType: 'text/plain', field: 'body', status: 415 });
  cases.push({
    title: 'create prototype key',
    method: 'POST',
    url: '/credentials',
    rawBody: '{"name": "bad/new", "credential_type": "x", "__proto__": {"admin": true}}',
    field: 'body',
    status: 400,
  });
  cases.push({
    title: 'create body over limit',
    method: 'POST',
    url: '/credentials',
    body: { ...validCreate, description: 'd'.repeat(bodyLimitBytes + 1) },
    field: 'body',
    status: 413,
  });
  create('interval as string', { ...validCreate, rotation_interval_hours: '12' }, 'rotation_interval_hours', 400);
  create('fractional interval', { ...validCreate, rotation_interval_hours: 1.5 }, 'rotation_interval_hours', 400);
  create('rotation_enabled as string', { ...validCreate, rotation_enabled: 'true' }, 'rotation_enabled', 400);
  create('tags as string', { ...validCreate, tags: 'prod' }, 'tags', 400);
  create('tag as number', { ...validCreate, tags: [1] }, 'tags', 400);
  create('name as number', { ...validCreate, name: 42 }, 'name', 400);
  create('value as number', { ...validCreate, value: 42 }, 'value', 400);
  create('metadata as array', { ...validCreate, metadata: ['x'] }, 'metadata', 400);
  create('missing credential_type', { name: 'bad/new' }, 'credential_type', 400);
  create('unknown field', { ...validCreate, colour: 'red' }, 'colour', 400);
  for (const name of badNames) create(`name ${JSON.stringify(name).slice(0, 40)}`, { ...validCreate, name }, 'name', 400);
  create('SQL credential_type', { ...validCreate, credential_type: sqlInjection }, 'credential_type', 400);
  for (const type of badTypes) create(`credential_type ${JSON.stringify(type).slice(0, 40)}`, { ...validCreate, credential_type: type }, 'credential_type', 400);
  create('empty value', { ...validCreate, value: '' }, 'value', 400);
  create('blank value', { ...validCreate, value: ' \t\n ' }, 'value', 400);
  create('invisible value', { ...validCreate, value: '\u200b\u2060\u180e' }, 'value', 400);
  create('value over 64 KiB', { ...validCreate, value: 'v'.repeat(65_537) }, 'value', 413);
  create('multibyte value over 64 KiB', { ...validCreate, value: 'é'.repeat(32_769) }, 'value', 413);
  cases.push({
    title: 'create unpaired surrogate value',
    method: 'POST',
    url: '/credentials',
    rawBody: '{"name": "bad/new", "credential_type": "x", "value": "ab\\ud800cd"}',
    field: 'value',
    status: 400,
  });
  cases.push({
    title: 'create lone low surrogate value',
    method: 'POST',
    url: '/credentials',
    rawBody: '{"name": "bad/new", "credential_type": "x", "value": "\\udc00"}',
    field: 'value',
    status: 400,
  });
  for (const instant of badInstants) create(`expires_at ${JSON.stringify(instant)}`, { ...validCreate, expires_at: instant }, 'expires_at', 400);
  create('zero interval', { ...validCreate, rotation_interval_hours: 0 }, 'rotation_interval_hours', 400);
  create('negative interval', { ...validCreate, rotation_interval_hours: -5 }, 'rotation_interval_hours', 400);
  create('huge interval', { ...validCreate, rotation_interval_hours: 87_601 }, 'rotation_interval_hours', 400);
  create('negative alert threshold', { ...validCreate, alert_threshold_hours: -1 }, 'alert_threshold_hours', 400);
  create('unknown provider', { ...validCreate, provider: 'vault9' }, 'provider', 400);
  create('unknown rotation strategy', { ...validCreate, rotation_strategy: 'sometimes' }, 'rotation_strategy', 400);
  create('cron with ?', { ...validCreate, rotation_cron: '0 3 ? * 1' }, 'rotation_cron', 400);
  create('cron with day 32', { ...validCreate, rotation_cron: '0 3 32 * *' }, 'rotation_cron', 400);

  const env = (file: unknown, variable: unknown = 'API_KEY') => ({ name: 'bad/env', credential_type: 'env', provider: 'env', provider_config: { file, variable } });
  create('env file in /etc', env('/etc/passwd'), 'provider_config.file', 400);
  create('env file via ..', env(`${dir}/../outside.env`), 'provider_config.file', 400);
  create('env file via symlink', env(path.join(dir, 'escape', 'passwd')), 'provider_config.file', 400);
  create('env file relative', env('app.env'), 'provider_config.file', 400);
  create('env file missing', { ...env('x'), provider_config: { variable: 'API_KEY' } }, 'provider_config.file', 400);
  create('env file a number', env(123), 'provider_config.file', 400);
  create('env file NUL', env(`${dir}/a\u0000.env`), 'provider_config', 400);
  create('env variable invalid', env(path.join(dir, 'app.env'), '1BAD'), 'provider_config.variable', 400);
  create('env variable __proto__', env(path.join(dir, 'app.env'), '__proto__'), 'provider_config.variable', 400);
  const apiTest = (headers: Record<string, string>) => ({ ...validCreate, provider_config: { test: { method: 'GET', url: 'http://127.0.0.1:9/me', headers } } });
  create('api header set by the client', apiTest({ 'Transfer-Encoding': 'chunked' }), 'provider_config.test.headers.Transfer-Encoding', 400);
  create('api header with a line break', apiTest({ 'x-key': 'a\r\nX-Injected: 1' }), 'provider_config.test.headers.x-key', 400);
  create('api header past U+00FF', apiTest({ 'x-price': 'price€' }), 'provider_config.test.headers.x-price', 400);
  create('api connection header', apiTest({ connection: 'upgrade' }), 'provider_config.test.headers.connection', 400);
  create('api header value with a line break', { ...apiTest({ authorization: 'Bearer {{value}}' }), value: 'sk-live\n' }, 'value', 400);
  create('env file a folder', env(path.join(dir, 'folder.env')), 'provider_config.file', 400);
  create('env file in a missing folder', env(path.join(dir, 'missing', 'app.env')), 'provider_config.file', 400);

  create('NUL in metadata value', { ...validCreate, metadata: { note: 'a\u0000b' } }, 'metadata', 400);
  create('NUL in metadata key', { ...validCreate, metadata: { 'a\u0000': 1 } }, 'metadata', 400);
  create('NUL deep in metadata', { ...validCreate, metadata: { a: { b: ['ok', '\u0000'] } } }, 'metadata', 400);
  create('NUL in provider_config', { ...validCreate, provider_config: { header: 'X-Key\u0000' } }, 'provider_config', 400);
  create('metadata over 16 KiB', { ...validCreate, metadata: { note: 'm'.repeat(17_000) } }, 'metadata', 400);
  create('provider_config over 16 KiB', { ...validCreate, provider_config: { note: 'p'.repeat(17_000) } }, 'provider_config', 400);
  cases.push({
    title: 'create deeply nested metadata',
    method: 'POST',
    url: '/credentials',
    rawBody: `{"name": "bad/new", "credential_type": "x", "metadata": ${nested(20_000)}}`,
    field: 'metadata',
    status: 400,
  });
  cases.push({
    title: 'create surrogate in metadata',
    method: 'POST',
    url: '/credentials',
    rawBody: '{"name": "bad/new", "credential_type": "x", "metadata": {"note": "\\ud800"}}',
    field: 'metadata',
    status: 400,
  });
  create('NUL in description', { ...validCreate, description: 'a\u0000b' }, 'description', 400);
  create('escape in description', { ...validCreate, description: 'a\u001b[31mred' }, 'description', 400);
  cases.push({
    title: 'create surrogate in description',
    method: 'POST',
    url: '/credentials',
    rawBody: '{"name": "bad/new", "credential_type": "x", "description": "\\udfff"}',
    field: 'description',
    status: 400,
  });
  create('NUL in provider_credential_id', { ...validCreate, provider_credential_id: '1\u00002' }, 'provider_credential_id', 400);

  // PATCH /credentials/{name}
  cases.push({ title: 'patch malformed JSON', method: 'PATCH', url: '/credentials/seed%2Fone', rawBody: '{"description": ', field: 'body', status: 400 });
  cases.push({
    title: 'patch body over limit',
    method: 'PATCH',
    url: '/credentials/seed%2Fone',
    body: { description: 'd'.repeat(bodyLimitBytes + 1) },
    field: 'body',
    status: 413,
  });
  patch('empty object', {}, 'body', 400);
  patch('empty value', { value: '' }, 'value', 400);
  cases.push({ title: 'patch metadata integer past 2^53', method: 'PATCH', url: '/credentials/seed%2Fone', rawBody: '{"metadata": {"big": 12345678901234567890}}', field: 'metadata.big', status: 400 });
  cases.push({ title: 'patch metadata number past double', method: 'PATCH', url: '/credentials/seed%2Fone', rawBody: '{"metadata": {"inf": 1e400}}', field: 'metadata.inf', status: 400 });
  patch('interval as string', { rotation_interval_hours: '12' }, 'rotation_interval_hours', 400);
  patch('rotation_enabled as number', { rotation_enabled: 1 }, 'rotation_enabled', 400);
  patch('tags as object', { tags: { prod: true } }, 'tags', 400);
  patch('name is not patchable', { name: 'renamed' }, 'name', 400);
  patch('provider is not patchable', { provider: 'env' }, 'provider', 400);
  patch('value over 64 KiB', { value: 'v'.repeat(65_537) }, 'value', 413);
  cases.push({
    title: 'patch unpaired surrogate value',
    method: 'PATCH',
    url: '/credentials/seed%2Fone',
    rawBody: '{"value": "\\ud83d"}',
    field: 'value',
    status: 400,
  });
  for (const instant of badInstants) patch(`expires_at ${JSON.stringify(instant)}`, { expires_at: instant }, 'expires_at', 400);
  patch('zero interval', { rotation_interval_hours: 0 }, 'rotation_interval_hours', 400);
  patch('negative interval', { rotation_interval_hours: -1 }, 'rotation_interval_hours', 400);
  patch('negative alert threshold', { alert_threshold_hours: -24 }, 'alert_threshold_hours', 400);
  patch('NUL in metadata', { metadata: { note: '\u0000' } }, 'metadata', 400);
  patch('NUL in provider_config', { provider_config: { 'x\u0000y': 'z' } }, 'provider_config', 400);
  patch('NUL in description', { description: '\u0000' }, 'description', 400);
  patch('env file in /etc', { provider_config: { file: '/etc/shadow', variable: 'API_KEY' } }, 'provider_config.file', 400, 'seed%2Fenv');
  patch('env file via symlink', { provider_config: { file: path.join(dir, 'escape', 'hosts'), variable: 'API_KEY' } }, 'provider_config.file', 400, 'seed%2Fenv');
  patch('api header value past U+00FF', { value: 'new€value' }, 'value', 400, 'seed%2Fheader');
  patch('env file NUL', { provider_config: { file: `${dir}/x\u0000`, variable: 'API_KEY' } }, 'provider_config', 400, 'seed%2Fenv');
  cases.push({ title: 'token pattern with ..', method: 'POST', url: '/tokens', body: { actor: 'agent', scopes: ['credentials:read'], name_patterns: ['../*'] }, field: 'name_patterns', status: 400 });
  // Routes that take no body reject one instead of ignoring it.
  cases.push({ title: 'run-scheduled with a body', method: 'POST', url: '/rotation/run-scheduled', body: { dry_run: 'yes' }, field: 'dry_run', status: 400 });
  cases.push({ title: 'check-all with a body', method: 'POST', url: '/health/check-all', body: { concurrency: 'x' }, field: 'concurrency', status: 400 });
  cases.push({ title: 'retire with a body', method: 'DELETE', url: '/credentials/seed%2Fone', body: { force: true }, field: 'force', status: 400 });
  cases.push({ title: 'test with an array body', method: 'POST', url: '/credentials/seed%2Fone/test', body: [1], field: 'body', status: 400 });
  cases.push({ title: 'reveal with a body', method: 'GET', url: '/credentials/seed%2Fone/value', body: { version: 1 }, field: 'body', status: 400 });
  cases.push({ title: 'list with a body', method: 'GET', url: '/credentials', body: { status: 'expired' }, field: 'body', status: 400 });
  cases.push({ title: 'audit log with an empty object', method: 'GET', url: '/audit/log', rawBody: '{}', field: 'body', status: 400 });
  cases.push({ title: 'rotate api header value past U+00FF', method: 'POST', url: '/credentials/seed%2Fheader/rotate', body: { value: 'new€value' }, field: 'value', status: 400 });
  cases.push({ title: 'rotate api header value with a line break', method: 'POST', url: '/credentials/seed%2Fheader/rotate', body: { value: 'x\r\nX-Injected: 1' }, field: 'value', status: 400 });
  cases.push({ title: 'rotate empty value', method: 'POST', url: '/credentials/seed%2Fone/rotate', body: { value: '' }, field: 'value', status: 400 });
  cases.push({ title: 'rotate env value with a NUL', method: 'POST', url: '/credentials/seed%2Fenv/rotate', body: { value: 'nul\u0000byte' }, field: 'value', status: 400 });
  cases.push({ title: 'rotate env value with a line break', method: 'POST', url: '/credentials/seed%2Fenv/rotate', body: { value: 'first\nsecond' }, field: 'value', status: 400 });
  cases.push({ title: 'rotate env value with every quote', method: 'POST', url: '/credentials/seed%2Fenv/rotate', body: { value: `it's "$5" \`x\`` }, field: 'value', status: 400 });
  patch('name with ..', { description: 'x' }, 'name', 400, 'a..b');
  patch('name with NUL', { description: 'x' }, 'name', 400, 'a%00b');
  patch('name with newline', { description: 'x' }, 'name', 400, 'a%0Ab');
  patch('Unicode name', { description: 'x' }, 'name', 400, encodeURIComponent('ключ'));
  patch('SQL name', { description: 'x' }, 'name', 400, encodeURIComponent(sqlInjection));
  patch('unknown name', { description: 'x' }, 'nope/missing', 404, 'nope%2Fmissing');

  // GET /credentials
  const list = (title: string, query: string, field: string) =>
    cases.push({ title: `list ${title}`, method: 'GET', url: `/credentials?${query}`, field, status: 400 });
  list('limit not a number', 'limit=abc', 'limit');
  list('limit zero', 'limit=0', 'limit');
  list('limit negative', 'limit=-1', 'limit');
  list('limit too large', 'limit=501', 'limit');
  list('offset negative', 'offset=-1', 'offset');
  list('offset fractional', 'offset=1.5', 'offset');
  list('unknown status', 'status=bogus', 'status');
  list('unknown provider', 'provider=vault9', 'provider');
  list('SQL type', `type=${encodeURIComponent(sqlInjection)}`, 'type');
  list('path-like type', 'type=..', 'type');
  list('control character tag', 'tag=a%01b', 'tag');
  list('NUL tag', 'tag=a%00b', 'tag');
  list('Unicode tag', `tag=${encodeURIComponent('ключ')}`, 'tag');
  list('unknown parameter', 'colour=red', 'colour');

  // POST /tokens
  const token = (title: string, body: unknown, field: string, status = 400) =>
    cases.push({ title: `token ${title}`, method: 'POST', url: '/tokens', body, field, status });
  cases.push({ title: 'token malformed JSON', method: 'POST', url: '/tokens', rawBody: '{"actor": "x", "scopes": [', field: 'body', status: 400 });
  token('body over limit', { actor: 'x', scopes: ['admin'], description: 'd'.repeat(bodyLimitBytes + 1) }, 'body', 413);
  for (const actor of ['anonymous', 'system', 'scheduler', 'cli:root', 'System', 'CLI:root']) token(`reserved actor ${actor}`, { actor, scopes: ['admin'] }, 'actor');
  token('missing actor', { scopes: ['admin'] }, 'actor');
  token('actor as number', { actor: 5, scopes: ['admin'] }, 'actor');
  token('empty actor', { actor: '', scopes: ['admin'] }, 'actor');
  token('actor with space', { actor: 'bad actor', scopes: ['admin'] }, 'actor');
  token('SQL actor', { actor: "x'; drop table aegis_tokens; --", scopes: ['admin'] }, 'actor');
  token('Unicode actor', { actor: 'агент', scopes: ['admin'] }, 'actor');
  token('scopes as string', { actor: 'x', scopes: 'admin' }, 'scopes');
  token('no scopes', { actor: 'x', scopes: [] }, 'scopes');
  token('unknown scope', { actor: 'x', scopes: ['root'] }, 'scopes');
  token('repeated scope', { actor: 'x', scopes: ['admin', 'admin'] }, 'scopes');
  token('unknown field', { actor: 'x', scopes: ['admin'], secret: 'mine' }, 'secret');
  for (const instant of badInstants) token(`expires_at ${JSON.stringify(instant)}`, { actor: 'x', scopes: ['admin'], expires_at: instant }, 'expires_at');
  token('expires_at in the past', { actor: 'x', scopes: ['admin'], expires_at: '2020-01-01T00:00:00Z' }, 'expires_at');
  token('NUL in description', { actor: 'x', scopes: ['admin'], description: 'a\u0000b' }, 'description');
  cases.push({
    title: 'token surrogate in description',
    method: 'POST',
    url: '/tokens',
    rawBody: '{"actor": "x", "scopes": ["admin"], "description": "\\ud800"}',
    field: 'description',
    status: 400,
  });
  token('name pattern with space', { actor: 'x', scopes: ['admin'], name_patterns: ['a b'] }, 'name_patterns');
  token('Unicode tag', { actor: 'x', scopes: ['admin'], tags: ['é'] }, 'tags');
  token('repeated name pattern', { actor: 'x', scopes: ['admin'], name_patterns: ['team/*', 'team/*'] }, 'name_patterns');
  token('repeated tag', { actor: 'x', scopes: ['admin'], tags: ['prod', 'prod'] }, 'tags');

  // POST /templates
  const templateSchema = { fields: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] }, secret_field: 'key', provider_config: {} };
  for (const type of badTypes) {
    const body = { name: 'bad-type', credential_type: type, provider: 'api', schema: templateSchema };
    cases.push({ title: `template credential_type ${JSON.stringify(type).slice(0, 40)}`, method: 'POST', url: '/templates', body, field: 'credential_type', status: 400 });
  }

  // POST /import/template
  const importTemplate = (title: string, body: unknown) =>
    cases.push({ title: `import ${title}`, method: 'POST', url: '/import/template', body, field: 'template_name', status: 400 });
  importTemplate('template_name with escape', { template_name: '\u001b[31mopenai', values: {} });
  importTemplate('template_name with NUL', { template_name: 'open\u0000ai', values: {} });
  importTemplate('template_name with line break', { template_name: 'openai\nfake', values: {} });
  cases.push({
    title: 'import template_name with surrogate',
    method: 'POST',
    url: '/import/template',
    rawBody: '{"template_name": "\\ud800", "values": {}}',
    field: 'template_name',
    status: 400,
  });

  // GET /audit/log
  const audit = (title: string, query: string, field: string) =>
    cases.push({ title: `audit ${title}`, method: 'GET', url: `/audit/log?${query}`, field, status: 400 });
  for (const instant of badInstants) {
    if (instant === '') continue;
    audit(`start_date ${JSON.stringify(instant)}`, `start_date=${encodeURIComponent(instant)}`, 'start_date');
    audit(`end_date ${JSON.stringify(instant)}`, `end_date=${encodeURIComponent(instant)}`, 'end_date');
  }
  audit('start after end', 'start_date=2026-06-02T00:00:00Z&end_date=2026-06-01T00:00:00Z', 'start_date');
  audit('limit zero', 'limit=0', 'limit');
  audit('limit too large', 'limit=1001', 'limit');
  audit('limit not a number', 'limit=ten', 'limit');
  audit('offset negative', 'offset=-5', 'offset');
  audit('success not boolean', 'success=maybe', 'success');
  audit('NUL credential_name', 'credential_name=a%00b', 'credential_name');
  audit('escape in actor', 'actor=%1B%5B31m', 'actor');
  audit('unknown parameter', 'colour=red', 'colour');
  return cases;
}

for (const dialect of await testDialects()) {
  describe(`bad input on ${dialect}`, () => {
    let t: TestVault;

    before(async () => {
      t = await openTestVault(dialect, { env: { AEGIS_BODY_LIMIT_BYTES: String(bodyLimitBytes) } });
      fs.writeFileSync(path.join(t.dir, 'app.env'), 'API_KEY=placeholder\n');
      fs.symlinkSync('/etc', path.join(t.dir, 'escape'));
      fs.mkdirSync(path.join(t.dir, 'folder.env'));
      const seeds = [
        { name: 'seed/one', credential_type: 'httpHeaderAuth', provider: 'api', value: 'seed-value', metadata: { team: 'ops' } },
        { name: 'seed/env', credential_type: 'env', provider: 'env', provider_config: { file: path.join(t.dir, 'app.env'), variable: 'API_KEY' } },
        { name: 'seed/header', credential_type: 'apiKey', provider: 'api', value: 'header-seed', provider_config: { test: { method: 'GET', url: 'http://127.0.0.1:9/me', headers: { authorization: 'Bearer {{value}}' } } } },
      ];
      for (const body of seeds) {
        const created = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body });
        assert.equal(created.status, 201, created.body);
      }
    });
    after(async () => destroyTestVault(t));

    const snapshot = () =>
      snapshotDatabase(t.vault.db, { skipTables: ['aegis_audit_log', 'aegis_audit_head'], skipColumns: ['aegis_tokens.last_used_at'] });

    // The folder is only known once the vault is open, so the cases are built with a placeholder
    // and each test rewrites it to the vault's folder.
    const placeholder = '/nonexistent-aegis-test-dir';
    for (const bad of corpus(placeholder)) {
      it(bad.title, async () => {
        const withDir = (text: string) => text.split(placeholder).join(t.dir);
        let rawBody = bad.rawBody;
        if (rawBody === undefined && bad.body !== undefined) rawBody = withDir(JSON.stringify(bad.body));
        const before = await snapshot();

        const response = await call(t.app, bad.method, bad.url, {
          token: t.adminToken,
          rawBody,
          headers: bad.contentType ? { 'content-type': bad.contentType } : {},
        });

        if (bad.status !== undefined) assert.equal(response.status, bad.status, response.body);
        assert.ok(response.status >= 400, response.body);
        assert.ok(response.status < 500, response.body);
        assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
        assert.equal(response.json.status, response.status);
        assert.equal(typeof response.json.code, 'string');
        const field = String(response.json.field ?? '');
        const namesField = field === bad.field || field.endsWith(`.${bad.field}`) || field.startsWith(`${bad.field}.`) || String(response.json.detail).includes(bad.field);
        assert.ok(namesField, `expected the problem to name ${bad.field}: ${response.body.slice(0, 500)}`);

        assert.deepEqual(await snapshot(), before);
      });
    }

    it('names the allowed env folders', async () => {
      const body = { name: 'bad/outside', credential_type: 'env', provider: 'env', provider_config: { file: '/etc/passwd', variable: 'API_KEY' } };
      const response = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body });
      assert.equal(response.status, 400, response.body);
      assert.match(response.json.detail, /outside the folders allowed for env credentials\. Add its folder to providers\.env\.allowed_dirs or AEGIS_ENV_ALLOWED_DIRS .*keeping the folders already listed/);
      assert.ok(!response.json.detail.includes(t.dir), 'the response names a server folder');
    });

    it("refuses AEGIS's own files as env files", async () => {
      const own = [path.join(t.dir, 'master.key'), ...(dialect === 'sqlite' ? [path.join(t.dir, 'aegis.db'), path.join(t.dir, 'aegis.db-wal')] : [])];
      for (const file of own) {
        const before = await snapshot();
        const body = { name: 'bad/own', credential_type: 'env', provider: 'env', provider_config: { file, variable: 'API_KEY' } };
        const response = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body });
        assert.equal(response.status, 400, `${file}: ${response.body}`);
        assert.equal(response.json.field, 'provider_config.file', file);
        assert.match(response.json.detail, /is one of AEGIS's own files \(its database, master key, TLS or configuration file\)/, file);
        assert.deepEqual(await snapshot(), before, file);
      }
    });

    it('keeps the audit chain valid', async () => {
      const verified = await call(t.app, 'GET', '/audit/verify', { token: t.adminToken });
      assert.equal(verified.status, 200, verified.body);
      assert.equal(verified.json.ok, true, verified.body);
    });
  });
}

describe('the configuration file as an env file', () => {
  it('is refused like the other own files', async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-config-'));
    const configFile = path.join(folder, 'aegis.yaml');
    fs.writeFileSync(configFile, 'logging:\n  level: warn\n');
    const t = await openTestVault('sqlite', { env: { AEGIS_CONFIG: configFile, AEGIS_ENV_ALLOWED_DIRS: folder } });
    try {
      const body = { name: 'bad/config', credential_type: 'env', provider: 'env', provider_config: { file: configFile, variable: 'API_KEY' } };
      const response = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body });
      assert.equal(response.status, 400, response.body);
      assert.equal(response.json.field, 'provider_config.file');
      assert.match(response.json.detail, /is one of AEGIS's own files \(its database, master key, TLS or configuration file\)/);
    } finally {
      await destroyTestVault(t);
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
