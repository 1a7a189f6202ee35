import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { verifyAuditChain } from '../../src/audit/verify.js';
import { KeyedQueue } from '../../src/lib/keyed-queue.js';
import { uuid7 } from '../../src/lib/uuid7.js';
import { applyAbandonAfterMs } from '../../src/providers/n8n/apply-intents.js';
import { insertApplyIntent, type ApplyIntent } from '../../src/providers/n8n/apply-intents.repository.js';
import { testDialects } from '../helpers/databases.js';
import { N8nStub, type StubWorkflow } from '../helpers/n8n-stub.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const apiKey = 'n8n-test-api-key';
const secretData = { accessToken: 'xoxb-secret-value-9' };
const slackEntry = { slackApi: { id: '7', name: 'Slack bot' } };

function workflow(slackCredential?: { id: string; name: string }): StubWorkflow {
  return {
    id: 'wf1',
    name: 'Workflow wf1',
    nodes: [
      { name: 'Fetch', type: 'n8n-nodes-base.httpRequest' },
      { name: 'Post to Slack', type: 'n8n-nodes-base.slack', ...(slackCredential ? { credentials: { slackApi: slackCredential } } : {}) },
    ],
    connections: {},
    settings: {},
  };
}

/** Names a process on this host that has ended, as `processOwner` would have named it. */
function stoppedOwner(): string {
  const stopped = spawnSync(process.execPath, ['-e', '']);
  assert.equal(stopped.status, 0);
  return `${os.hostname()}:${stopped.pid}:abcdef`;
}

function parsedDetails(details: unknown): Record<string, unknown> {
  return (typeof details === 'string' ? JSON.parse(details) : details) as Record<string, unknown>;
}

