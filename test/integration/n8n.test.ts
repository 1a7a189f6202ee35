import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import path from 'node:path';
import { importN8nExport } from '../../src/import/n8n-import.js';
import { acquireLease } from '../../src/leases/leases.repository.js';
import { KeyedQueue } from '../../src/lib/keyed-queue.js';
import { rotationLeaseName } from '../../src/rotation/rotation.engine.js';
import { localCaller } from '../../src/tokens/caller.js';
import { testDialects } from '../helpers/databases.js';
import { N8nStub, type StubWorkflow } from '../helpers/n8n-stub.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const apiKey = 'n8n-test-api-key';
const secretData = { accessToken: 'xoxb-secret-value-1' };

/** Builds a workflow whose first node uses another credential and whose second node uses `slackCredentialId`, or none. */
function workflow(id: string, slackCredentialId?: string): StubWorkflow {
  return {
    id,
    name: `Workflow ${id}`,
    nodes: [
      { name: 'Fetch', type: 'n8n-nodes-base.httpRequest', credentials: { httpHeaderAuth: { id: '3', name: 'Other header' } } },
      {
        name: 'Post to Slack',
        type: 'n8n-nodes-base.slack',
        ...(slackCredentialId ? { credentials: { slackApi: { id: slackCredentialId, name: 'Slack bot' } } } : {}),
      },
    ],
    connections: { Fetch: { main: [[{ node: 'Post to Slack', type: 'main', index: 0 }]] } },
    settings: { executionOrder: 'v1', timezone: 'Europe/Berlin' },
  };
}

async function createSlackCredential(t: TestVault, n8nId = '7'): Promise<void> {
  const created = await call(t.app, 'POST', '/credentials', {
    token: t.adminToken,
    body: {
      name: 'slack/bot',
      credential_type: 'slackApi',
      provider: 'n8n',
      provider_credential_id: n8nId,
      value: JSON.stringify(secretData),
      metadata: { n8n_name: 'Slack bot' },
    },
  });
  assert.equal(created.status, 201, created.body);
}

/** Returns the n8n id recorded on slack/bot and on its current version. */
async function recordedIds(t: TestVault): Promise<{ credential: string | null; version: string | null }> {
  const kysely = t.vault.db.kysely;
  const record = await kysely.selectFrom('aegis_credentials').select('provider_credential_id').where('name', '=', 'slack/bot').executeTakeFirstOrThrow();
  const version = await kysely
    .selectFrom('aegis_credential_versions as v')
    .innerJoin('aegis_credentials as c', 'c.id', 'v.credential_id')
    .select('v.provider_credential_id')
    .where('c.name', '=', 'slack/bot')
    .where('v.is_current', '=', true)
    .executeTakeFirstOrThrow();
  return { credential: record.provider_credential_id, version: version.provider_credential_id };
}

