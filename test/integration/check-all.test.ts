import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { alertsOf, createApiCredential, setupCaller } from '../helpers/health-fixtures.js';
import { startHttpStub, type HttpStub } from '../helpers/http-stub.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const credentialCount = 300;
const concurrency = 8;
const delayMs = 20;

/** Starts a stand-in API that responds to each test request after `delayMs` and counts the requests open at once. */
async function startDelayedApi() {
  const stats = { inFlight: 0, maxInFlight: 0, requests: 0 };
  const server = http.createServer((request, response) => {
    stats.requests += 1;
    stats.inFlight += 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    // Every tenth credential (names ending in 0) is rejected.
    const status = /0$/.test(decodeURIComponent(request.url ?? '')) ? 401 : 200;
    setTimeout(() => {
      stats.inFlight -= 1;
      response.writeHead(status);
      response.end();
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    stats,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

for (const dialect of await testDialects()) {
  describe(`check-all on ${dialect}`, () => {
    let t: TestVault;
    let api: Awaited<ReturnType<typeof startDelayedApi>>;
    const names = Array.from({ length: credentialCount }, (_, index) => `fleet/key-${String(index).padStart(3, '0')}`);

    before(async () => {
      api = await startDelayedApi();
      t = await openTestVault(dialect, { env: { AEGIS_HEALTH_CONCURRENCY: String(concurrency) } });
      for (const name of names) await createApiCredential(t, name, api.url);
      await createApiCredential(t, 'fleet/retired', api.url);
      await t.vault.registry.retire(setupCaller, 'fleet/retired');
    });
    after(async () => {
      await destroyTestVault(t);
      await api.close();
    });

    it('checks every credential once', async () => {
      const response = await call(t.app, 'POST', '/health/check-all', { token: t.adminToken });
      assert.equal(response.status, 200, response.body);
      const body = response.json;
      const rejected = names.filter((name) => name.endsWith('0'));
      assert.equal(body.checked, credentialCount);
      assert.equal(body.unhealthy, rejected.length);
      assert.equal(body.healthy, credentialCount - rejected.length);
      assert.deepEqual(body.details.map((detail: { name: string }) => detail.name), names);
      for (const detail of body.details) {
        const expected = detail.name.endsWith('0') ? 'unhealthy' : 'healthy';
        assert.equal(detail.status, expected, detail.name);
        assert.equal(typeof detail.response_time_ms, 'number');
        assert.ok(detail.response_time_ms >= delayMs - 1, `${detail.name} answered in ${detail.response_time_ms} ms`);
      }
      assert.equal(api.stats.requests, credentialCount, 'the retired credential is not checked');

      const checks = await t.vault.db.kysely.selectFrom('aegis_health_checks').select((eb) => eb.fn.countAll<string | number>().as('count')).executeTakeFirstOrThrow();
      assert.equal(Number(checks.count), credentialCount);
      assert.equal((await alertsOf(t, 'health_check_failed')).length, rejected.length);
    });

    it('bounds requests in flight', () => {
      assert.ok(api.stats.maxInFlight <= concurrency, `max in flight ${api.stats.maxInFlight} > ${concurrency}`);
      assert.ok(api.stats.maxInFlight >= 2, `max in flight ${api.stats.maxInFlight}: the checks ran one at a time`);
    });

    it('second run raises no alert', async () => {
      const before = (await alertsOf(t, 'health_check_failed')).length;
      t.clock.advanceHours(1);
      const response = await call(t.app, 'POST', '/health/check-all', { token: t.adminToken });
      assert.equal(response.status, 200, response.body);
      assert.equal((await alertsOf(t, 'health_check_failed')).length, before);
      assert.ok(api.stats.maxInFlight <= concurrency);
    });
  });
}

for (const dialect of await testDialects()) {
  describe(`one check-all at a time on ${dialect}`, () => {
    let t: TestVault;
    let api: HttpStub;
    /** Responses the stand-in API holds until the test releases them. */
    const heldResponses: http.ServerResponse[] = [];

    before(async () => {
      api = await startHttpStub((_request, response) => heldResponses.push(response));
      t = await openTestVault(dialect);
      await createApiCredential(t, 'held/key', api.url);
    });
    after(async () => {
      await destroyTestVault(t);
      await api.close();
    });

    it('rejects a second run', async () => {
      const first = call(t.app, 'POST', '/health/check-all', { token: t.adminToken });
      while (heldResponses.length === 0) await new Promise((resolve) => setImmediate(resolve));

      const second = await call(t.app, 'POST', '/health/check-all', { token: t.adminToken });
      assert.equal(second.status, 409, second.body);
      assert.equal(second.json.code, 'check_all_in_progress');
      const entries = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('error_message').where('action', '=', 'checked_all').execute();
      assert.deepEqual(entries.map((entry) => entry.error_message?.split(':')[0]), ['check_all_in_progress']);

      heldResponses.shift()!.writeHead(200).end();
      const finished = await first;
      assert.equal(finished.status, 200, finished.body);
      assert.equal(finished.json.checked, 1);

      const third = call(t.app, 'POST', '/health/check-all', { token: t.adminToken });
      while (heldResponses.length === 0) await new Promise((resolve) => setImmediate(resolve));
      heldResponses.shift()!.writeHead(200).end();
      assert.equal((await third).status, 200);
    });
  });
}