for (const dialect of await testDialects()) {
  describe(`interrupted n8n applies on ${dialect}`, () => {
    let stub: N8nStub;
    let t: TestVault;
    let credentialId: string;

    beforeEach(async () => {
      stub = await N8nStub.start({ apiKey, recentApi: true });
      stub.addCredential({ id: '7', name: 'Slack bot', type: 'slackApi', data: secretData });
      stub.addWorkflow(workflow());
      t = await openTestVault(dialect, { env: { N8N_URL: stub.url, N8N_API_KEY: apiKey } });
      const created = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name: 'slack/bot', credential_type: 'slackApi', provider: 'n8n', provider_credential_id: '7', value: JSON.stringify(secretData), metadata: { n8n_name: 'Slack bot' } },
      });
      assert.equal(created.status, 201, created.body);
      credentialId = created.json.id;
    });

    afterEach(async () => {
      await destroyTestVault(t);
      await stub.close();
    });

    /** Builds the intent that an apply of slack/bot to the Slack node of wf1 by ARIA writes. */
    function intent(owner: string, fields: Partial<ApplyIntent> = {}): ApplyIntent {
      return {
        auditEntryId: uuid7(),
        credentialId,
        credentialName: 'slack/bot',
        credentialType: 'slackApi',
        n8nCredentialId: '7',
        workflowId: 'wf1',
        nodeName: 'Post to Slack',
        requestedBy: 'HEPHAESTUS',
        actor: 'ARIA',
        ipAddress: '127.0.0.1',
        owner,
        startedAt: t.clock.now().toISOString(),
        ...fields,
      };
    }

    const appliedEntries = () => t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('action', '=', 'applied').orderBy('seq').execute();
    const intentIds = async () => (await t.vault.db.kysely.selectFrom('aegis_apply_intents').select('audit_entry_id').execute()).map((row) => row.audit_entry_id);

    async function assertChainVerifies(): Promise<void> {
      const verdict = await verifyAuditChain(t.vault.db.kysely, t.vault.keyring);
      assert.equal(verdict.ok, true, JSON.stringify(verdict));
    }

    it('apply holds an intent until audited', async () => {
      let release!: () => void;
      stub.hold('PUT', '/workflows/wf1', new Promise<void>((resolve) => (release = resolve)));
      let putArrived!: () => void;
      const arrived = new Promise<void>((resolve) => (putArrived = resolve));
      stub.onRequest = (request) => {
        if (request.method === 'PUT') putArrived();
      };
      const agent = await tokenWith(t, 'ARIA', ['credentials:apply']);
      const applying = call(t.app, 'POST', '/credentials/slack%2Fbot/apply', { token: agent, body: { workflow_id: 'wf1', node_name: 'Post to Slack', requested_by: 'HEPHAESTUS' } });

      await arrived;
      const rows = await t.vault.db.kysely.selectFrom('aegis_apply_intents').selectAll().execute();
      assert.equal(rows.length, 1);
      const row = rows[0]!;
      assert.equal(row.credential_id, credentialId);
      assert.equal(row.credential_type, 'slackApi');
      assert.equal(row.n8n_credential_id, '7');
      assert.equal(row.workflow_id, 'wf1');
      assert.equal(row.node_name, 'Post to Slack');
      assert.equal(row.requested_by, 'HEPHAESTUS');
      assert.equal(row.actor, 'ARIA');
      assert.match(row.owner, new RegExp(`^${os.hostname()}:${process.pid}:[0-9a-f]+$`));
      assert.equal(new Date(row.started_at).toISOString(), t.clock.now().toISOString());
      release();

      const applied = await applying;
      assert.equal(applied.status, 200, applied.body);
      assert.deepEqual(await intentIds(), []);
      const entries = await appliedEntries();
      assert.equal(entries.length, 1);
      assert.equal(entries[0]!.id, row.audit_entry_id);
    });

    it('queued apply starts in its turn', async () => {
      let releasePut!: () => void;
      let releaseGet!: () => void;
      stub.hold('PUT', '/workflows/wf1', new Promise<void>((resolve) => (releasePut = resolve)));
      let putArrived!: () => void;
      let secondGetArrived!: () => void;
      const arrivals = { put: new Promise<void>((resolve) => (putArrived = resolve)), secondGet: new Promise<void>((resolve) => (secondGetArrived = resolve)) };
      let gets = 0;
      stub.onRequest = (request) => {
        if (request.method === 'PUT') putArrived();
        if (request.method === 'GET' && ++gets === 2) secondGetArrived();
      };
      const body = { workflow_id: 'wf1', node_name: 'Post to Slack' };
      const first = call(t.app, 'POST', '/credentials/slack%2Fbot/apply', { token: t.adminToken, body });
      await arrivals.put;
      stub.hold('GET', '/workflows/wf1', new Promise<void>((resolve) => (releaseGet = resolve)));
      const run = KeyedQueue.prototype.run;
      let queued!: () => void;
      const secondQueued = new Promise<void>((resolve) => (queued = resolve));
      KeyedQueue.prototype.run = function (this: KeyedQueue, ...args) {
        queued();
        return run.apply(this, args);
      } as typeof run;
      let second;
      try {
        second = call(t.app, 'POST', '/credentials/slack%2Fbot/apply', { token: t.adminToken, body });
        await secondQueued;
      } finally {
        KeyedQueue.prototype.run = run;
      }

      // The second apply waits for the first one's turn to end, and its intent starts only then.
      t.clock.advanceMs(60_000);
      releasePut();
      await arrivals.secondGet;
      const rows = await t.vault.db.kysely.selectFrom('aegis_apply_intents').select('started_at').execute();
      const starts = rows.map((row) => new Date(row.started_at).toISOString());
      assert.deepEqual(starts.filter((start) => start === t.clock.now().toISOString()).length, 1, JSON.stringify(starts));
      releaseGet();

      for (const response of await Promise.all([first, second])) assert.equal(response.status, 200, response.body);
      stub.onRequest = undefined;
      assert.deepEqual(await intentIds(), []);
      assert.equal((await appliedEntries()).length, 2);
    });

    it('failed apply deletes its intent', async () => {
      stub.inject({ method: 'PUT', path: '/workflows/wf1', status: 500, body: { message: 'internal error' } });
      const response = await call(t.app, 'POST', '/credentials/slack%2Fbot/apply', { token: t.adminToken, body: { workflow_id: 'wf1', node_name: 'Post to Slack' } });
      assert.equal(response.status, 502, response.body);
      assert.deepEqual(await intentIds(), []);
      const entries = await appliedEntries();
      assert.equal(entries.length, 1);
      assert.equal(Boolean(entries[0]!.success), false);
    });

    it('stopped apply gets one entry', async () => {
      // The process stopped after n8n saved the workflow and before the audit entry was committed.
      stub.addWorkflow(workflow(slackEntry.slackApi));
      const left = intent(stoppedOwner());
      await insertApplyIntent(t.vault.db.kysely, left);

      const report = await t.vault.n8n.recoverApplies();

      assert.deepEqual(report, { recorded: [{ credential: 'slack/bot', workflow_id: 'wf1', node: 'Post to Slack', outcome: 'applied' }], cleared: 0, skipped: 0 });
      const entries = await appliedEntries();
      assert.equal(entries.length, 1);
      const entry = entries[0]!;
      assert.equal(entry.id, left.auditEntryId);
      assert.equal(entry.credential_id, credentialId);
      assert.equal(entry.actor, 'ARIA');
      assert.equal(entry.target, 'n8n workflow wf1');
      assert.equal(entry.ip_address, '127.0.0.1');
      assert.equal(Boolean(entry.success), true);
      assert.equal(entry.error_message, null);
      assert.deepEqual(parsedDetails(entry.details), {
        workflow_id: 'wf1',
        node_name: 'Post to Slack',
        requested_by: 'HEPHAESTUS',
        interrupted: true,
        outcome: 'applied',
        started_at: left.startedAt,
      });
      assert.deepEqual(await intentIds(), []);
      await assertChainVerifies();

      const again = await t.vault.n8n.recoverApplies();
      assert.deepEqual(again, { recorded: [], cleared: 0, skipped: 0 });
      assert.equal((await appliedEntries()).length, 1);
    });

    it('scheduled rotation run recovers applies', async () => {
      stub.addWorkflow(workflow(slackEntry.slackApi));
      await insertApplyIntent(t.vault.db.kysely, intent(stoppedOwner()));
      // The first tick makes this process the leader; the rotations job runs at minute 30.
      await t.vault.scheduler.tick(t.clock.now());
      assert.equal((await intentIds()).length, 1);
      t.clock.set('2026-06-01T12:30:00.000Z');
      await t.vault.scheduler.tick(t.clock.now());

      assert.deepEqual(await intentIds(), []);
      const entries = await appliedEntries();
      assert.equal(entries.length, 1);
      assert.equal(parsedDetails(entries[0]!.details).outcome, 'applied');
    });

    it('run-scheduled route recovers applies', async () => {
      stub.addWorkflow(workflow(slackEntry.slackApi));
      const left = intent(stoppedOwner());
      await insertApplyIntent(t.vault.db.kysely, left);

      const run = await call(t.app, 'POST', '/rotation/run-scheduled', { token: t.adminToken });

      assert.equal(run.status, 200, run.body);
      assert.deepEqual(await intentIds(), []);
      const entries = await appliedEntries();
      assert.equal(entries.length, 1);
      assert.equal(entries[0]!.id, left.auditEntryId);
      assert.equal(parsedDetails(entries[0]!.details).outcome, 'applied');
      await assertChainVerifies();
    });

    it('stopped apply before n8n saved', async () => {
      await insertApplyIntent(t.vault.db.kysely, intent(stoppedOwner()));

      const report = await t.vault.n8n.recoverApplies();

      assert.deepEqual(report.recorded.map((recorded) => recorded.outcome), ['not_applied']);
      const [entry] = await appliedEntries();
      assert.equal(Boolean(entry!.success), false);
      assert.match(entry!.error_message ?? '', /^apply_interrupted: .*does not use the credential/);
      assert.equal(parsedDetails(entry!.details).outcome, 'not_applied');
      await assertChainVerifies();
    });

    it('unreachable n8n records unknown', async () => {
      stub.inject({ method: 'GET', path: '/workflows/wf1', status: 503, body: { message: `unavailable ${secretData.accessToken}` } });
      await insertApplyIntent(t.vault.db.kysely, intent(stoppedOwner()));

      const report = await t.vault.n8n.recoverApplies();

      assert.deepEqual(report.recorded.map((recorded) => recorded.outcome), ['unknown']);
      const [entry] = await appliedEntries();
      assert.equal(Boolean(entry!.success), false);
      assert.match(entry!.error_message ?? '', /^apply_interrupted: .*could not be read/);
      assert.equal(parsedDetails(entry!.details).outcome, 'unknown');
      assert.ok(!JSON.stringify(entry).includes(secretData.accessToken), 'the entry holds no n8n text');
      assert.deepEqual(await intentIds(), []);
      await assertChainVerifies();
    });

    it('stored entry only clears intent', async () => {
      // The process stopped after the audit entry was committed and before it deleted the intent.
      const applied = await call(t.app, 'POST', '/credentials/slack%2Fbot/apply', { token: t.adminToken, body: { workflow_id: 'wf1', node_name: 'Post to Slack' } });
      assert.equal(applied.status, 200, applied.body);
      const [stored] = await appliedEntries();
      await insertApplyIntent(t.vault.db.kysely, intent(stoppedOwner(), { auditEntryId: stored!.id }));

      const report = await t.vault.n8n.recoverApplies();

      assert.deepEqual(report, { recorded: [], cleared: 1, skipped: 0 });
      assert.deepEqual(await intentIds(), []);
      assert.equal((await appliedEntries()).length, 1);
    });

    it('failed audit leaves intent to recovery', async () => {
      const record = t.vault.audit.record;
      t.vault.audit.record = () => Promise.reject(new Error('the audit log is unreachable'));
      let response;
      try {
        response = await call(t.app, 'POST', '/credentials/slack%2Fbot/apply', { token: t.adminToken, body: { workflow_id: 'wf1', node_name: 'Post to Slack' } });
      } finally {
        t.vault.audit.record = record;
      }
      assert.equal(response.status, 503, response.body);
      assert.equal(response.json.code, 'audit_unavailable');
      assert.deepEqual(stub.workflows.get('wf1')!.nodes[1]!.credentials, slackEntry);
      assert.equal((await appliedEntries()).length, 0);
      assert.equal((await intentIds()).length, 1);

      // The intent is this process's, and its apply has ended, so recovery need not wait for it.
      const report = await t.vault.n8n.recoverApplies();

      assert.deepEqual(report.recorded.map((recorded) => recorded.outcome), ['applied']);
      assert.equal((await appliedEntries()).length, 1);
      assert.deepEqual(await intentIds(), []);
      await assertChainVerifies();
    });

    it('leaves running apply of another process', async () => {
      // A second vault on the same database plays another AEGIS process.
      const other = await openTestVault(dialect, {
        clock: t.clock,
        env: { N8N_URL: stub.url, N8N_API_KEY: apiKey },
        reuse: { dir: t.dir, ...(t.env.AEGIS_DATABASE_SCHEMA ? { schema: t.env.AEGIS_DATABASE_SCHEMA } : {}) },
      });
      try {
        let release!: () => void;
        stub.hold('PUT', '/workflows/wf1', new Promise<void>((resolve) => (release = resolve)));
        let putArrived!: () => void;
        const arrived = new Promise<void>((resolve) => (putArrived = resolve));
        stub.onRequest = (request) => {
          if (request.method === 'PUT') putArrived();
        };
        const applying = call(other.app, 'POST', '/credentials/slack%2Fbot/apply', { token: t.adminToken, body: { workflow_id: 'wf1', node_name: 'Post to Slack' } });
        await arrived;

        const report = await t.vault.n8n.recoverApplies();

        assert.deepEqual(report, { recorded: [], cleared: 0, skipped: 1 });
        assert.equal((await intentIds()).length, 1);
        release();
        const applied = await applying;
        assert.equal(applied.status, 200, applied.body);
        assert.equal((await appliedEntries()).length, 1);
        assert.deepEqual(await intentIds(), []);
        await assertChainVerifies();
      } finally {
        stub.onRequest = undefined;
        await other.close();
      }
    });

    it('waits for live owners to expire', async () => {
      // The test runner's parent runs on this host; the other owner's host cannot be checked.
      const sameHost = intent(`${os.hostname()}:${process.ppid}:abcdef`);
      const otherHost = intent('other-host.example:4242:abcdef');
      await insertApplyIntent(t.vault.db.kysely, sameHost);
      await insertApplyIntent(t.vault.db.kysely, otherHost);

      const early = await t.vault.n8n.recoverApplies();
      assert.deepEqual(early, { recorded: [], cleared: 0, skipped: 2 });
      t.clock.advanceMs(applyAbandonAfterMs(t.config));
      const atLimit = await t.vault.n8n.recoverApplies();
      assert.deepEqual(atLimit, { recorded: [], cleared: 0, skipped: 2 });
      assert.equal((await appliedEntries()).length, 0);

      t.clock.advanceMs(1);
      const late = await t.vault.n8n.recoverApplies();
      assert.deepEqual(late.recorded.map((recorded) => recorded.outcome), ['not_applied', 'not_applied']);
      const entries = await appliedEntries();
      assert.deepEqual(entries.map((entry) => entry.id).sort(), [sameHost.auditEntryId, otherHost.auditEntryId].sort());
      assert.deepEqual(await intentIds(), []);
      await assertChainVerifies();
    });
  });
}
