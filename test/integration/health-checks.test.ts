import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLoginRole, dropLoginRole, postgresReachable, testDialects, testPostgresUrl } from '../helpers/databases.js';
import { alertsOf, createApiCredential, setupCaller, storedStatus } from '../helpers/health-fixtures.js';
import { startHttpStub, type HttpStub } from '../helpers/http-stub.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const pgServer = await postgresReachable();

for (const dialect of await testDialects()) {
  describe(`health checks on ${dialect}`, () => {
    let t: TestVault;
    let stub: HttpStub;
    /** The status code of the stand-in API's response to every test request. */
    let answer = 200;
    const name = 'billing/api-key';

    before(async () => {
      stub = await startHttpStub((_request, response) => {
        response.writeHead(answer);
        response.end();
      });
      t = await openTestVault(dialect, { env: { AEGIS_POSTGRES_ADMIN_URL: testPostgresUrl } });
      await createApiCredential(t, name, stub.url);
    });
    after(async () => {
      await destroyTestVault(t);
      await stub.close();
    });

    async function test(credential: string, token = t.adminToken) {
      const response = await call(t.app, 'POST', `/credentials/${encodeURIComponent(credential)}/test`, { token });
      assert.equal(response.status, 200, response.body);
      return response.json;
    }

    async function dashboardEntry(credential: string) {
      const response = await call(t.app, 'GET', '/health/dashboard?limit=1000', { token: t.adminToken });
      assert.equal(response.status, 200, response.body);
      return response.json.credentials.find((entry: { name: string }) => entry.name === credential);
    }

    it('passing api check is healthy', async () => {
      answer = 200;
      const result = await test(name);
      assert.equal(result.status, 'healthy');
      assert.equal(result.details.status, 200);
      assert.equal(typeof result.response_time_ms, 'number');
      assert.equal(result.error, null);
      assert.equal(stub.requests.at(-1)?.headers.authorization, `Bearer value-of-${name}`);
      assert.equal(await storedStatus(t, name), 'active');

      const rows = await t.vault.db.kysely.selectFrom('aegis_health_checks').selectAll().execute();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.status, 'healthy');
      const credential = await t.vault.db.kysely.selectFrom('aegis_credentials').select('last_health_check').where('name', '=', name).executeTakeFirstOrThrow();
      assert.equal(new Date(credential.last_health_check!).toISOString(), t.clock.now().toISOString());
    });

    it('failing check marks failed once', async () => {
      answer = 401;
      t.clock.advanceHours(1);
      const result = await test(name);
      assert.equal(result.status, 'unhealthy');
      assert.equal(result.details.status, 401);
      assert.equal(result.error, 'test request answered HTTP 401');
      assert.equal(await storedStatus(t, name), 'failed');

      const entry = await dashboardEntry(name);
      assert.equal(entry.status, 'failed');
      assert.equal(entry.health, 'unhealthy');
      assert.equal(entry.colour, 'red');
      assert.equal(entry.label, 'Action Required');

      const alerts = await alertsOf(t, 'health_check_failed', name);
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0]!.message, `⚠️ Health check failed for '${name}': test request answered HTTP 401`);
      assert.equal(alerts[0]!.priority, 'high');

      const stored = await t.vault.db.kysely.selectFrom('aegis_health_checks').select(['status', 'error_message']).orderBy('checked_at', 'desc').limit(1).executeTakeFirstOrThrow();
      assert.equal(stored.status, 'unhealthy');
      assert.ok(!String(stored.error_message).includes(`value-of-${name}`));
    });

    it('repeated failures raise no alert', async () => {
      for (let round = 0; round < 3; round += 1) {
        t.clock.advanceHours(1);
        assert.equal((await test(name)).status, 'unhealthy');
      }
      const all = await call(t.app, 'POST', '/health/check-all', { token: t.adminToken });
      assert.equal(all.status, 200, all.body);
      assert.equal(all.json.unhealthy, 1);
      assert.equal((await alertsOf(t, 'health_check_failed', name)).length, 1);
      assert.equal(await storedStatus(t, name), 'failed');
    });

    it('passing check recovers to active', async () => {
      answer = 200;
      t.clock.advanceHours(1);
      assert.equal((await test(name)).status, 'healthy');
      assert.equal(await storedStatus(t, name), 'active');
      const entry = await dashboardEntry(name);
      assert.equal(entry.colour, 'green');
      assert.equal(entry.label, 'Healthy');
      assert.equal(entry.health, 'healthy');
      assert.equal((await alertsOf(t, 'health_check_failed', name)).length, 1);
    });

    it('new failure alerts again', async () => {
      answer = 503;
      t.clock.advanceHours(1);
      assert.equal((await test(name)).status, 'unhealthy');
      const alerts = await alertsOf(t, 'health_check_failed', name);
      assert.equal(alerts.length, 2);
      assert.notEqual(alerts[0]!.condition_key, alerts[1]!.condition_key);
      assert.equal(alerts[1]!.message, `⚠️ Health check failed for '${name}': test request answered HTTP 503`);
      answer = 200;
      t.clock.advanceHours(1);
      await test(name);
    });

    it('failure after failed rotation alerts', async () => {
      const rotated = 'billing/rotated-key';
      await createApiCredential(t, rotated, stub.url);
      answer = 401;
      t.clock.advanceHours(1);
      const rotation = await call(t.app, 'POST', `/credentials/${encodeURIComponent(rotated)}/rotate`, { token: t.adminToken, body: { value: 'rejected-value' } });
      assert.equal(rotation.status, 502, rotation.body);
      assert.equal(await storedStatus(t, rotated), 'failed');
      assert.equal((await alertsOf(t, 'health_check_failed', rotated)).length, 0);

      // The kept value now fails its check too, which the rotation's alert did not report.
      t.clock.advanceHours(1);
      assert.equal((await test(rotated)).status, 'unhealthy');
      const alerts = await alertsOf(t, 'health_check_failed', rotated);
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0]!.message, `⚠️ Health check failed for '${rotated}': test request answered HTTP 401`);

      t.clock.advanceHours(1);
      assert.equal((await test(rotated)).status, 'unhealthy');
      assert.equal((await alertsOf(t, 'health_check_failed', rotated)).length, 1);
      answer = 200;
    });

    it('failure after rollback alerts', async () => {
      const rolled = 'billing/rolled-back-key';
      // This stand-in accepts only the values in `accepted`, so each version passes or fails on its own.
      const accepted = new Set([`value-of-${rolled}`]);
      const picky = await startHttpStub((request, response) => {
        response.writeHead(accepted.has(String(request.headers.authorization).replace(/^Bearer /, '')) ? 200 : 401);
        response.end();
      });
      try {
        await createApiCredential(t, rolled, picky.url);
        t.clock.advanceHours(1);
        const patched = await call(t.app, 'PATCH', `/credentials/${encodeURIComponent(rolled)}`, { token: t.adminToken, body: { value: 'second-value' } });
        assert.equal(patched.status, 200, patched.body);
        t.clock.advanceHours(1);
        assert.equal((await test(rolled)).status, 'unhealthy');
        assert.equal((await alertsOf(t, 'health_check_failed', rolled)).length, 1);

        // Version 1 passes the rollback's test, so the failure of version 2 has ended.
        t.clock.advanceHours(1);
        const rollback = await call(t.app, 'POST', `/credentials/${encodeURIComponent(rolled)}/rollback`, { token: t.adminToken, body: { version: 1 } });
        assert.equal(rollback.status, 200, rollback.body);
        assert.equal(await storedStatus(t, rolled), 'active');

        // Version 1 then stops working: a rotation fails and keeps it, and its check fails, a new failure.
        accepted.clear();
        t.clock.advanceHours(1);
        const rotation = await call(t.app, 'POST', `/credentials/${encodeURIComponent(rolled)}/rotate`, { token: t.adminToken, body: { value: 'rejected-value' } });
        assert.equal(rotation.status, 502, rotation.body);
        t.clock.advanceHours(1);
        assert.equal((await test(rolled)).status, 'unhealthy');
        assert.equal((await alertsOf(t, 'health_check_failed', rolled)).length, 2);
      } finally {
        await picky.close();
      }
    });

    it('recovery keeps the expiry status', async () => {
      const expiring = 'billing/expiring-key';
      await createApiCredential(t, expiring, stub.url, { expires_at: new Date(t.clock.now().getTime() + 10 * 3_600_000).toISOString() });
      answer = 500;
      await test(expiring);
      assert.equal(await storedStatus(t, expiring), 'failed');
      answer = 200;
      t.clock.advanceHours(1);
      await test(expiring);
      assert.equal(await storedStatus(t, expiring), 'expiring');
    });

    it('rotating credential keeps its status', async () => {
      const rotating = 'billing/rotating-key';
      await createApiCredential(t, rotating, stub.url);
      await t.vault.db.kysely.updateTable('aegis_credentials').set({ status: 'rotating' }).where('name', '=', rotating).execute();
      answer = 401;
      assert.equal((await test(rotating)).status, 'unhealthy');
      assert.equal(await storedStatus(t, rotating), 'rotating');
      assert.equal((await alertsOf(t, 'health_check_failed', rotating)).length, 0);
      answer = 200;
    });

    it('superseded check changes nothing', async () => {
      const replaced = 'billing/replaced-key';
      await createApiCredential(t, replaced, stub.url);
      // On PostgreSQL a second vault on the same schema plays a second AEGIS process, which stores the
      // new value. Two vaults on one SQLite file in one Node process would block each other's writes.
      const other = dialect === 'postgres' ? await openTestVault(dialect, { reuse: { dir: t.dir, schema: t.env.AEGIS_DATABASE_SCHEMA }, clock: t.clock }) : t;
      try {
        // The stand-in API keeps the test request of version 1 waiting until version 2 is stored, then rejects it.
        let testArrived!: () => void;
        const arrived = new Promise<void>((resolve) => (testArrived = resolve));
        let releaseTest!: () => void;
        const released = new Promise<void>((resolve) => (releaseTest = resolve));
        stub.handle((_request, response) => {
          testArrived();
          void released.then(() => {
            response.writeHead(401);
            response.end();
          });
        });

        const checking = test(replaced);
        await arrived;
        const patched = await call(other.app, 'PATCH', `/credentials/${encodeURIComponent(replaced)}`, { token: t.adminToken, body: { value: 'replaced-value' } });
        assert.equal(patched.status, 200, patched.body);
        releaseTest();

        const result = await checking;
        assert.equal(result.status, 'unknown');
        assert.match(result.error, /^version 1 was tested, but version 2 became current while the check ran/);
        assert.equal(await storedStatus(t, replaced), 'active');
        assert.equal((await alertsOf(t, 'health_check_failed', replaced)).length, 0);
        const stored = await t.vault.db.kysely.selectFrom('aegis_health_checks as h').innerJoin('aegis_credentials as c', 'c.id', 'h.credential_id').select('h.status').where('c.name', '=', replaced).execute();
        assert.deepEqual(stored, [{ status: 'unknown' }]);
      } finally {
        stub.handle((_request, response) => {
          response.writeHead(answer);
          response.end();
        });
        if (other !== t) await other.close();
      }
    });

    it('env check reads the file', async () => {
      const file = path.join(t.dir, 'app.env');
      fs.writeFileSync(file, 'API_KEY=env-value-1\n');
      await t.vault.registry.create(setupCaller, { name: 'app/env-key', credential_type: 'apiKey', provider: 'env', provider_config: { file, variable: 'API_KEY' }, value: 'env-value-1' });
      assert.equal((await test('app/env-key')).status, 'healthy');

      t.clock.advanceHours(1);
      fs.writeFileSync(file, 'API_KEY=\n');
      const empty = await test('app/env-key');
      assert.equal(empty.status, 'unhealthy');
      assert.equal(empty.error, `API_KEY is empty in ${file}`);

      t.clock.advanceHours(1);
      fs.writeFileSync(file, 'OTHER=1\n');
      const missing = await test('app/env-key');
      assert.equal(missing.status, 'unhealthy');
      assert.equal(missing.error, `API_KEY is missing from ${file}`);
      assert.equal(await storedStatus(t, 'app/env-key'), 'failed');
    });

    it('passed rotation test counts as check', async () => {
      // The file lacks API_KEY since the test before, so the newest check of app/env-key is unhealthy.
      assert.equal((await dashboardEntry('app/env-key')).health, 'unhealthy');
      t.clock.advanceHours(1);
      const rotated = await call(t.app, 'POST', '/credentials/app%2Fenv-key/rotate', { token: t.adminToken, body: { value: 'env-value-2' } });
      assert.equal(rotated.status, 200, rotated.body);

      const entry = await dashboardEntry('app/env-key');
      assert.equal(entry.health, 'healthy');
      assert.equal(entry.status, 'active');
      assert.equal(entry.last_health_check, t.clock.now().toISOString());
      const credential = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'app/env-key').executeTakeFirstOrThrow();
      const newest = await t.vault.db.kysely
        .selectFrom('aegis_health_checks')
        .selectAll()
        .where('credential_id', '=', credential.id)
        .orderBy('checked_at', 'desc')
        .limit(1)
        .executeTakeFirstOrThrow();
      assert.equal(newest.status, 'healthy');
      const details = typeof newest.details === 'string' ? JSON.parse(newest.details) : newest.details;
      assert.equal(details.rotated_to_version, rotated.json.new_version);
    });

    it('untestable providers are unknown', async () => {
      await t.vault.registry.create(setupCaller, { name: 'flows/n8n-cred', credential_type: 'httpHeaderAuth', provider: 'n8n', provider_credential_id: '17' });
      // Without N8N_URL the n8n adapter has no health check; an api credential without a test request has none either.
      await t.vault.registry.create(setupCaller, { name: 'billing/no-test', credential_type: 'httpHeaderAuth', provider: 'api', value: 'no-test-value' });
      for (const credential of ['flows/n8n-cred', 'billing/no-test']) {
        const result = await test(credential);
        assert.equal(result.status, 'unknown', credential);
        assert.equal(result.response_time_ms, null, credential);
        assert.equal(await storedStatus(t, credential), 'active', credential);
      }
      const row = await t.vault.db.kysely
        .selectFrom('aegis_health_checks as h')
        .innerJoin('aegis_credentials as c', 'c.id', 'h.credential_id')
        .select(['h.status', 'h.error_message'])
        .where('c.name', '=', 'flows/n8n-cred')
        .executeTakeFirstOrThrow();
      assert.equal(row.status, 'unknown');
      assert.equal(row.error_message, 'n8n is not configured. Set N8N_URL and N8N_API_KEY and restart AEGIS.');
    });

    it('postgres check logs in', { skip: !pgServer && 'no PostgreSQL server' }, async () => {
      const role = await createLoginRole();
      try {
        await t.vault.registry.create(setupCaller, { name: 'db/login', credential_type: 'postgres', provider: 'postgres', provider_config: { role }, value: 'any-password' });
        const healthy = await test('db/login');
        assert.equal(healthy.status, 'healthy', JSON.stringify(healthy));
        assert.equal(healthy.details.role, role);
      } finally {
        await dropLoginRole(role);
      }

      await t.vault.registry.create(setupCaller, { name: 'db/no-role', credential_type: 'postgres', provider: 'postgres', provider_config: { role: 'aegis_no_such_role' }, value: 'any-password' });
      const unhealthy = await test('db/no-role');
      assert.equal(unhealthy.status, 'unhealthy');
      assert.match(unhealthy.error, /^login as aegis_no_such_role failed/);
    });

    it('test is audited', async () => {
      const token = await tokenWith(t, 'agent-reader', ['credentials:read']);
      await test(name, token);
      const rows = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('actor', '=', 'agent-reader').where('action', '=', 'tested').execute();
      assert.equal(rows.length, 1);
      assert.equal(Boolean(rows[0]!.success), true);
      assert.equal(rows[0]!.credential_name, name);
    });

    it('test respects token limits', async () => {
      const token = await tokenWith(t, 'limited-reader', ['credentials:read'], { namePatterns: ['app/*'] });
      const denied = await call(t.app, 'POST', `/credentials/${encodeURIComponent(name)}/test`, { token });
      assert.equal(denied.status, 403, denied.body);
      const missing = await call(t.app, 'POST', '/credentials/app%2Fnone/test', { token });
      assert.equal(missing.status, 404, missing.body);
      const rows = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('actor', '=', 'limited-reader').execute();
      assert.equal(rows.length, 2);
      assert.ok(rows.every((row) => !row.success));
    });

    it('check-all needs the rotate scope', async () => {
      const token = await tokenWith(t, 'reader-only', ['credentials:read']);
      const response = await call(t.app, 'POST', '/health/check-all', { token });
      assert.equal(response.status, 403, response.body);
    });

    it('no value in logs or checks', async () => {
      const text = t.logs.text();
      const checks = JSON.stringify(await t.vault.db.kysely.selectFrom('aegis_health_checks').selectAll().execute());
      for (const secret of [`value-of-${name}`, 'env-value-1', 'any-password']) {
        assert.ok(!text.includes(secret), `log holds ${secret}`);
        assert.ok(!checks.includes(secret), `health checks hold ${secret}`);
      }
    });
  });
}