for (const dialect of await testDialects()) {
  describe(`n8n against a stand-in on ${dialect}`, () => {
    let stub: N8nStub;
    let t: TestVault;

    async function open(recentApi: boolean): Promise<void> {
      stub = await N8nStub.start({ apiKey, recentApi });
      t = await openTestVault(dialect, { env: { N8N_URL: stub.url, N8N_API_KEY: apiKey } });
    }

    async function closeBoth(): Promise<void> {
      await destroyTestVault(t);
      await stub.close();
    }

    describe('recent n8n', () => {
      before(async () => open(true));
      after(closeBoth);

      it('apply sets only the named node', async () => {
        stub.addCredential({ id: '7', name: 'Slack bot', type: 'slackApi', data: secretData });
        stub.addWorkflow(workflow('wf1'));
        await createSlackCredential(t);
        const agent = await tokenWith(t, 'ARIA', ['credentials:apply']);

        const applied = await call(t.app, 'POST', '/credentials/slack%2Fbot/apply', {
          token: agent,
          body: { workflow_id: 'wf1', node_name: 'Post to Slack', requested_by: 'HEPHAESTUS' },
        });

        assert.equal(applied.status, 200, applied.body);
        assert.deepEqual(applied.json, { status: 'applied', credential: 'slack/bot', workflow_id: 'wf1', node: 'Post to Slack' });
        assert.ok(!applied.body.includes(secretData.accessToken), 'the agent never receives the value');
        const stored = stub.workflows.get('wf1')!;
        assert.deepEqual(stored.nodes[1]!.credentials, { slackApi: { id: '7', name: 'Slack bot' } });
        assert.deepEqual(stored.nodes[0]!.credentials, { httpHeaderAuth: { id: '3', name: 'Other header' } });
        assert.deepEqual(stored.settings, { executionOrder: 'v1', timezone: 'Europe/Berlin' });
        assert.deepEqual(stored.connections, workflow('wf1').connections);
        const put = stub.requests.find((request) => request.method === 'PUT')!;
        assert.deepEqual(Object.keys(JSON.parse(put.body)).sort(), ['connections', 'name', 'nodes', 'settings']);
        assert.ok(!put.body.includes(secretData.accessToken), 'the workflow carries no value');

        const entry = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('action', '=', 'applied').executeTakeFirstOrThrow();
        assert.equal(entry.actor, 'ARIA');
        assert.equal(Boolean(entry.success), true);
        assert.equal(entry.target, 'n8n workflow wf1');
        const details = typeof entry.details === 'string' ? JSON.parse(entry.details) : entry.details;
        assert.deepEqual(details, { workflow_id: 'wf1', node_name: 'Post to Slack', requested_by: 'HEPHAESTUS' });
      });

      it('apply to unknown node lists nodes', async () => {
        const response = await call(t.app, 'POST', '/credentials/slack%2Fbot/apply', {
          token: t.adminToken,
          body: { workflow_id: 'wf1', node_name: 'Nope' },
        });
        assert.equal(response.status, 404, response.body);
        assert.equal(response.json.code, 'node_not_found');
        assert.deepEqual(response.json.node_names, ['Fetch', 'Post to Slack']);
        assert.match(response.json.detail, /Fetch, Post to Slack/);
      });

      it('failed apply audits its target', async () => {
        const response = await call(t.app, 'POST', '/credentials/slack%2Fbot/apply', {
          token: t.adminToken,
          body: { workflow_id: 'wf1', node_name: 'Missing node', requested_by: 'HEPHAESTUS' },
        });
        assert.equal(response.status, 404, response.body);

        const entry = await t.vault.db.kysely
          .selectFrom('aegis_audit_log')
          .selectAll()
          .where('action', '=', 'applied')
          .where('success', '=', false)
          .orderBy('seq', 'desc')
          .executeTakeFirstOrThrow();
        assert.equal(entry.target, 'n8n workflow wf1');
        const details = typeof entry.details === 'string' ? JSON.parse(entry.details) : entry.details;
        assert.deepEqual(details, { workflow_id: 'wf1', node_name: 'Missing node', requested_by: 'HEPHAESTUS' });
        assert.match(entry.error_message ?? '', /node_not_found/);
      });

      it('apply to unknown workflow is 404', async () => {
        const response = await call(t.app, 'POST', '/credentials/slack%2Fbot/apply', { token: t.adminToken, body: { workflow_id: 'nope', node_name: 'Fetch' } });
        assert.equal(response.status, 404, response.body);
        assert.equal(response.json.code, 'workflow_not_found');
      });

      it('concurrent applies keep both nodes', async () => {
        stub.addWorkflow(workflow('wf5'));
        const header = await call(t.app, 'POST', '/credentials', {
          token: t.adminToken,
          body: { name: 'header/one', credential_type: 'httpHeaderAuth', provider: 'n8n', provider_credential_id: '30', metadata: { n8n_name: 'Header one' } },
        });
        assert.equal(header.status, 201, header.body);

        // The first read of wf5 waits until the second apply has read wf5 too, or has queued behind the first.
        let openGate!: () => void;
        const gate = new Promise<void>((resolve) => {
          openGate = resolve;
        });
        let reads = 0;
        stub.onRequest = (request) => {
          if (request.method === 'GET' && request.url === '/api/v1/workflows/wf5' && ++reads === 2) openGate();
        };
        const run = KeyedQueue.prototype.run;
        let queued = 0;
        KeyedQueue.prototype.run = function (this: KeyedQueue, ...args) {
          if (++queued === 2) openGate();
          return run.apply(this, args);
        } as typeof run;
        stub.hold('GET', '/workflows/wf5', gate);
        let responses;
        try {
          responses = await Promise.all([
            call(t.app, 'POST', '/credentials/slack%2Fbot/apply', { token: t.adminToken, body: { workflow_id: 'wf5', node_name: 'Post to Slack' } }),
            call(t.app, 'POST', '/credentials/header%2Fone/apply', { token: t.adminToken, body: { workflow_id: 'wf5', node_name: 'Fetch' } }),
          ]);
        } finally {
          KeyedQueue.prototype.run = run;
          stub.onRequest = undefined;
          // Retired, so that sync does not report its made-up n8n id as missing.
          await call(t.app, 'DELETE', '/credentials/header%2Fone', { token: t.adminToken });
        }

        for (const response of responses) assert.equal(response.status, 200, response.body);
        const nodes = stub.workflows.get('wf5')!.nodes;
        assert.deepEqual(nodes[1]!.credentials, { slackApi: { id: '7', name: 'Slack bot' } });
        assert.deepEqual(nodes[0]!.credentials, { httpHeaderAuth: { id: '30', name: 'Header one' } });
      });

      it('apply checks the saved workflow', async () => {
        // n8n responds to the update with the workflow as it was, without the new entry.
        stub.inject({ method: 'PUT', path: '/workflows/wf1', status: 200, body: workflow('wf1') });

        const response = await call(t.app, 'POST', '/credentials/slack%2Fbot/apply', { token: t.adminToken, body: { workflow_id: 'wf1', node_name: 'Post to Slack' } });

        assert.equal(response.status, 502, response.body);
        assert.equal(response.json.code, 'n8n_request_failed');
        assert.match(response.json.detail, /without credential 7 on node "Post to Slack"/);
      });

      it('rotation patches the n8n data', async () => {
        const newData = { accessToken: 'xoxb-secret-value-2' };
        const rotated = await call(t.app, 'POST', '/credentials/slack%2Fbot/rotate', { token: t.adminToken, body: { value: JSON.stringify(newData) } });

        assert.equal(rotated.status, 200, rotated.body);
        assert.deepEqual(stub.credentials.get('7')!.data, newData);
        assert.ok(stub.requests.some((request) => request.method === 'PATCH' && request.url === '/api/v1/credentials/7'));
        assert.ok(!stub.requests.some((request) => request.method === 'DELETE'), 'nothing is deleted when PATCH exists');
        const record = await t.vault.db.kysely.selectFrom('aegis_credentials').select('provider_credential_id').where('name', '=', 'slack/bot').executeTakeFirstOrThrow();
        assert.equal(record.provider_credential_id, '7');
        assert.ok(!t.logs.text().includes('xoxb-secret-value'), 'no value in the logs');
      });

      it('rotation needs a JSON object value', async () => {
        const before = await t.vault.db.kysely.selectFrom('aegis_credentials').select(['status', 'updated_at']).where('name', '=', 'slack/bot').executeTakeFirstOrThrow();
        const requestsBefore = stub.requests.length;
        const alertsBefore = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').select('id').execute();

        const generated = await call(t.app, 'POST', '/credentials/slack%2Fbot/rotate', { token: t.adminToken, body: {} });
        assert.equal(generated.status, 409, generated.body);
        assert.equal(generated.json.code, 'rotation_unsupported');
        assert.match(generated.json.detail, /Send the new value in the request/);
        for (const value of ['not json', '[1, 2]', '"text"']) {
          const rejected = await call(t.app, 'POST', '/credentials/slack%2Fbot/rotate', { token: t.adminToken, body: { value } });
          assert.equal(rejected.status, 400, rejected.body);
          assert.equal(rejected.json.field, 'value', value);
        }

        const after = await t.vault.db.kysely.selectFrom('aegis_credentials').select(['status', 'updated_at']).where('name', '=', 'slack/bot').executeTakeFirstOrThrow();
        assert.deepEqual(after, before);
        assert.equal(stub.requests.length, requestsBefore, 'n8n was not called');
        const alertsAfter = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').select('id').execute();
        assert.equal(alertsAfter.length, alertsBefore.length, 'no alert was queued');
      });

      it('create and PATCH need JSON objects', async () => {
        for (const value of ['not json obj', '[1, 2]', '"text"']) {
          const created = await call(t.app, 'POST', '/credentials', {
            token: t.adminToken,
            body: { name: 'slack/other', credential_type: 'slackApi', provider: 'n8n', provider_credential_id: '8', value },
          });
          assert.equal(created.status, 400, created.body);
          assert.equal(created.json.field, 'value', value);
          const patched = await call(t.app, 'PATCH', '/credentials/slack%2Fbot', { token: t.adminToken, body: { value } });
          assert.equal(patched.status, 400, patched.body);
          assert.equal(patched.json.field, 'value', value);
        }
        const other = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'slack/other').execute();
        assert.deepEqual(other, []);
        const versions = await call(t.app, 'GET', '/credentials/slack%2Fbot/versions', { token: t.adminToken });
        assert.equal(versions.json.total, 2, 'no version was added');
      });

      it('n8n import passes the check', async () => {
        const report = await importN8nExport(t.vault, localCaller('import-test'), path.join(import.meta.dirname, '../../examples/n8n-credentials.json'), { dryRun: false });

        assert.deepEqual(report.created.map((entry) => entry.name).sort(), ['Billing-API-header', 'GitHub-Release-Bot', 'OpenAI', 'Ops-alerts-Telegram']);
        // The example's Slack entry is still encrypted, so it is skipped before any value is checked.
        assert.deepEqual(report.skipped.map((entry) => entry.name), ['Slack Workspace']);
        assert.match(report.skipped[0]!.reason, /data is encrypted/);
        // Retired, so that sync does not report their n8n ids as missing.
        for (const entry of report.created) await call(t.app, 'DELETE', `/credentials/${entry.name}`, { token: t.adminToken });
      });

      it('health check finds the id', async () => {
        const checked = await call(t.app, 'POST', '/credentials/slack%2Fbot/test', { token: t.adminToken });
        assert.equal(checked.status, 200, checked.body);
        assert.equal(checked.json.status ?? checked.json.health, 'healthy', checked.body);
        stub.credentials.delete('7');
        const gone = await call(t.app, 'POST', '/credentials/slack%2Fbot/test', { token: t.adminToken });
        assert.equal(gone.json.status ?? gone.json.health, 'unhealthy', gone.body);
        stub.addCredential({ id: '7', name: 'Slack bot', type: 'slackApi', data: secretData });
      });

      it('health check uses GET by id', async () => {
        stub.options.getCredentialById = true;
        try {
          const earlier = stub.requests.length;
          const checked = await call(t.app, 'POST', '/credentials/slack%2Fbot/test', { token: t.adminToken });
          assert.equal(checked.json.status ?? checked.json.health, 'healthy', checked.body);
          const sent = stub.requests.slice(earlier).filter((request) => request.method === 'GET').map((request) => request.url);
          assert.deepEqual(sent, ['/api/v1/credentials/7'], 'the list is not read when GET by id exists');
        } finally {
          stub.options.getCredentialById = false;
        }
      });

      it('sync registers, updates, reports missing', async () => {
        // n8n renamed credential 7 and has five new ones (8 to 12). AEGIS's 'gone/one' points at an id n8n no longer has.
        stub.credentials.get('7')!.name = 'Slack bot (renamed)';
        for (let id = 8; id <= 12; id += 1) stub.addCredential({ id: String(id), name: `Key ${id}`, type: 'httpHeaderAuth', data: {} });
        const gone = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'gone/one', credential_type: 'githubApi', provider: 'n8n', provider_credential_id: '99' } });
        assert.equal(gone.status, 201, gone.body);

        const synced = await call(t.app, 'POST', '/sync/n8n', { token: t.adminToken });

        assert.equal(synced.status, 200, synced.body);
        assert.equal(synced.json.synced, 6);
        assert.deepEqual(synced.json.new.map((entry: { name: string }) => entry.name).sort(), ['Key-10', 'Key-11', 'Key-12', 'Key-8', 'Key-9']);
        assert.deepEqual(synced.json.updated, [{ name: 'slack/bot', n8n_id: '7', changes: ['n8n_name'] }]);
        assert.deepEqual(synced.json.missing, [{ name: 'gone/one', n8n_id: '99' }]);
        const cursorCalls = stub.requests.filter((request) => request.url.startsWith('/api/v1/credentials?') && request.url.includes('cursor='));
        assert.equal(cursorCalls.length, 2, 'six credentials in pages of two take two cursors');
        const registered = await t.vault.db.kysely.selectFrom('aegis_credentials').selectAll().where('name', '=', 'Key-8').executeTakeFirstOrThrow();
        assert.equal(registered.provider, 'n8n');
        assert.equal(registered.provider_credential_id, '8');
        assert.equal(registered.encrypted_value, null);
        const stillThere = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('name', '=', 'gone/one').executeTakeFirstOrThrow();
        assert.equal(stillThere.status, 'active', 'a missing credential is reported, not deleted');

        const again = await call(t.app, 'POST', '/sync/n8n', { token: t.adminToken });
        assert.equal(again.status, 200, again.body);
        assert.deepEqual(again.json.new, []);
        assert.deepEqual(again.json.updated, []);
      });

      it('sync keeps changes made meanwhile', async () => {
        // n8n lists a new credential before the renamed one, and a PATCH lands while the sync registers
        // the new one, after the sync read slack/bot's record.
        const slack = stub.credentials.get('7')!;
        stub.credentials.delete('7');
        stub.addCredential({ id: '20', name: 'Key 20', type: 'httpHeaderAuth', data: {} });
        stub.addCredential({ ...slack, name: 'Slack bot (renamed again)' });
        const registry = t.vault.registry;
        const create = registry.create.bind(registry);
        registry.create = async (...args) => {
          const patched = await call(t.app, 'PATCH', '/credentials/slack%2Fbot', { token: t.adminToken, body: { metadata: { team: 'ops' } } });
          assert.equal(patched.status, 200, patched.body);
          return create(...args);
        };
        try {
          const synced = await call(t.app, 'POST', '/sync/n8n', { token: t.adminToken });
          assert.equal(synced.status, 200, synced.body);
          assert.deepEqual(synced.json.updated, [{ name: 'slack/bot', n8n_id: '7', changes: ['n8n_name'] }]);
        } finally {
          registry.create = create;
        }

        const detail = (await call(t.app, 'GET', '/credentials/slack%2Fbot', { token: t.adminToken })).json.credential_details;
        assert.equal(detail.metadata.n8n_name, 'Slack bot (renamed again)');
        assert.equal(detail.metadata.team, 'ops');
      });

      it('apply rejects malformed workflows', async () => {
        const bodies: Array<[unknown, RegExp]> = [
          ['', /not a JSON object/],
          [null, /not a JSON object/],
          [[], /not a JSON object/],
          [{ ...workflow('wf1'), nodes: {} }, /without a "nodes" list/],
          [{ ...workflow('wf1'), nodes: [null] }, /node 0 is not an object with a string "name"/],
        ];
        const puts = () => stub.requests.filter((request) => request.method === 'PUT').length;
        const putsBefore = puts();
        for (const [body, fault] of bodies) {
          stub.inject({ method: 'GET', path: '/workflows/wf1', status: 200, body });
          const response = await call(t.app, 'POST', '/credentials/slack%2Fbot/apply', { token: t.adminToken, body: { workflow_id: 'wf1', node_name: 'Post to Slack' } });
          assert.equal(response.status, 502, `${JSON.stringify(body)}: ${response.body}`);
          assert.equal(response.json.code, 'n8n_response_invalid', JSON.stringify(body));
          assert.match(response.json.detail, fault, JSON.stringify(body));
        }
        assert.equal(puts(), putsBefore, 'no workflow was written');
      });

      it('sync rejects malformed listings', async () => {
        const countCredentials = async () => (await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').execute()).length;
        const before = await countCredentials();
        const good = { id: '50', name: 'Key 50', type: 'httpHeaderAuth' };
        const listings: Array<[unknown[], RegExp]> = [
          [[{ data: { 0: good } }], /a page without a "data" list/],
          [[{ nextCursor: null }], /a page without a "data" list/],
          [[{ data: [good, { id: 7, name: null, type: 123 }], nextCursor: null }], /credential entry 1 \(id 7\) without a string "name"/],
          [[{ data: [good], nextCursor: 'next' }, { data: [{ id: '51', name: 'Key 51', type: 123 }], nextCursor: null }], /credential entry 1 \(id 51\) without a string "type"/],
          [[{ data: [good, null], nextCursor: null }], /credential entry 1 that is not a JSON object/],
        ];
        for (const [pages, fault] of listings) {
          for (const page of pages) stub.inject({ method: 'GET', path: '/credentials', status: 200, body: page });
          const response = await call(t.app, 'POST', '/sync/n8n', { token: t.adminToken });
          assert.equal(response.status, 502, `${JSON.stringify(pages)}: ${response.body}`);
          assert.equal(response.json.code, 'n8n_response_invalid');
          assert.match(response.json.detail, fault);
          assert.equal(await countCredentials(), before, 'nothing was registered');
        }
      });

      it('sync skips unstorable credentials', async () => {
        const added = [
          { id: '60', name: 'Key 60', type: 'bad type!' },
          { id: '61', name: 'Key 61', type: 'a'.repeat(129) },
          { id: '62', name: 'Key 62', type: 'httpHeaderAuth' },
          { id: '63', name: 'Key 63', type: '../etc/passwd' },
          // Key-8 is taken, and neither "Key-8-x y" nor "n8n-credential-x y" is a valid name.
          { id: 'x y', name: 'Key 8', type: 'httpHeaderAuth' },
        ];
        for (const entry of added) stub.addCredential({ ...entry, data: {} });
        stub.credentials.get('7')!.type = 'slack api';
        try {
          const synced = await call(t.app, 'POST', '/sync/n8n', { token: t.adminToken });

          assert.equal(synced.status, 200, synced.body);
          assert.deepEqual(synced.json.new, [{ name: 'Key-62', n8n_id: '62', type: 'httpHeaderAuth' }]);
          assert.deepEqual(synced.json.updated, []);
          const skipped = Object.fromEntries(synced.json.skipped.map((entry: { n8n_id: string; reason: string }) => [entry.n8n_id, entry.reason]));
          assert.deepEqual(Object.keys(skipped).sort(), ['60', '61', '63', '7', 'x y']);
          assert.match(skipped['60'], /not a valid credential_type/);
          assert.match(skipped['63'], /not a valid credential_type/);
          assert.match(skipped['61'], /up to 128 characters/);
          assert.match(skipped['7'], /not a valid credential_type/);
          assert.match(skipped['x y'], /valid AEGIS name/);
          assert.equal(synced.json.skipped.find((entry: { n8n_id: string }) => entry.n8n_id === '60').n8n_name, 'Key 60');
          assert.ok(!synced.json.missing.some((entry: { n8n_id: string }) => entry.n8n_id === '7'), 'a skipped credential is not missing');
          const slack = await t.vault.db.kysely.selectFrom('aegis_credentials').select('credential_type').where('name', '=', 'slack/bot').executeTakeFirstOrThrow();
          assert.equal(slack.credential_type, 'slackApi');
          const registered = await t.vault.db.kysely.selectFrom('aegis_credentials').select('provider_credential_id').where('provider_credential_id', 'in', ['60', '61', '63', 'x y']).execute();
          assert.deepEqual(registered, []);
        } finally {
          stub.credentials.get('7')!.type = 'slackApi';
          for (const entry of added) stub.credentials.delete(entry.id);
        }
      });

      it('rollback rejects a version without value', async () => {
        // Sync registered Key-9 with no value (version 1); the PATCH stores one as version 2.
        const patched = await call(t.app, 'PATCH', '/credentials/Key-9', { token: t.adminToken, body: { value: JSON.stringify({ apiKey: 'key-9-value' }) } });
        assert.equal(patched.status, 200, patched.body);
        const requestsBefore = stub.requests.length;

        const rolledBack = await call(t.app, 'POST', '/credentials/Key-9/rollback', { token: t.adminToken, body: { version: 1 } });

        assert.equal(rolledBack.status, 409, rolledBack.body);
        assert.equal(rolledBack.json.code, 'version_has_no_value');
        assert.match(rolledBack.json.detail, /Version 1 of "Key-9" has no stored value/);
        assert.equal(stub.requests.length, requestsBefore, 'n8n was not called');
        const revealed = await call(t.app, 'GET', '/credentials/Key-9/value', { token: t.adminToken });
        assert.equal(revealed.json.version, 2);
        assert.equal(revealed.json.value, JSON.stringify({ apiKey: 'key-9-value' }));
        const history = await call(t.app, 'GET', '/rotation/history?credential_name=Key-9', { token: t.adminToken });
        assert.equal(history.json.total, 0);
      });

      it('long n8n message leaks no prefix', async () => {
        // The member sits where a cut of n8n's text at 300 characters would split it.
        const rejected = 'xoxb-straddling-member-7';
        stub.inject({ method: 'PATCH', path: '/credentials/7', status: 400, body: { message: `${'x'.repeat(290)} ${rejected} is not valid` } });

        const rotated = await call(t.app, 'POST', '/credentials/slack%2Fbot/rotate', { token: t.adminToken, body: { value: JSON.stringify({ accessToken: rejected }) } });

        assert.equal(rotated.status, 502, rotated.body);
        const audit = await call(t.app, 'GET', '/audit/log?limit=1000', { token: t.adminToken });
        for (const [place, text] of Object.entries({ response: rotated.body, audit: audit.body, logs: t.logs.text() })) {
          assert.ok(!text.includes(rejected.slice(0, 8)), `${place} contains the start of the member`);
        }
      });

      it('n8n messages leak no member', async () => {
        // n8n quotes one member of the data in its messages: of the rejected new data, then of the stored data.
        const rejected = 'xoxb-rejected-member-5';
        const stored = (await call(t.app, 'GET', '/credentials/slack%2Fbot/value', { token: t.adminToken })).json;
        const storedMember = JSON.parse(stored.value).accessToken as string;
        stub.inject({ method: 'PATCH', path: '/credentials/7', status: 400, body: { message: `accessToken ${rejected} is not valid` } });
        stub.inject({ method: 'POST', path: '/credentials/7/test', status: 200, body: { status: 'Error', message: `token ${storedMember} was revoked` } });

        const rotated = await call(t.app, 'POST', '/credentials/slack%2Fbot/rotate', { token: t.adminToken, body: { value: JSON.stringify({ accessToken: rejected, region: 'eu' }) } });
        const checked = await call(t.app, 'POST', '/credentials/slack%2Fbot/test', { token: t.adminToken });

        assert.equal(rotated.status, 502, rotated.body);
        assert.match(rotated.json.detail, /accessToken \[REDACTED\] is not valid/);
        assert.equal(checked.json.status ?? checked.json.health, 'unhealthy', checked.body);
        assert.match(checked.body, /token \[REDACTED\] was revoked/);
        const audit = await call(t.app, 'GET', '/audit/log?limit=1000', { token: t.adminToken });
        const history = await call(t.app, 'GET', '/rotation/history?credential_name=slack%2Fbot', { token: t.adminToken });
        const alerts = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').selectAll().execute();
        const places = { response: rotated.body + checked.body, audit: audit.body, history: history.body, alerts: JSON.stringify(alerts), logs: t.logs.text() };
        for (const [place, text] of Object.entries(places)) {
          assert.ok(!text.includes(rejected), `${place} contains the rejected member`);
          assert.ok(!text.includes(storedMember), `${place} contains the stored member`);
        }
        assert.ok(alerts.some((alert) => alert.alert_type === 'rotation_failed'), 'the failure raised an alert');
      });

      it('wrong API key fails apply', async () => {
        const wrong = await openTestVault(dialect, { env: { N8N_URL: stub.url, N8N_API_KEY: 'wrong-key' } });
        try {
          await createSlackCredential(wrong);
          const response = await call(wrong.app, 'POST', '/credentials/slack%2Fbot/apply', { token: wrong.adminToken, body: { workflow_id: 'wf1', node_name: 'Fetch' } });
          assert.equal(response.status, 502, response.body);
          assert.equal(response.json.code, 'n8n_request_failed');
          assert.match(response.json.detail, /HTTP 401/);
        } finally {
          await destroyTestVault(wrong);
        }
      });
    });

    describe('older n8n without list and PATCH', () => {
      before(async () => open(false));
      after(closeBoth);

      it('rotation replaces and re-points workflows', async () => {
        stub.addCredential({ id: '7', name: 'Slack bot', type: 'slackApi', data: secretData });
        stub.addWorkflow(workflow('wf1', '7'));
        stub.addWorkflow(workflow('wf2', '7'));
        stub.addWorkflow(workflow('wf3'));
        await createSlackCredential(t);
        const newData = { accessToken: 'xoxb-secret-value-3' };

        const rotated = await call(t.app, 'POST', '/credentials/slack%2Fbot/rotate', { token: t.adminToken, body: { value: JSON.stringify(newData) } });

        assert.equal(rotated.status, 200, rotated.body);
        assert.equal(stub.credentials.has('7'), false, 'the old credential is deleted');
        const replacement = [...stub.credentials.values()].find((credential) => credential.name === 'Slack bot')!;
        assert.deepEqual(replacement.data, newData);
        assert.equal(replacement.type, 'slackApi');
        for (const id of ['wf1', 'wf2']) {
          const nodes = stub.workflows.get(id)!.nodes;
          assert.deepEqual(nodes[1]!.credentials, { slackApi: { id: replacement.id, name: 'Slack bot' } }, `workflow ${id}`);
          assert.deepEqual(nodes[0]!.credentials, { httpHeaderAuth: { id: '3', name: 'Other header' } }, `workflow ${id}`);
        }
        assert.equal(stub.workflows.get('wf3')!.nodes[1]!.credentials, undefined);
        const record = await t.vault.db.kysely.selectFrom('aegis_credentials').select('provider_credential_id').where('name', '=', 'slack/bot').executeTakeFirstOrThrow();
        assert.equal(record.provider_credential_id, replacement.id);
      });

      it('rollback follows the replacement', async () => {
        const before = [...stub.credentials.values()].find((credential) => credential.name === 'Slack bot')!;
        const rolledBack = await call(t.app, 'POST', '/credentials/slack%2Fbot/rollback', { token: t.adminToken, body: {} });
        assert.equal(rolledBack.status, 200, rolledBack.body);
        assert.equal(rolledBack.json.to_version, 1);

        assert.equal(stub.credentials.has(before.id), false, 'the rotated credential is deleted');
        const restored = [...stub.credentials.values()].find((credential) => credential.name === 'Slack bot')!;
        assert.deepEqual(restored.data, secretData);
        assert.deepEqual(stub.workflows.get('wf1')!.nodes[1]!.credentials, { slackApi: { id: restored.id, name: 'Slack bot' } });
        assert.deepEqual(await recordedIds(t), { credential: restored.id, version: restored.id });
      });

      it('recovery follows the replacement', async () => {
        const before = [...stub.credentials.values()].find((credential) => credential.name === 'Slack bot')!;
        // A rotation whose process stopped before it wrote its pending version: recovery puts the
        // current value back, which on this n8n replaces the credential under a new id.
        await t.vault.db.kysely.updateTable('aegis_credentials').set({ status: 'rotating' }).where('name', '=', 'slack/bot').execute();

        const report = await t.vault.rotation.recover();

        assert.deepEqual(report, { completed: [], restored: ['slack/bot'], failed: [], skipped: [] });
        assert.equal(stub.credentials.has(before.id), false, 'the replaced credential is deleted');
        const restored = [...stub.credentials.values()].find((credential) => credential.name === 'Slack bot')!;
        assert.deepEqual(restored.data, secretData);
        const record = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('name', '=', 'slack/bot').executeTakeFirstOrThrow();
        assert.equal(record.status, 'active');
        assert.deepEqual(await recordedIds(t), { credential: restored.id, version: restored.id });
      });

      it('unsupported sync alerts once', async () => {
        const before = await t.vault.db.kysely.selectFrom('aegis_credentials').select(({ fn }) => fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
        for (let run = 0; run < 2; run += 1) {
          const response = await call(t.app, 'POST', '/sync/n8n', { token: t.adminToken });
          assert.equal(response.status, 501, response.body);
          assert.equal(response.json.code, 'n8n_unsupported');
          assert.equal(response.json.endpoint, 'GET /credentials');
        }
        const alerts = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').selectAll().where('alert_type', '=', 'n8n_unsupported').execute();
        assert.equal(alerts.length, 1);
        assert.equal(alerts[0]!.condition_key, `n8n_sync_unsupported:${stub.url}`);
        const afterwards = await t.vault.db.kysely.selectFrom('aegis_credentials').select(({ fn }) => fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
        assert.equal(Number(afterwards.count), Number(before.count), 'an unsupported sync changes nothing');
      });
    });

    describe('older n8n, replace failing part-way', () => {
      beforeEach(async () => {
        await open(false);
        stub.addCredential({ id: '7', name: 'Slack bot', type: 'slackApi', data: secretData });
        stub.addWorkflow(workflow('wf1', '7'));
        stub.addWorkflow(workflow('wf2', '7'));
        await createSlackCredential(t);
      });
      afterEach(closeBoth);

      const newData = { accessToken: 'xoxb-secret-value-4' };

      /** Returns the n8n credential id each workflow's Slack node uses. */
      function slackIds(): Record<string, string | undefined> {
        return Object.fromEntries(['wf1', 'wf2'].map((id) => [id, stub.workflows.get(id)!.nodes[1]!.credentials?.slackApi?.id]));
      }

      it('undoes its steps when a workflow update fails', async () => {
        // Every update of wf2 fails, so a second replace (a restore) would fail the same way.
        const before = [...stub.credentials.values()];
        stub.inject({ method: 'PUT', path: '/workflows/wf2', status: 500, body: { message: 'Internal error' }, times: 10 });
        const created = () => stub.requests.filter((request) => request.method === 'POST' && request.url === '/api/v1/credentials').length;
        const createdBefore = created();

        const rotated = await call(t.app, 'POST', '/credentials/slack%2Fbot/rotate', { token: t.adminToken, body: { value: JSON.stringify(newData) } });
        stub.clearInjected();

        assert.equal(rotated.status, 502, rotated.body);
        assert.equal(rotated.json.provider_state, 'unchanged', rotated.body);
        assert.equal(created() - createdBefore, 1, 'one replacement was created, and no restore replaced the credential again');
        assert.deepEqual(before.map((credential) => credential.id), [...stub.credentials.keys()]);
        const left = [...stub.credentials.values()];
        assert.equal(left.length, 1, 'only one credential is left at n8n');
        assert.deepEqual(left[0]!.data, secretData, 'it holds the previous data');
        assert.deepEqual(slackIds(), { wf1: left[0]!.id, wf2: left[0]!.id });
        const record = await t.vault.db.kysely.selectFrom('aegis_credentials').select('provider_credential_id').where('name', '=', 'slack/bot').executeTakeFirstOrThrow();
        assert.equal(record.provider_credential_id, left[0]!.id);
      });

      it('names what a failed undo left', async () => {
        // The update of wf2 fails, and so does reading wf1 again to point it back.
        stub.inject({ method: 'PUT', path: '/workflows/wf2', status: 500, body: { message: 'Internal error' } });
        stub.inject({ method: 'GET', path: '/workflows/wf1', status: 500, body: { message: 'Internal error' }, skip: 1 });

        const rotated = await call(t.app, 'POST', '/credentials/slack%2Fbot/rotate', { token: t.adminToken, body: { value: JSON.stringify(newData) } });

        assert.equal(rotated.status, 502, rotated.body);
        const created = [...stub.credentials.values()].find((credential) => credential.id !== '7')!;
        assert.deepEqual(created.data, newData);
        assert.deepEqual(slackIds(), { wf1: created.id, wf2: '7' });
        assert.ok(stub.credentials.has('7'), 'the old credential is kept');
        assert.doesNotMatch(rotated.json.detail, /safe to retry/);
        assert.match(rotated.json.detail, new RegExp(`workflows wf1 still use n8n credential ${created.id}.*instead of credential 7`));
        assert.match(rotated.json.detail, /left part-changed/);
        assert.ok(!rotated.body.includes('xoxb-secret-value-4'));
        const history = await call(t.app, 'GET', '/rotation/history?credential_name=slack%2Fbot', { token: t.adminToken });
        assert.match(history.body, new RegExp(`still use n8n credential ${created.id}`));
      });

      it('names a new credential it could not delete', async () => {
        stub.inject({ method: 'PUT', path: '/workflows/wf2', status: 500, body: { message: 'Internal error' } });
        stub.inject({ method: 'DELETE', path: '/credentials/100', status: 500, body: { message: 'Internal error' } });

        const rotated = await call(t.app, 'POST', '/credentials/slack%2Fbot/rotate', { token: t.adminToken, body: { value: JSON.stringify(newData) } });

        assert.equal(rotated.status, 502, rotated.body);
        assert.deepEqual(slackIds(), { wf1: '7', wf2: '7' });
        assert.deepEqual(stub.credentials.get('100')?.data, newData);
        assert.match(rotated.json.detail, /n8n credential 100, created for the replacement and holding the new data, could not be deleted/);
        assert.doesNotMatch(rotated.json.detail, /safe to retry/);
      });

      it('failed rollback records the restored id', async () => {
        const rotated = await call(t.app, 'POST', '/credentials/slack%2Fbot/rotate', { token: t.adminToken, body: { value: JSON.stringify(newData) } });
        assert.equal(rotated.status, 200, rotated.body);
        // The rollback moves the credential to 101, whose test fails; restoring version 2 moves it to 102.
        stub.inject({ method: 'GET', path: '/credentials/101', status: 404, body: { message: 'Credential not found' } });

        const rolledBack = await call(t.app, 'POST', '/credentials/slack%2Fbot/rollback', { token: t.adminToken, body: {} });

        assert.equal(rolledBack.status, 502, rolledBack.body);
        assert.equal(rolledBack.json.code, 'rollback_failed');
        assert.deepEqual([...stub.credentials.keys()], ['102']);
        assert.deepEqual(stub.credentials.get('102')!.data, newData);
        assert.deepEqual(await recordedIds(t), { credential: '102', version: '102' });
      });

      it('lost lease records the moved id', async () => {
        const rotated = await call(t.app, 'POST', '/credentials/slack%2Fbot/rotate', { token: t.adminToken, body: { value: JSON.stringify(newData) } });
        assert.equal(rotated.status, 200, rotated.body);
        const before = await recordedIds(t);
        const { id } = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'slack/bot').executeTakeFirstOrThrow();
        // The replace's last step waits while another process takes over the expired lease.
        let release!: () => void;
        stub.hold('DELETE', `/credentials/${before.credential}`, new Promise<void>((resolve) => (release = resolve)));

        const deletes = () => stub.requests.filter((request) => request.method === 'DELETE').length;
        const deletesBefore = deletes();
        const rollback = call(t.app, 'POST', '/credentials/slack%2Fbot/rollback', { token: t.adminToken, body: {} });
        while (deletes() === deletesBefore) await new Promise((resolve) => setImmediate(resolve));
        t.clock.advanceMs(t.config.rotationLeaseSeconds * 1000 + 1);
        assert.ok(await acquireLease(t.vault.db.kysely, rotationLeaseName(id), 'another-process', 60_000, t.clock.now()));
        release();
        const rolledBack = await rollback;

        assert.equal(rolledBack.status, 409, rolledBack.body);
        assert.equal(rolledBack.json.code, 'lease_lost');
        const live = [...stub.credentials.keys()];
        assert.equal(live.length, 1);
        assert.notEqual(live[0], before.credential);
        assert.deepEqual(await recordedIds(t), { credential: live[0], version: live[0] });
      });

      it('failed restore records the moved id', async () => {
        const rotated = await call(t.app, 'POST', '/credentials/slack%2Fbot/rotate', { token: t.adminToken, body: { value: JSON.stringify(newData) } });
        assert.equal(rotated.status, 200, rotated.body);
        // The rollback moves the credential to 101, whose test fails, and restoring version 2 fails at its first step.
        stub.inject({ method: 'GET', path: '/credentials/101', status: 404, body: { message: 'Credential not found' } });
        stub.inject({ method: 'POST', path: '/credentials', status: 500, body: { message: 'Internal error' }, skip: 1 });

        const rolledBack = await call(t.app, 'POST', '/credentials/slack%2Fbot/rollback', { token: t.adminToken, body: {} });

        assert.equal(rolledBack.status, 502, rolledBack.body);
        assert.match(rolledBack.json.detail, /putting its value back at the provider failed too/);
        assert.deepEqual([...stub.credentials.keys()], ['101']);
        assert.deepEqual(await recordedIds(t), { credential: '101', version: '101' });
      });
    });
  });
}
