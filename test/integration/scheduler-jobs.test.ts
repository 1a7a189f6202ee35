import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { insertRotation } from '../../src/rotation/history.repository.js';
import { enqueueDailyReport } from '../../src/scheduler/daily-report.js';
import type { Caller } from '../../src/tokens/caller.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const setupCaller: Caller = { actor: 'test-setup', tokenId: null, scopes: ['admin'], namePatterns: [], tags: [], ipAddress: null };
const opened: TestVault[] = [];

after(async () => {
  for (const test of opened) await destroyTestVault(test);
});

async function createCredential(test: TestVault, name: string, value: string, expiresAt: string | null): Promise<string> {
  const file = path.join(test.dir, `${name}.env`);
  fs.writeFileSync(file, `API_KEY=${value}\n`);
  const credential = await test.vault.registry.create(setupCaller, {
    name,
    credential_type: 'apiKey',
    provider: 'env',
    provider_config: { file, variable: 'API_KEY' },
    value,
    ...(expiresAt ? { expires_at: expiresAt } : {}),
  });
  return credential.id;
}

for (const dialect of await testDialects()) {
  describe(`scheduler jobs on ${dialect}`, () => {
    it('GET /scheduler shows leader and jobs', async () => {
      const test = await openTestVault(dialect);
      opened.push(test);
      const scheduler = test.vault.scheduler;

      const before = await call(test.app, 'GET', '/scheduler', { token: test.adminToken });
      assert.equal(before.status, 200, before.body);
      assert.equal(before.json.leader, null);
      assert.equal(before.json.this_process.is_leader, false);
      assert.equal(before.json.this_process.scheduler_running, false);
      const names = before.json.jobs.map((job: { name: string }) => job.name);
      assert.deepEqual(names, ['alert_delivery', 'expiry_checks', 'health_checks', 'rotations', 'daily_report', 'retention']);

      await scheduler.tick(test.clock.now());
      test.clock.set('2026-06-01T12:30:00.000Z');
      await scheduler.tick(test.clock.now());

      const auditor = await tokenWith(test, 'auditor', ['audit:read']);
      const view = await call(test.app, 'GET', '/scheduler', { token: auditor });
      assert.equal(view.status, 200, view.body);
      assert.equal(view.json.leader.owner, scheduler.owner);
      assert.equal(view.json.this_process.is_leader, true);
      const rotations = view.json.jobs.find((job: { name: string }) => job.name === 'rotations');
      assert.equal(rotations.schedule, '30 * * * *');
      assert.equal(rotations.timezone, 'UTC');
      assert.equal(rotations.last_run_at, '2026-06-01T12:30:00.000Z');
      assert.equal(rotations.last_status, 'succeeded');
      assert.equal(rotations.next_run_at, '2026-06-01T13:30:00.000Z');
      const health = view.json.jobs.find((job: { name: string }) => job.name === 'health_checks');
      assert.equal(health.last_run_at, null);
      assert.equal(health.next_run_at, '2026-06-01T13:00:00.000Z');
      const delivery = view.json.jobs.find((job: { name: string }) => job.name === 'alert_delivery');
      assert.equal(delivery.schedule, 'every 5 s');

      const reader = await tokenWith(test, 'reader', ['credentials:read']);
      assert.equal((await call(test.app, 'GET', '/scheduler', { token: reader })).status, 403);
    });

    it('jobs act as the scheduler', async () => {
      const test = await openTestVault(dialect);
      opened.push(test);
      await test.vault.scheduler.tick(test.clock.now());
      test.clock.set('2026-06-01T12:30:00.000Z');
      await test.vault.scheduler.tick(test.clock.now());

      const log = await call(test.app, 'GET', '/audit/log?action=scheduled_run', { token: test.adminToken });
      assert.equal(log.status, 200, log.body);
      assert.equal(log.json.log.length, 1, log.body);
      assert.equal(log.json.log[0].actor, 'scheduler');
    });

    it('daily report lists needed actions', async () => {
      const test = await openTestVault(dialect, { env: { AEGIS_REPORT_TIMEZONE: 'Pacific/Auckland' } });
      opened.push(test);
      // 2026-06-01T12:00Z is 2026-06-02 00:00 in Auckland (UTC+12).
      await createCredential(test, 'healthy-key', 'value-healthy-4f1e', null);
      await createCredential(test, 'soon-key', 'value-soon-91ac', '2026-06-04T12:00:00.000Z');
      await createCredential(test, 'later-key', 'value-later-77d0', '2026-06-20T12:00:00.000Z');
      const expiredId = await createCredential(test, 'old-key', 'value-old-0b3c', '2026-06-10T12:00:00.000Z');
      const failedId = await createCredential(test, 'broken-key', 'value-broken-5d2e', null);
      await test.vault.db.kysely.updateTable('aegis_credentials').set({ expires_at: '2026-05-30T00:00:00.000Z' }).where('id', '=', expiredId).execute();
      await test.vault.db.kysely.updateTable('aegis_credentials').set({ status: 'failed' }).where('id', '=', failedId).execute();
      const rotation = { previousVersion: 1, newVersion: 2, trigger: 'scheduled' as const, durationMs: 5, actor: 'scheduler', reason: null, attempts: 1 };
      await insertRotation(test.vault.db.kysely, { ...rotation, credentialId: failedId, rotatedAt: '2026-06-01T02:00:00.000Z', success: false, errorMessage: 'provider rejected' });
      await insertRotation(test.vault.db.kysely, { ...rotation, credentialId: expiredId, rotatedAt: '2026-06-01T03:00:00.000Z', success: true, errorMessage: null });
      await insertRotation(test.vault.db.kysely, { ...rotation, credentialId: expiredId, rotatedAt: '2026-05-30T03:00:00.000Z', success: true, errorMessage: null });

      const first = await enqueueDailyReport(test.vault.db, test.clock, test.config.reportTimezone);
      assert.equal(first.enqueued, true);
      assert.equal(first.report.date, '2026-06-02');
      assert.equal(first.report.total, 5);
      assert.equal(first.report.byStatus.expired, 1);
      assert.equal(first.report.byStatus.failed, 1);
      assert.deepEqual(first.report.expired, ['old-key']);
      assert.deepEqual(first.report.failed, ['broken-key']);
      assert.deepEqual(first.report.expiringWithin7Days, [{ name: 'soon-key', expiresAt: '2026-06-04T12:00:00.000Z' }]);
      assert.deepEqual(first.report.last24Hours, { rotations: 2, failedRotations: 1, failedCredentials: ['broken-key'] });

      test.clock.advanceHours(3);
      const second = await enqueueDailyReport(test.vault.db, test.clock, test.config.reportTimezone);
      assert.equal(second.enqueued, false);

      const rows = await test.vault.db.kysely.selectFrom('aegis_alert_outbox').selectAll().where('alert_type', '=', 'daily_report').execute();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.condition_key, 'daily_report:2026-06-02');
      assert.equal(rows[0]!.priority, 'low');
      assert.match(rows[0]!.message, /Expired: old-key/);
      assert.match(rows[0]!.message, /Expiring within 7 days: soon-key/);
      assert.match(rows[0]!.message, /Last 24 hours: 2 rotations, 1 failed \(broken-key\)/);
      const stored = JSON.stringify(rows[0]);
      for (const value of ['value-healthy-4f1e', 'value-soon-91ac', 'value-later-77d0', 'value-old-0b3c', 'value-broken-5d2e']) {
        assert.ok(!stored.includes(value), `the report contains the value ${value}`);
      }
    });

    it('adds the audit summary', async () => {
      const test = await openTestVault(dialect);
      opened.push(test);
      const reveals = Array.from({ length: 3 }, () =>
        test.vault.audit.record({ credentialName: 'soon-key', action: 'revealed', actor: 'alice', success: true }),
      );
      await Promise.all(reveals);
      await test.vault.audit.record({ credentialName: 'soon-key', action: 'read', actor: 'ARIA', success: false, errorMessage: 'forbidden' });
      test.clock.advanceHours(24);

      const { report, enqueued } = await enqueueDailyReport(test.vault.db, test.clock, test.config.reportTimezone, test.config.audit.anomalies);
      assert.equal(enqueued, true);
      assert.ok(report.audit !== null);
      assert.ok(report.audit.accesses >= 4, `accesses ${report.audit.accesses}`);
      assert.ok(report.audit.failures >= 1, `failures ${report.audit.failures}`);
      assert.ok(report.audit.anomalies.some((reason) => /reveal/i.test(reason)), report.audit.anomalies.join(' | '));
      const row = await test.vault.db.kysely
        .selectFrom('aegis_alert_outbox')
        .select('message')
        .where('condition_key', '=', `daily_report:${report.date}`)
        .executeTakeFirstOrThrow();
      assert.match(row.message, /Audit, last 24 hours: \d+ accesses by \d+ actors, \d+ failed or denied/);
      assert.match(row.message, /Anomalies: /);
    });
  });
}
