import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { Registry } from 'prom-client';
import { secretForms } from '../../src/lib/redact.js';
import { SCRAPE_AUDIT_WINDOW_MS } from '../../src/metrics/scrape-audit.js';
import { startSinkStub, type SinkStub } from '../helpers/alert-sinks.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

/** One scrape, parsed: each sample keyed by its name and its labels in name order, e.g. `a_total{x="1",y="2"}`. */
type Samples = Map<string, number>;

/**
 * Parses the Prometheus text exposition format as prom-client writes it: `#` lines are comments, every
 * other line is `name{label="value",...} number`. Label values here contain no `,` or `}`.
 */
function parseExposition(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a sample line: ${line}`);
    const labels = match[2] ? match[2].split(',').filter(Boolean).sort() : [];
    samples.set(sampleKey(match[1]!, labels), Number(match[3]));
  }
  return samples;
}

function sampleKey(name: string, labels: string[]): string {
  return labels.length === 0 ? name : `${name}{${labels.join(',')}}`;
}

/** Reads one sample; undefined when the scrape does not contain it. */
function sample(samples: Samples, name: string, labels: Record<string, string> = {}): number | undefined {
  const parts = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .sort();
  return samples.get(sampleKey(name, parts));
}

/** Returns how much a sample grew between two scrapes; a sample missing from a scrape counts as 0. */
function growth(before: Samples, afterwards: Samples, name: string, labels: Record<string, string> = {}): number {
  return (sample(afterwards, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
}

/** Writes an env file with one variable in the vault's folder and registers it as an env credential. */
async function createEnvCredential(t: TestVault, name: string, value: string, file: string): Promise<void> {
  fs.writeFileSync(file, `API_KEY=${value}\n`, { mode: 0o600 });
  const created = await call(t.app, 'POST', '/credentials', {
    token: t.adminToken,
    body: { name, credential_type: 'env', provider: 'env', provider_config: { file, variable: 'API_KEY' }, value },
  });
  assert.equal(created.status, 201, created.body);
}

async function metricsReadRows(t: TestVault, actor: string) {
  return t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('action', '=', 'metrics_read').where('actor', '=', actor).orderBy('seq').execute();
}

for (const dialect of await testDialects()) {
  describe(`metrics on ${dialect}`, () => {
    let t: TestVault;
    let hermes: SinkStub;
    let metricsToken: string;
    let dir: string;
    const okName = 'metrics/env-ok';
    const failingName = 'metrics/env-failing';
    const okValue = `ok-${crypto.randomBytes(12).toString('hex')}`;
    const failingValue = `failing-${crypto.randomBytes(12).toString('hex')}`;

    async function scrape(token = metricsToken): Promise<{ text: string; samples: Samples }> {
      const response = await call(t.app, 'GET', '/metrics', { token });
      assert.equal(response.status, 200, response.body);
      return { text: response.body, samples: parseExposition(response.body) };
    }

    before(async () => {
      hermes = await startSinkStub();
      hermes.down = true;
      dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-metrics-')));
      // Every write to failing.env is followed by a reload command that fails, so its rotations fail at the provider.
      const reloadCommands = { [path.join(dir, 'failing.env')]: 'exit 1' };
      t = await openTestVault(dialect, {
        reuse: { dir },
        env: { HERMES_URL: hermes.stub.url, AEGIS_ENV_RELOAD_COMMANDS: JSON.stringify(reloadCommands) },
      });
      metricsToken = await tokenWith(t, 'prometheus', ['metrics:read']);
    });

    after(async () => {
      await destroyTestVault(t);
      await hermes.stub.close();
    });

    it('scrape uses Prometheus text format', async () => {
      const response = await call(t.app, 'GET', '/metrics', { token: metricsToken });
      assert.equal(response.status, 200, response.body);
      assert.equal(response.headers['content-type'], t.vault.metrics.contentType);
      assert.equal(response.headers['content-type'], new Registry().contentType);

      const samples = parseExposition(response.body);
      assert.equal(sample(samples, 'aegis_database_up'), 1);
      assert.equal(sample(samples, 'aegis_scheduler_leader'), 0);
      assert.ok((sample(samples, 'process_cpu_user_seconds_total') ?? -1) >= 0, 'default process metrics are missing');
      assert.equal(sample(samples, 'aegis_rotations_total', { trigger: 'scheduled', outcome: 'failure' }), 0);
      assert.equal(sample(samples, 'aegis_health_checks_total', { result: 'unhealthy' }), 0);
      assert.equal(sample(samples, 'aegis_alert_queue_depth', { sink: 'hermes' }), 0);
    });

    it('scrape needs metrics:read', async () => {
      const reader = await tokenWith(t, 'metrics-reader-denied', ['credentials:read']);
      const denied = await call(t.app, 'GET', '/metrics', { token: reader });
      assert.equal(denied.status, 403, denied.body);
      const missing = await call(t.app, 'GET', '/metrics');
      assert.equal(missing.status, 401, missing.body);
      const admin = await call(t.app, 'GET', '/metrics', { token: t.adminToken });
      assert.equal(admin.status, 200, admin.body);
    });

    it('HEAD is not allowed', async () => {
      const response = await call(t.app, 'HEAD', '/metrics', { token: metricsToken });
      assert.equal(response.status, 405);
      assert.equal(response.headers.allow, 'GET');
    });

    it('metrics move with requests, rotations, checks and alerts', async () => {
      const before = await scrape();

      for (let index = 0; index < 2; index += 1) {
        const listed = await call(t.app, 'GET', '/credentials', { token: t.adminToken });
        assert.equal(listed.status, 200, listed.body);
      }
      for (const url of ['/no/such/route', '/another-unknown-path', '/credentials/x/y/z']) {
        const missing = await call(t.app, 'GET', url, { token: t.adminToken });
        assert.equal(missing.status, 404, missing.body);
      }

      await createEnvCredential(t, okName, okValue, path.join(dir, 'ok.env'));
      await createEnvCredential(t, failingName, failingValue, path.join(dir, 'failing.env'));
      const rotated = await call(t.app, 'POST', `/credentials/${encodeURIComponent(okName)}/rotate`, { token: t.adminToken, body: { trigger: 'manual' } });
      assert.equal(rotated.status, 200, rotated.body);
      const failed = await call(t.app, 'POST', `/credentials/${encodeURIComponent(failingName)}/rotate`, { token: t.adminToken, body: { trigger: 'manual' } });
      assert.equal(failed.status, 502, failed.body);

      const tested = await call(t.app, 'POST', `/credentials/${encodeURIComponent(okName)}/test`, { token: t.adminToken });
      assert.equal(tested.status, 200, tested.body);
      assert.equal(tested.json.status, 'healthy');

      // HERMES is down: the delivery attempt fails and both rotation alerts wait for it.
      const delivered = await call(t.app, 'POST', '/alerts/deliver', { token: t.adminToken });
      assert.equal(delivered.status, 200, delivered.body);
      assert.ok(hermes.exchanges.some((exchange) => exchange.status === 503), 'HERMES got no delivery attempt');

      const afterwards = await scrape();
      const { samples } = afterwards;

      assert.equal(growth(before.samples, samples, 'aegis_http_requests_total', { method: 'GET', route: '/credentials', status: '200' }), 2);
      assert.equal(growth(before.samples, samples, 'aegis_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }), 3);
      assert.equal(growth(before.samples, samples, 'aegis_http_requests_total', { method: 'POST', route: '/credentials', status: '201' }), 2);
      assert.equal(growth(before.samples, samples, 'aegis_http_requests_total', { method: 'POST', route: '/credentials/:name/rotate', status: '200' }), 1);
      assert.equal(growth(before.samples, samples, 'aegis_http_requests_total', { method: 'POST', route: '/credentials/:name/rotate', status: '502' }), 1);
      assert.equal(growth(before.samples, samples, 'aegis_http_requests_total', { method: 'POST', route: '/credentials/:name/test', status: '200' }), 1);
      // The first scrape is counted once its response has been sent, so the second scrape shows it.
      assert.equal(growth(before.samples, samples, 'aegis_http_requests_total', { method: 'GET', route: '/metrics', status: '200' }), 1);

      assert.equal(growth(before.samples, samples, 'aegis_http_request_duration_seconds_count', { method: 'GET', route: '/credentials' }), 2);
      assert.equal(growth(before.samples, samples, 'aegis_http_request_duration_seconds_bucket', { method: 'GET', route: '/credentials', le: '+Inf' }), 2);
      assert.equal(growth(before.samples, samples, 'aegis_http_request_duration_seconds_count', { method: 'POST', route: '/credentials/:name/rotate' }), 2);
      assert.ok(growth(before.samples, samples, 'aegis_http_request_duration_seconds_sum', { method: 'GET', route: '/credentials' }) > 0);

      assert.equal(growth(before.samples, samples, 'aegis_rotations_total', { trigger: 'manual', outcome: 'success' }), 1);
      assert.equal(growth(before.samples, samples, 'aegis_rotations_total', { trigger: 'manual', outcome: 'failure' }), 1);
      assert.equal(growth(before.samples, samples, 'aegis_rotations_total', { trigger: 'scheduled', outcome: 'success' }), 0);
      assert.equal(growth(before.samples, samples, 'aegis_rotation_duration_seconds_count', { outcome: 'success' }), 1);
      assert.equal(growth(before.samples, samples, 'aegis_rotation_duration_seconds_count', { outcome: 'failure' }), 1);

      assert.equal(growth(before.samples, samples, 'aegis_health_checks_total', { result: 'healthy' }), 1);
      assert.equal(growth(before.samples, samples, 'aegis_health_checks_total', { result: 'unhealthy' }), 0);

      const pendingAlerts = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').select(['alert_type', 'state']).execute();
      assert.deepEqual(pendingAlerts.map((row) => `${row.alert_type}:${row.state}`).sort(), ['rotation_failed:pending', 'rotation_success:pending']);
      assert.equal(sample(before.samples, 'aegis_alert_queue_depth', { sink: 'hermes' }), 0);
      assert.equal(sample(samples, 'aegis_alert_queue_depth', { sink: 'hermes' }), 2);

      assert.equal(sample(samples, 'aegis_credentials', { status: 'active' }), 1);
      assert.equal(sample(samples, 'aegis_credentials', { status: 'failed' }), 1);
      assert.equal(sample(samples, 'aegis_credentials', { status: 'expired' }), 0);
      assert.equal(growth(before.samples, samples, 'aegis_credentials', { status: 'active' }), 1);

      // The second scrape falls in the first one's audit window, so it wrote no entry and the head is unchanged.
      const head = await t.vault.db.kysely.selectFrom('aegis_audit_head').select('seq').executeTakeFirstOrThrow();
      assert.equal(sample(samples, 'aegis_audit_entries_total'), Number(head.seq));
      assert.ok(growth(before.samples, samples, 'aegis_audit_entries_total') >= 9, 'the requests above wrote at least nine audit entries');
      assert.equal(sample(samples, 'aegis_database_up'), 1);

      const rotatedValue = fs.readFileSync(path.join(dir, 'ok.env'), 'utf8').trim().replace(/^API_KEY=/, '');
      assert.notEqual(rotatedValue, okValue);
      for (const secret of [okValue, failingValue, rotatedValue]) {
        for (const form of secretForms(secret)) assert.ok(!afterwards.text.includes(form), `the scrape contains a form of a credential value`);
      }
      for (const name of [okName, failingName, 'env-ok', 'env-failing', '/no/such/route', 'another-unknown-path']) {
        assert.ok(!afterwards.text.includes(name), `the scrape contains ${name}`);
        assert.ok(!afterwards.text.includes(encodeURIComponent(name)), `the scrape contains ${encodeURIComponent(name)}`);
      }
    });

    it('alert queue drains once sink recovers', async () => {
      hermes.down = false;
      // The failed attempt set the next one 5 s later.
      t.clock.advanceMs(60_000);
      const delivered = await call(t.app, 'POST', '/alerts/deliver', { token: t.adminToken });
      assert.equal(delivered.status, 200, delivered.body);
      assert.equal(delivered.json.delivered, 2, delivered.body);
      const { samples } = await scrape();
      assert.equal(sample(samples, 'aegis_alert_queue_depth', { sink: 'hermes' }), 0);
    });

    it('leader gauge follows scheduler lease', async () => {
      await t.vault.scheduler.tick();
      assert.equal(t.vault.scheduler.isLeader, true);
      assert.equal(sample((await scrape()).samples, 'aegis_scheduler_leader'), 1);

      await t.vault.scheduler.stop();
      assert.equal(sample((await scrape()).samples, 'aegis_scheduler_leader'), 0);
    });

    it('scrapes audited once per token hour', async () => {
      const actor = 'prometheus-audited';
      const token = await tokenWith(t, actor, ['metrics:read']);
      for (let index = 0; index < 3; index += 1) await scrape(token);

      let rows = await metricsReadRows(t, actor);
      assert.equal(rows.length, 1);
      assert.equal(Boolean(rows[0]!.success), true);
      assert.equal(rows[0]!.credential_name, '*');

      t.clock.advanceMs(SCRAPE_AUDIT_WINDOW_MS - 1);
      await scrape(token);
      assert.equal((await metricsReadRows(t, actor)).length, 1);

      t.clock.advanceMs(1);
      await scrape(token);
      rows = await metricsReadRows(t, actor);
      assert.equal(rows.length, 2);
      const details = typeof rows[1]!.details === 'string' ? JSON.parse(rows[1]!.details) : rows[1]!.details;
      assert.equal(details.unrecorded_scrapes, 3);

      const denied = await call(t.app, 'GET', '/metrics', { token: await tokenWith(t, 'metrics-denied', ['audit:read']) });
      assert.equal(denied.status, 403);
      const deniedRows = await metricsReadRows(t, 'metrics-denied');
      assert.equal(deniedRows.length, 1);
      assert.equal(Boolean(deniedRows[0]!.success), false);
    });

    it('failed database read reports 0', async () => {
      // A table the scrape reads goes missing, while tokens and the audit log still work.
      await sql`alter table aegis_alert_deliveries rename to aegis_alert_deliveries_hidden`.execute(t.vault.db.kysely);
      try {
        for (let index = 0; index < 2; index += 1) {
          const { samples } = await scrape();
          assert.equal(sample(samples, 'aegis_database_up'), 0);
          assert.equal(sample(samples, 'aegis_credentials', { status: 'active' }), undefined);
          assert.equal(sample(samples, 'aegis_alert_queue_depth', { sink: 'hermes' }), undefined);
          assert.ok(sample(samples, 'aegis_http_requests_total', { method: 'GET', route: '/metrics', status: '200' })! > 0);
        }
      } finally {
        await sql`alter table aegis_alert_deliveries_hidden rename to aegis_alert_deliveries`.execute(t.vault.db.kysely);
      }
      const warnings = t.logs.lines.filter((line) => line.includes('metrics database read failed;'));
      assert.equal(warnings.length, 1, 'one warning per outage, not one per scrape');

      const { samples } = await scrape();
      assert.equal(sample(samples, 'aegis_database_up'), 1);
      assert.equal(sample(samples, 'aegis_credentials', { status: 'active' }), 1);
      assert.ok(t.logs.lines.some((line) => line.includes('metrics database read succeeded again')));
    });

    it('two vaults keep separate registries', async () => {
      const second = await openTestVault(dialect);
      try {
        const secondToken = await tokenWith(second, 'prometheus-second', ['metrics:read']);
        const first = await scrape();
        for (let index = 0; index < 3; index += 1) await call(t.app, 'GET', '/health');
        const firstAgain = await scrape();
        const secondResponse = await call(second.app, 'GET', '/metrics', { token: secondToken });
        assert.equal(secondResponse.status, 200, secondResponse.body);
        const secondSamples = parseExposition(secondResponse.body);

        assert.equal(growth(first.samples, firstAgain.samples, 'aegis_http_requests_total', { method: 'GET', route: '/health', status: '200' }), 3);
        assert.equal(sample(secondSamples, 'aegis_http_requests_total', { method: 'GET', route: '/health', status: '200' }), undefined);
        assert.equal(sample(secondSamples, 'aegis_credentials', { status: 'active' }), 0);
        assert.ok(sample(secondSamples, 'process_resident_memory_bytes') !== undefined || sample(secondSamples, 'process_cpu_user_seconds_total') !== undefined);
      } finally {
        await destroyTestVault(second);
      }
    });
  });
}
