import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { openDatabase } from '../../src/db/database.js';
import type { ApplyCrashPoint } from '../../src/providers/n8n/apply-intents.js';
import { runCli } from '../helpers/cli.js';
import { testDialects } from '../helpers/databases.js';
import { envServiceFixture } from '../helpers/env-service.js';
import { N8nStub } from '../helpers/n8n-stub.js';
import { callServer, startServer, waitForExit } from '../helpers/server-process.js';

const apiKey = 'n8n-test-api-key';

/** The one `applied` entry expected after a crash at each point and a restart, and the node's state. */
const expected: Record<ApplyCrashPoint, { success: boolean; interrupted: boolean; outcome?: string; nodeUsesCredential: boolean }> = {
  apply_after_intent: { success: false, interrupted: true, outcome: 'not_applied', nodeUsesCredential: false },
  apply_after_n8n: { success: true, interrupted: true, outcome: 'applied', nodeUsesCredential: true },
  apply_after_audit: { success: true, interrupted: false, nodeUsesCredential: true },
};

for (const dialect of await testDialects()) {
  describe(`n8n apply crash recovery on ${dialect}`, () => {
    for (const [crashPoint, expectation] of Object.entries(expected) as Array<[ApplyCrashPoint, (typeof expected)[ApplyCrashPoint]]>) {
      it(`audits an apply killed ${crashPoint.replace('apply_', '')}`, async () => {
        const fixture = envServiceFixture(dialect, '');
        const stub = await N8nStub.start({ apiKey, recentApi: true });
        stub.addCredential({ id: '7', name: 'Slack bot', type: 'slackApi', data: { accessToken: 'xoxb-secret-value-5' } });
        stub.addWorkflow({ id: 'wf1', name: 'Workflow wf1', nodes: [{ name: 'Post to Slack', type: 'n8n-nodes-base.slack' }], connections: {}, settings: {} });
        const env = { ...fixture.env, N8N_URL: stub.url, N8N_API_KEY: apiKey };
        try {
          const crashing = await startServer({ env: { ...env, AEGIS_TEST_CRASH_AT: crashPoint }, expectToken: true });
          fixture.servers.push(crashing);
          const token = crashing.adminToken!;
          const created = await callServer(crashing, token, 'POST', '/credentials', {
            name: 'slack/bot',
            credential_type: 'slackApi',
            provider: 'n8n',
            provider_credential_id: '7',
            metadata: { n8n_name: 'Slack bot' },
          });
          assert.equal(created.status, 201, created.text);

          await assert.rejects(callServer(crashing, token, 'POST', '/credentials/slack%2Fbot/apply', { workflow_id: 'wf1', node_name: 'Post to Slack' }));
          assert.equal(await waitForExit(crashing, 30_000), 'SIGKILL');

          // The start-up recovery writes the missing entry, or deletes the intent of an audited apply.
          const restarted = await startServer({ env });
          fixture.servers.push(restarted);
          const log = await callServer(restarted, token, 'GET', '/audit/log?action=applied');
          assert.equal(log.status, 200, log.text);
          assert.equal(log.json.total, 1, log.text);
          const entry = log.json.log[0];
          assert.equal(entry.success, expectation.success, log.text);
          assert.equal(entry.details.interrupted === true, expectation.interrupted, log.text);
          assert.equal(entry.details.outcome, expectation.outcome, log.text);
          const node = stub.workflows.get('wf1')!.nodes[0]!;
          assert.equal(node.credentials?.slackApi?.id === '7', expectation.nodeUsesCredential);

          restarted.child.kill('SIGTERM');
          await waitForExit(restarted, 30_000);
          const verified = await runCli(['audit', 'verify'], env);
          assert.equal(verified.code, 0, `${verified.stdout}\n${verified.stderr}`);
          const db = await openDatabase(loadConfig(env, fixture.dir));
          try {
            assert.deepEqual(await db.kysely.selectFrom('aegis_apply_intents').select('audit_entry_id').execute(), []);
          } finally {
            await db.close();
          }
        } finally {
          await fixture.cleanUp();
          await stub.close();
        }
      });
    }
  });
}
