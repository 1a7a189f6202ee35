import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { enqueueAlert } from '../../src/alerts/outbox.repository.js';
import { raiseAlert, startSinkStubs, type SinkStubs } from '../helpers/alert-sinks.js';
import { testDialects } from '../helpers/databases.js';
import { setupCaller } from '../helpers/health-fixtures.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

for (const dialect of await testDialects()) {
  describe(`alerts API on ${dialect}`, () => {
    let t: TestVault;
    let sinks: SinkStubs;
    let reader: string;
    let webhookSink: string;
    const ids: Record<string, string> = {};

    before(async () => {
      sinks = await startSinkStubs();
      t = await openTestVault(dialect, { env: sinks.env });
      reader = await tokenWith(t, 'alert-reader', ['audit:read']);
      webhookSink = t.vault.alerts.sinkNames.find((name) => name.startsWith('webhook:'))!;
      // Raised a minute apart, so newest first is a fixed order: success, failed, expiring.
      ids.expiring = await raiseAlert(t, 'credential_expiring', 'app/one', { hours: 24 });
      t.clock.advanceMs(60_000);
      ids.failed = await raiseAlert(t, 'rotation_failed', 'app/two');
      t.clock.advanceMs(60_000);
      ids.success = await raiseAlert(t, 'rotation_success', 'app/one');
    });

    after(async () => {
      await destroyTestVault(t);
      await sinks.close();
    });

    it('lists alerts newest first', async () => {
      const response = await call(t.app, 'GET', '/alerts', { token: reader });
      assert.equal(response.status, 200, response.body);
      assert.equal(response.json.total, 3);
      assert.deepEqual(
        response.json.alerts.map((alert: { id: string }) => alert.id),
        [ids.success, ids.failed, ids.expiring],
      );
      const oldest = response.json.alerts[2];
      assert.equal(oldest.alert_type, 'credential_expiring');
      assert.equal(oldest.credential_name, 'app/one');
      assert.equal(oldest.message, "test alert credential_expiring for 'app/one'");
      assert.equal(oldest.priority, 'high');
      assert.equal(oldest.channel, 'telegram');
      assert.equal(oldest.created_at, '2026-06-01T12:00:00.000Z');
      assert.deepEqual(oldest.details, { hours: 24 });
      assert.equal(oldest.state, 'pending');
      assert.deepEqual(oldest.deliveries, [], 'no delivery run yet');
    });

    it('shows per-sink delivery state', async () => {
      sinks.hermes.down = true;
      const run = await call(t.app, 'POST', '/alerts/deliver', { token: t.adminToken });
      assert.equal(run.status, 200, run.body);
      assert.equal(run.json.delivered, 6);
      assert.equal(run.json.pending, 3);
      // Once HERMES has failed, the run sends it nothing more, but deliveries already under way still count.
      assert.ok(run.json.failed >= 1, `failed: ${run.json.failed}`);

      const response = await call(t.app, 'GET', '/alerts', { token: reader });
      assert.equal(response.status, 200, response.body);
      for (const alert of response.json.alerts) {
        assert.equal(alert.state, 'pending', alert.id);
        const bySink = new Map(alert.deliveries.map((delivery: { sink: string }) => [delivery.sink, delivery]));
        assert.deepEqual([...bySink.keys()].sort(), ['event_bus', 'hermes', webhookSink].sort());
        const eventBus = bySink.get('event_bus') as Record<string, unknown>;
        assert.equal(eventBus.state, 'delivered');
        assert.equal(eventBus.attempts, 1);
        assert.equal(eventBus.delivered_at, '2026-06-01T12:02:00.000Z');
        assert.equal((bySink.get(webhookSink) as Record<string, unknown>).state, 'delivered');
        assert.equal((bySink.get('hermes') as Record<string, unknown>).state, 'pending');
      }
      const tried = response.json.alerts.flatMap((alert: { deliveries: Array<Record<string, unknown>> }) =>
        alert.deliveries.filter((delivery) => delivery.sink === 'hermes' && delivery.attempts === 1),
      );
      assert.equal(tried.length, run.json.failed);
      for (const delivery of tried) {
        assert.equal(delivery.last_error, 'the receiver responded with HTTP 503');
        assert.equal(delivery.next_attempt_at, '2026-06-01T12:02:05.000Z');
      }
    });

    it('filters by type and name', async () => {
      const byType = await call(t.app, 'GET', '/alerts?alert_type=rotation_failed', { token: reader });
      assert.equal(byType.status, 200, byType.body);
      assert.equal(byType.json.total, 1);
      assert.equal(byType.json.alerts[0].id, ids.failed);

      const byName = await call(t.app, 'GET', '/alerts?credential_name=app%2Fone', { token: reader });
      assert.equal(byName.json.total, 2);
      assert.deepEqual(
        byName.json.alerts.map((alert: { id: string }) => alert.id),
        [ids.success, ids.expiring],
      );

      const both = await call(t.app, 'GET', '/alerts?credential_name=app%2Fone&alert_type=rotation_failed', { token: reader });
      assert.equal(both.json.total, 0);
      assert.deepEqual(both.json.alerts, []);
    });

    it('filters by state and pages', async () => {
      sinks.hermes.down = false;
      t.clock.advanceMs(5_000);
      const run = await call(t.app, 'POST', '/alerts/deliver', { token: t.adminToken });
      assert.deepEqual(run.json, { delivered: 3, failed: 0, pending: 0 });

      const delivered = await call(t.app, 'GET', '/alerts?state=delivered', { token: reader });
      assert.equal(delivered.json.total, 3);
      for (const alert of delivered.json.alerts) assert.equal(alert.delivered_at, '2026-06-01T12:02:05.000Z');
      const pending = await call(t.app, 'GET', '/alerts?state=pending', { token: reader });
      assert.equal(pending.json.total, 0);

      const page = await call(t.app, 'GET', '/alerts?limit=1&offset=1', { token: reader });
      assert.equal(page.json.total, 3);
      assert.equal(page.json.alerts.length, 1);
      assert.equal(page.json.alerts[0].id, ids.failed);
    });

    it('rejects an unknown state', async () => {
      const response = await call(t.app, 'GET', '/alerts?state=lost', { token: reader });
      assert.equal(response.status, 400, response.body);
      assert.match(response.json.detail, /state/);
    });

    it('audits each read', async () => {
      const before = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('action', '=', 'alerts_read').execute();
      const response = await call(t.app, 'GET', '/alerts?credential_name=app%2Ftwo', { token: reader });
      assert.equal(response.status, 200, response.body);
      const rows = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('action', '=', 'alerts_read').execute();
      assert.equal(rows.length, before.length + 1);
      const row = rows.find((entry) => !before.some((earlier) => earlier.id === entry.id))!;
      assert.equal(row.actor, 'alert-reader');
      assert.equal(row.credential_name, 'app/two');
      assert.equal(Boolean(row.success), true);
    });
  });

  describe(`alerts API with limited tokens on ${dialect}`, () => {
    let t: TestVault;

    before(async () => {
      t = await openTestVault(dialect);
      // team-b/api-6 carries team-a's tag, so the tag-limited token reaches it and the name-limited one does not.
      const credentials = [
        { name: 'team-a/api-1', tags: ['team-a'] },
        { name: 'team-b/api-5', tags: ['team-b'] },
        { name: 'team-b/api-6', tags: ['team-a'] },
      ];
      for (const { name, tags } of credentials) {
        const created = await t.vault.registry.create(setupCaller, { name, credential_type: 'apiKey', provider: 'api', value: `value-of-${name}`, tags });
        t.clock.advanceMs(60_000);
        await enqueueAlert(
          t.vault.db.kysely,
          { type: 'health_check_failed', conditionKey: `health:${name}`, credentialId: created.id, credentialName: name, message: `⚠️ Health check failed for '${name}': HTTP 401 from ${name}` },
          t.clock.now(),
        );
      }
      t.clock.advanceMs(60_000);
      await raiseAlert(t, 'daily_report', '*');
    });
    after(async () => destroyTestVault(t));

    async function listed(token: string, query = '') {
      const response = await call(t.app, 'GET', `/alerts${query}`, { token });
      assert.equal(response.status, 200, response.body);
      return { total: response.json.total, names: response.json.alerts.map((alert: { credential_name: string }) => alert.credential_name) };
    }

    it('unlimited token lists every alert', async () => {
      const reader = await tokenWith(t, 'vault-reader', ['audit:read']);
      assert.deepEqual(await listed(reader), { total: 4, names: ['*', 'team-b/api-6', 'team-b/api-5', 'team-a/api-1'] });
    });

    it('filters vault-wide alerts by *', async () => {
      const reader = await tokenWith(t, 'star-reader', ['audit:read']);
      assert.deepEqual(await listed(reader, '?credential_name=*'), { total: 1, names: ['*'] });
      const limited = await tokenWith(t, 'star-team-a', ['audit:read'], { namePatterns: ['team-a/*'] });
      assert.deepEqual(await listed(limited, '?credential_name=*'), { total: 0, names: [] });
    });

    it('rejects a name pattern as filter', async () => {
      const reader = await tokenWith(t, 'glob-reader', ['audit:read']);
      const response = await call(t.app, 'GET', '/alerts?credential_name=team-a%2F*', { token: reader });
      assert.equal(response.status, 400, response.body);
      assert.equal(response.json.field, 'querystring.credential_name');
      assert.match(response.json.detail, /must be \* or 1 to 128 letters/);
    });

    it('name-limited token lists its alerts', async () => {
      const token = await tokenWith(t, 'team-a-names', ['audit:read'], { namePatterns: ['team-a/*'] });
      assert.deepEqual(await listed(token), { total: 1, names: ['team-a/api-1'] });
      assert.deepEqual(await listed(token, '?credential_name=team-b%2Fapi-5'), { total: 0, names: [] });
      assert.deepEqual(await listed(token, '?alert_type=daily_report'), { total: 0, names: [] });
    });

    it('tag-limited token lists its alerts', async () => {
      const token = await tokenWith(t, 'team-a-tags', ['audit:read'], { tags: ['team-a'] });
      assert.deepEqual(await listed(token), { total: 2, names: ['team-b/api-6', 'team-a/api-1'] });
      assert.deepEqual(await listed(token, '?limit=1&offset=1'), { total: 2, names: ['team-a/api-1'] });
      assert.deepEqual(await listed(token, '?credential_name=team-b%2Fapi-5'), { total: 0, names: [] });
    });

    it('dashboard shows the same alerts', async () => {
      const token = await tokenWith(t, 'team-a-dashboard', ['audit:read', 'credentials:read'], { tags: ['team-a'] });
      const response = await call(t.app, 'GET', '/health/dashboard', { token });
      assert.equal(response.status, 200, response.body);
      assert.deepEqual(
        response.json.alerts.map((alert: { credential: string }) => alert.credential),
        (await listed(token)).names,
      );
    });
  });
}
