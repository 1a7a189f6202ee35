import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AlertService } from '../../src/alerts/alert.service.js';
import { toIso } from '../../src/db/values.js';
import { secretForms } from '../../src/lib/redact.js';
import { raiseAlert, startSinkStubs, type SinkStub, type SinkStubs } from '../helpers/alert-sinks.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/** Opens a vault whose alert sinks are fresh stubs, runs the test, and closes both. */
async function withSinks(dialect: 'sqlite' | 'postgres', run: (t: TestVault, sinks: SinkStubs) => Promise<void>, env: Record<string, string> = {}): Promise<void> {
  const sinks = await startSinkStubs();
  const t = await openTestVault(dialect, { env: { ...sinks.env, ...env } });
  try {
    await run(t, sinks);
  } finally {
    await destroyTestVault(t);
    await sinks.close();
  }
}

async function deliveryRow(t: TestVault, alertId: string, sink: string) {
  return t.vault.db.kysely
    .selectFrom('aegis_alert_deliveries')
    .selectAll()
    .where('alert_id', '=', alertId)
    .where('sink', '=', sink)
    .executeTakeFirstOrThrow();
}

async function outboxState(t: TestVault, alertId: string): Promise<string> {
  const row = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').select('state').where('id', '=', alertId).executeTakeFirstOrThrow();
  return row.state;
}

function headerText(headers: Record<string, unknown>): string {
  return Object.entries(headers)
    .map(([name, value]) => `${name}: ${String(value)}`)
    .join('\n');
}

/** Asserts that every alert id reached the sink with a 200 exactly once. */
function assertDeliveredOnce(sink: SinkStub, label: string, alertIds: ReadonlyArray<string>): void {
  const counts = sink.deliveredCounts();
  for (const id of alertIds) assert.equal(counts.get(id), 1, `${label} got alert ${id} ${counts.get(id) ?? 0} times`);
  assert.equal(counts.size, alertIds.length, `${label} got alerts that were not raised`);
}

