import assert from 'node:assert/strict';
import { after, before, describe, it, mock } from 'node:test';
import { verifyAuditChain } from '../../src/audit/verify.js';
import { createShutdown } from '../../src/http/shutdown.js';
import { testDialects } from '../helpers/databases.js';
import { rateLimitRows } from '../helpers/rate-limit.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const attacker = '203.0.113.21';
const otherAttacker = '203.0.113.22';
const limit = 3;
const badToken = 'flood-bad-token-6c1e0f9a';
/** Requests sent at once in a flood, so the audit log's group commits see them together. */
const floodConcurrency = 50;

/** Fails `limit` authentications from the address, so its next requests get 429. */
async function block(t: TestVault, address: string): Promise<void> {
  for (let attempt = 0; attempt < limit; attempt += 1) {
    const failed = await call(t.app, 'GET', '/credentials', { remoteAddress: address, token: badToken });
    assert.equal(failed.status, 401, failed.body);
  }
}

/** Sends `count` requests from a blocked address, alternating a bad and a valid token, and checks that each gets 429. */
async function flood(t: TestVault, address: string, count: number, validToken: string): Promise<void> {
  for (let start = 0; start < count; start += floodConcurrency) {
    const responses = await Promise.all(
      Array.from({ length: Math.min(floodConcurrency, count - start) }, (_, index) =>
        call(t.app, 'GET', '/credentials', { remoteAddress: address, token: index % 2 === 0 ? badToken : validToken }),
      ),
    );
    for (const response of responses) assert.equal(response.status, 429, response.body);
  }
  await t.vault.audit.settled();
}

for (const dialect of await testDialects()) {
  describe(`audit of rate-limited requests on ${dialect}`, () => {
    let t: TestVault;
    let reader: string;

    before(async () => {
      t = await openTestVault(dialect, { env: { AEGIS_AUTH_FAILURE_LIMIT: String(limit) } });
      reader = await tokenWith(t, 'flood-reader', ['credentials:read']);
    });
    after(async () => destroyTestVault(t));

    it('writes one entry during a burst', async () => {
      await block(t, attacker);
      await flood(t, attacker, 1_000, reader);
      t.clock.advanceMs(5_000);
      await flood(t, attacker, 1_000, reader);

      const rows = await rateLimitRows(t, attacker);
      assert.equal(rows.length, 1);
      assert.deepEqual(rows[0]!.details, { rejected_requests: 1, blocked_until: '2026-06-01T12:01:00.000Z' });
      assert.equal(new Date(rows[0]!.timestamp).toISOString(), '2026-06-01T12:00:00.000Z', 'the entry is written when the block starts');
      assert.equal(rows[0]!.target, 'GET /credentials');
    });

    it('bounds a concurrent burst', async () => {
      // Sent at once, all the requests pass the limiter before any token lookup has failed.
      const address = '203.0.113.23';
      const responses = await Promise.all(Array.from({ length: 200 }, () => call(t.app, 'GET', '/credentials', { remoteAddress: address, token: badToken })));
      await t.vault.audit.settled();

      const statuses = responses.map((response) => response.status);
      assert.equal(statuses.filter((status) => status === 401).length, limit);
      assert.equal(statuses.filter((status) => status === 429).length, 200 - limit);
      const entries = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('error_message').where('ip_address', '=', address).execute();
      assert.equal(entries.length, limit + 1);
    });

    it('counts a second address separately', async () => {
      t.clock.advanceMs(10_000);
      await block(t, otherAttacker);
      await flood(t, otherAttacker, 300, reader);

      const rows = await rateLimitRows(t, otherAttacker);
      assert.equal(rows.length, 1);
      assert.deepEqual(rows[0]!.details, { rejected_requests: 1, blocked_until: '2026-06-01T12:01:15.000Z' });
      assert.equal((await rateLimitRows(t, attacker)).length, 1);
    });

    it('writes the count when the window ends', async () => {
      // The first attacker's window ended at 12:01:00; the other one's ends at 12:01:15.
      t.clock.set('2026-06-01T12:01:05.000Z');
      const allowed = await call(t.app, 'GET', '/credentials', { remoteAddress: attacker, token: reader });
      assert.equal(allowed.status, 200, allowed.body);
      await t.vault.audit.settled();

      const rows = await rateLimitRows(t, attacker);
      assert.equal(rows.length, 2);
      const count = rows[1]!;
      assert.deepEqual(count.details, {
        rejected_requests: 1_999,
        first_rejected_at: '2026-06-01T12:00:00.000Z',
        last_rejected_at: '2026-06-01T12:00:05.000Z',
        blocked_until: '2026-06-01T12:01:00.000Z',
        network: attacker,
      });
      assert.equal(count.action, 'authenticate');
      assert.equal(count.actor, 'anonymous');
      assert.equal(count.credential_name, '*');
      assert.equal(Boolean(count.success), false);
      const total = rows.reduce((sum, row) => sum + row.details.rejected_requests, 0);
      assert.equal(total, 2_000, 'the entries add up to every 429 sent');
      assert.equal((await rateLimitRows(t, otherAttacker)).length, 1, 'the other window is still open');
    });

    it('keeps token values out of entries', async () => {
      const rows = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().execute();
      const text = JSON.stringify(rows);
      assert.equal(text.includes(badToken), false);
      assert.equal(text.includes(reader), false);
    });

    it('writes a pending count at shutdown', async () => {
      const exitCode = await new Promise<number>((resolve) => {
        createShutdown({ app: t.app, vault: t.vault, log: t.vault.log, timeoutSeconds: 30, exit: resolve })('SIGTERM');
      });
      assert.equal(exitCode, 0);

      t = await openTestVault(dialect, { clock: t.clock, reuse: { dir: t.dir, ...(t.env.AEGIS_DATABASE_SCHEMA ? { schema: t.env.AEGIS_DATABASE_SCHEMA } : {}) } });
      const rows = await rateLimitRows(t, otherAttacker);
      assert.equal(rows.length, 2);
      assert.deepEqual(rows[1]!.details, {
        rejected_requests: 299,
        first_rejected_at: '2026-06-01T12:00:15.000Z',
        last_rejected_at: '2026-06-01T12:00:15.000Z',
        blocked_until: '2026-06-01T12:01:05.000Z',
        network: otherAttacker,
      });
    });

    it('keeps the chain verifiable', async () => {
      const verdict = await verifyAuditChain(t.vault.db.kysely, t.vault.keyring);
      assert.equal(verdict.problem, null);
      assert.equal(verdict.ok, true);
    });
  });

  describe(`flush timer of rate-limited requests on ${dialect}`, () => {
    let t: TestVault;

    before(async () => {
      // Only setInterval is replaced, before the app creates its flush timer. Other timers run as usual.
      mock.timers.enable({ apis: ['setInterval'] });
      t = await openTestVault(dialect, { env: { AEGIS_AUTH_FAILURE_LIMIT: String(limit) } });
    });
    after(async () => {
      await destroyTestVault(t);
      mock.timers.reset();
    });

    it('writes the count of an idle address', async () => {
      const address = '2001:db8:41:7::9';
      await block(t, address);
      await flood(t, address, 100, badToken);
      t.clock.advanceMs(60_000);
      mock.timers.tick(10_000);
      await t.vault.audit.settled();

      const rows = await rateLimitRows(t, address);
      assert.equal(rows.length, 2);
      assert.equal(rows[1]!.details.rejected_requests, 99);
      assert.equal(rows[1]!.details.network, '2001:db8:41:7::/64');
    });
  });
}