for (const dialect of await testDialects()) {
  describe(`alert delivery on ${dialect}`, () => {
    it('sends the documented bodies', async () => {
      await withSinks(dialect, async (t, sinks) => {
        const name = 'billing/stripe';
        const id = await raiseAlert(t, 'credential_expiring', name, { hours: 168, expires_at: '2026-06-08T12:00:00.000Z' });
        const alert = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

        const run = await t.vault.alerts.deliverDue();
        assert.deepEqual(run, { delivered: 3, failed: 0, pending: 0 });

        assert.equal(sinks.hermes.exchanges.length, 1);
        const hermes = sinks.hermes.exchanges[0]!.request;
        assert.equal(hermes.method, 'POST');
        assert.equal(hermes.url, '/notify');
        assert.equal(hermes.headers['content-type'], 'application/json');
        assert.equal(hermes.headers['idempotency-key'], id);
        assert.deepEqual(JSON.parse(hermes.body), { message: alert.message, priority: 'high', channel: 'telegram' });

        assert.equal(sinks.eventBus.exchanges.length, 1);
        const event = sinks.eventBus.exchanges[0]!.request;
        assert.equal(event.url, '/events');
        assert.equal(event.headers['idempotency-key'], id);
        assert.deepEqual(JSON.parse(event.body), {
          source_agent: 'AEGIS',
          action: 'credential_expiring',
          target: name,
          details: { hours: 168, expires_at: '2026-06-08T12:00:00.000Z', message: alert.message, priority: 'high', alert_id: id },
        });

        assert.equal(sinks.webhook.exchanges.length, 1);
        const hook = sinks.webhook.exchanges[0]!.request;
        assert.equal(hook.url, '/hook');
        assert.equal(hook.headers['idempotency-key'], id);
        assert.deepEqual(JSON.parse(hook.body), {
          id,
          alert_type: 'credential_expiring',
          credential_name: name,
          message: alert.message,
          priority: 'high',
          channel: 'telegram',
          details: { hours: 168, expires_at: '2026-06-08T12:00:00.000Z' },
          created_at: '2026-06-01T12:00:00.000Z',
        });

        // Verified as docs/alerts.md describes for receivers, from the raw body and the two headers.
        const timestamp = String(hook.headers['x-aegis-timestamp']);
        assert.equal(timestamp, String(Math.floor(t.clock.now().getTime() / 1000)));
        const expected = Buffer.from(`sha256=${crypto.createHmac('sha256', sinks.webhookSecret).update(`${timestamp}.${hook.body}`).digest('hex')}`);
        const received = Buffer.from(String(hook.headers['x-aegis-signature']));
        assert.equal(received.length, expected.length);
        assert.ok(crypto.timingSafeEqual(received, expected), 'the signature verifies with the secret');
        const forged = crypto.createHmac('sha256', 'another-secret-of-some-length').update(`${timestamp}.${hook.body}`).digest('hex');
        assert.notEqual(String(hook.headers['x-aegis-signature']), `sha256=${forged}`);
        assert.ok(!headerText(hook.headers).includes(sinks.webhookSecret), 'the webhook secret is not sent');

        assert.equal(await outboxState(t, id), 'delivered');
        const rows = await t.vault.db.kysely.selectFrom('aegis_alert_deliveries').selectAll().where('alert_id', '=', id).execute();
        assert.equal(rows.length, 3);
        for (const row of rows) {
          assert.equal(row.state, 'delivered', row.sink);
          assert.equal(row.attempts, 1, row.sink);
        }
        assert.deepEqual(await t.vault.alerts.deliverDue(), { delivered: 0, failed: 0, pending: 0 });
        assert.equal(sinks.hermes.exchanges.length, 1, 'nothing is sent twice');
      });
    });

    it('sends daily reports alike', async () => {
      await withSinks(dialect, async (t, sinks) => {
        const id = await raiseAlert(t, 'daily_report', '*', { total: 12, expiring: 1 });
        assert.deepEqual(await t.vault.alerts.deliverDue(), { delivered: 3, failed: 0, pending: 0 });
        assert.equal(JSON.parse(sinks.eventBus.exchanges[0]!.request.body).action, 'daily_report');
        assert.equal(sinks.hermes.exchanges[0]!.request.headers['idempotency-key'], id);
      });
    });

    it('keeps secret values out', async () => {
      await withSinks(dialect, async (t, sinks) => {
        const firstValue = `first-${crypto.randomBytes(18).toString('base64url')}`;
        const rotatedValue = `rotated+/=${crypto.randomBytes(18).toString('base64url')}`;
        const file = path.join(t.dir, 'app.env');
        fs.writeFileSync(file, `API_KEY=${firstValue}\n`, { mode: 0o600 });
        const created = await call(t.app, 'POST', '/credentials', {
          token: t.adminToken,
          body: { name: 'leak/app', credential_type: 'env', provider: 'env', provider_config: { file, variable: 'API_KEY' }, value: firstValue },
        });
        assert.equal(created.status, 201, created.body);
        const rotated = await call(t.app, 'POST', '/credentials/leak%2Fapp/rotate', { token: t.adminToken, body: { trigger: 'manual', value: rotatedValue } });
        assert.equal(rotated.status, 200, rotated.body);
        // A failed rotation writes its error into the alert, so it is searched too. The file's reload
        // command fails, after the value was written.
        const failing = path.join(t.dir, 'failing.env');
        fs.writeFileSync(failing, `API_KEY=${rotatedValue}\n`, { mode: 0o600 });
        const moved = await call(t.app, 'PATCH', '/credentials/leak%2Fapp', { token: t.adminToken, body: { provider_config: { file: failing, variable: 'API_KEY' } } });
        assert.equal(moved.status, 200, moved.body);
        const failed = await call(t.app, 'POST', '/credentials/leak%2Fapp/rotate', { token: t.adminToken, body: { trigger: 'manual', value: `${rotatedValue}-next` } });
        assert.equal(failed.status, 502, failed.body);

        const run = await t.vault.alerts.deliverDue();
        assert.equal(run.failed, 0);
        const types = (await t.vault.db.kysely.selectFrom('aegis_alert_outbox').select('alert_type').execute()).map((row) => row.alert_type).sort();
        assert.deepEqual(types, ['rotation_failed', 'rotation_success']);
        assert.equal(run.delivered, 6);

        const sent = [sinks.hermes, sinks.eventBus, sinks.webhook].flatMap((sink) => sink.exchanges.map((entry) => `${headerText(entry.request.headers)}\n${entry.request.body}`));
        const outbox = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').selectAll().execute();
        const deliveries = await t.vault.db.kysely.selectFrom('aegis_alert_deliveries').selectAll().execute();
        const haystacks = [...sent, JSON.stringify(outbox), JSON.stringify(deliveries)];
        for (const value of [firstValue, rotatedValue, `${rotatedValue}-next`]) {
          for (const form of secretForms(value)) {
            for (const text of haystacks) assert.ok(!text.includes(form), `a value form ${JSON.stringify(form.slice(0, 12))} leaked`);
          }
        }
      }, { AEGIS_ENV_RELOAD_COMMANDS: JSON.stringify({ 'failing.env': 'exit 3' }) });
    });

    it('survives an hour-long outage', async () => {
      await withSinks(dialect, async (t, sinks) => {
        const alertIds: string[] = [];
        for (let index = 0; index < 5; index += 1) alertIds.push(await raiseAlert(t, 'credential_expiring', `outage/cred-${index}`));
        sinks.hermes.down = true;

        const outageEnd = t.clock.now().getTime() + 3_600_000;
        let step = 0;
        while (t.clock.now().getTime() < outageEnd) {
          // New alerts keep arriving while HERMES is down.
          if (step % 60 === 30) alertIds.push(await raiseAlert(t, 'rotation_failed', `outage/during-${step}`));
          await t.vault.alerts.deliverDue();
          t.clock.advanceMs(10_000 + (step % 6) * 10_000);
          step += 1;
        }
        assert.ok(alertIds.length >= 6, 'alerts were raised during the outage');
        assert.ok(sinks.hermes.exchanges.length > alertIds.length, 'HERMES was retried during the outage');
        assert.equal(sinks.hermes.deliveredCounts().size, 0);
        assertDeliveredOnce(sinks.eventBus, 'event bus during the outage', alertIds);
        assertDeliveredOnce(sinks.webhook, 'webhook during the outage', alertIds);
        for (const id of alertIds) assert.equal(await outboxState(t, id), 'pending');

        sinks.hermes.down = false;
        let pending = Number.POSITIVE_INFINITY;
        for (let runs = 0; runs < 200 && pending > 0; runs += 1) {
          t.clock.advanceMs(20_000);
          pending = (await t.vault.alerts.deliverDue()).pending;
        }
        assert.equal(pending, 0);
        // Runs after the last delivery send nothing more.
        t.clock.advanceHours(1);
        assert.deepEqual(await t.vault.alerts.deliverDue(), { delivered: 0, failed: 0, pending: 0 });

        assertDeliveredOnce(sinks.hermes, 'HERMES', alertIds);
        assertDeliveredOnce(sinks.eventBus, 'event bus', alertIds);
        assertDeliveredOnce(sinks.webhook, 'webhook', alertIds);
        for (const id of alertIds) assert.equal(await outboxState(t, id), 'delivered');
      });
    });

    it('backs off exponentially', async () => {
      await withSinks(dialect, async (t, sinks) => {
        sinks.hermes.down = true;
        const id = await raiseAlert(t, 'rotation_failed', 'backoff/cred');
        const expectedDelays = [5, 10, 20, 40, 80, 160, 320, 640, 900, 900].map((seconds) => seconds * 1000);
        for (const [index, delay] of expectedDelays.entries()) {
          const now = t.clock.now().getTime();
          await t.vault.alerts.deliverDue();
          const row = await deliveryRow(t, id, 'hermes');
          assert.equal(row.attempts, index + 1);
          assert.equal(row.state, 'pending');
          assert.equal(row.last_error, 'the receiver responded with HTTP 503');
          assert.equal(new Date(toIso(row.next_attempt_at)).getTime() - now, delay, `delay after attempt ${index + 1}`);

          // Not due yet: a run just before the next attempt sends nothing to HERMES.
          const sent = sinks.hermes.exchanges.length;
          t.clock.advanceMs(delay - 1);
          await t.vault.alerts.deliverDue();
          assert.equal(sinks.hermes.exchanges.length, sent);
          t.clock.advanceMs(1);
        }
        assert.equal(sinks.eventBus.exchanges.length, 1, 'the other sinks are not retried');
      });
    });

    it('counts backoff from the failure', async () => {
      await withSinks(dialect, async (t, sinks) => {
        sinks.hermes.down = true;
        // The receiver takes 3 s (of the test clock) to fail.
        sinks.hermes.onRequest = () => t.clock.advanceMs(3_000);
        const id = await raiseAlert(t, 'rotation_failed', 'slow/cred');
        const started = t.clock.now().getTime();

        await t.vault.alerts.deliverDue();

        const row = await deliveryRow(t, id, 'hermes');
        assert.equal(new Date(toIso(row.next_attempt_at)).getTime(), started + 3_000 + 5_000);
        const delivered = await deliveryRow(t, id, 'event_bus');
        assert.equal(delivered.state, 'delivered');
        assert.equal(new Date(toIso(delivered.next_attempt_at)).getTime() <= t.clock.now().getTime(), true, 'a delivered row keeps no reservation in the future');
      });
    });

    it('hanging sink delays only itself', async () => {
      await withSinks(dialect, async (t, sinks) => {
        sinks.eventBus.holding = true;
        const alertIds: string[] = [];
        for (let index = 0; index < 6; index += 1) alertIds.push(await raiseAlert(t, 'rotation_success', `hang/cred-${index}`));

        const run = t.vault.alerts.deliverDue();
        await sinks.hermes.received(6);
        await sinks.webhook.received(6);
        await sinks.eventBus.received(1);
        assert.equal(sinks.hermes.exchanges.length, 6, 'HERMES got every alert while the event bus hung');
        assert.equal(sinks.webhook.exchanges.length, 6, 'the webhook got every alert while the event bus hung');
        sinks.eventBus.release();

        assert.deepEqual(await run, { delivered: 12, failed: 1, pending: 6 });
        assert.equal(sinks.eventBus.exchanges.length, 1, 'the hanging sink got one request in the run');
      });
    });

    it('sink hanging mid-run leaves a slot', async () => {
      await withSinks(dialect, async (t, sinks) => {
        // The event bus accepts its first alert and then hangs.
        let seen = 0;
        sinks.eventBus.onRequest = () => {
          seen += 1;
          if (seen > 1) sinks.eventBus.holding = true;
        };
        const alertIds: string[] = [];
        for (let index = 0; index < 12; index += 1) alertIds.push(await raiseAlert(t, 'rotation_success', `midway/cred-${index}`));

        const run = t.vault.alerts.deliverDue();
        await sinks.hermes.received(12);
        await sinks.webhook.received(12);
        assert.ok(seen <= 4, `the hanging sink took at most three slots after its first alert, got ${seen} requests`);
        sinks.eventBus.release();

        const result = await run;
        assert.equal(result.delivered, 25);
        assert.equal(result.failed, seen - 1);
        assertDeliveredOnce(sinks.hermes, 'HERMES', alertIds);
        assertDeliveredOnce(sinks.webhook, 'webhook', alertIds);
      });
    });

    it('gives up after maxAttempts', async () => {
      await withSinks(dialect, async (t, sinks) => {
        sinks.webhook.down = true;
        const alerts = new AlertService({ db: t.vault.db, clock: t.clock, log: t.vault.log, config: t.config, retry: { maxAttempts: 3 } });
        const id = await raiseAlert(t, 'health_check_failed', 'dead/cred');
        const sink = alerts.sinkNames.find((name) => name.startsWith('webhook:'))!;
        for (let attempt = 1; attempt <= 3; attempt += 1) {
          const run = await alerts.deliverDue();
          assert.equal(run.failed, 1, `attempt ${attempt}`);
          t.clock.advanceHours(1);
        }
        const row = await deliveryRow(t, id, sink);
        assert.equal(row.state, 'dead');
        assert.equal(row.attempts, 3);
        assert.equal(await outboxState(t, id), 'dead');

        sinks.webhook.down = false;
        assert.deepEqual(await alerts.deliverDue(), { delivered: 0, failed: 0, pending: 0 });
        assert.equal(sinks.webhook.exchanges.length, 3);
        assert.equal((await deliveryRow(t, id, 'hermes')).state, 'delivered');
      });
    });

    it('gives up after maxAgeMs', async () => {
      await withSinks(dialect, async (t, sinks) => {
        sinks.eventBus.down = true;
        const alerts = new AlertService({ db: t.vault.db, clock: t.clock, log: t.vault.log, config: t.config, retry: { maxAgeMs: 60_000 } });
        const id = await raiseAlert(t, 'credential_expired', 'old/cred');
        await alerts.deliverDue();
        assert.equal((await deliveryRow(t, id, 'event_bus')).state, 'pending');
        t.clock.advanceMs(60_000);
        await alerts.deliverDue();
        const row = await deliveryRow(t, id, 'event_bus');
        assert.equal(row.state, 'dead');
        assert.equal(row.attempts, 2);
      });
    });

    it('records unreachable sinks', async () => {
      await withSinks(dialect, async (t, sinks) => {
        await sinks.hermes.stub.close();
        const id = await raiseAlert(t, 'credential_expired', 'closed/cred');
        const run = await t.vault.alerts.deliverDue();
        assert.deepEqual(run, { delivered: 2, failed: 1, pending: 1 });
        assert.equal((await deliveryRow(t, id, 'hermes')).last_error, 'the request failed (ECONNREFUSED)');
      });
    });

    it('two services deliver once', async () => {
      const sinks = await startSinkStubs();
      const first = await openTestVault(dialect, { env: sinks.env });
      const second = await openTestVault(dialect, { env: sinks.env, clock: first.clock, reuse: { dir: first.dir, schema: first.env.AEGIS_DATABASE_SCHEMA } });
      try {
        const alertIds: string[] = [];
        for (let index = 0; index < 40; index += 1) alertIds.push(await raiseAlert(first, 'rotation_success', `pair/cred-${index}`));

        const runs = await Promise.all([first.vault.alerts.deliverDue(), second.vault.alerts.deliverDue(), first.vault.alerts.deliverDue(), second.vault.alerts.deliverDue()]);
        assert.equal(
          runs.reduce((sum, run) => sum + run.delivered, 0),
          alertIds.length * 3,
        );
        assert.ok(runs.filter((run) => run.delivered > 0).length >= 2, `both services took part: ${JSON.stringify(runs)}`);
        assertDeliveredOnce(sinks.hermes, 'HERMES', alertIds);
        assertDeliveredOnce(sinks.eventBus, 'event bus', alertIds);
        assertDeliveredOnce(sinks.webhook, 'webhook', alertIds);
        assert.equal(sinks.hermes.exchanges.length, alertIds.length);
      } finally {
        await second.close();
        await destroyTestVault(first);
        await sinks.close();
      }
    });
  });
}
