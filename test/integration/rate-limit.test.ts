import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { rateLimitRows } from '../helpers/rate-limit.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const attacker = '203.0.113.7';
const bystander = '203.0.113.8';
const windowSeconds = 60;

for (const dialect of await testDialects()) {
  describe(`auth rate limit on ${dialect}`, () => {
    let t: TestVault;
    let reader: string;

    before(async () => {
      t = await openTestVault(dialect, { env: { AEGIS_AUTH_FAILURE_LIMIT: '3' } });
      reader = await tokenWith(t, 'limit-reader', ['credentials:read']);
    });
    after(async () => destroyTestVault(t));

    it('blocks after three failures', async () => {
      const failures = [
        await call(t.app, 'GET', '/credentials', { remoteAddress: attacker }),
        await call(t.app, 'GET', '/credentials', { remoteAddress: attacker, token: 'garbage' }),
        await call(t.app, 'GET', '/credentials', { remoteAddress: attacker, token: `${reader.slice(0, -4)}AAAA` }),
      ];
      for (const failure of failures) assert.equal(failure.status, 401, failure.body);

      const blocked = await call(t.app, 'GET', '/credentials', { remoteAddress: attacker, token: reader });
      assert.equal(blocked.status, 429, blocked.body);
      assert.equal(blocked.headers['retry-after'], String(windowSeconds));
      assert.match(String(blocked.headers['content-type']), /^application\/problem\+json/);
      assert.equal(blocked.json.code, 'rate_limited');
      assert.equal(blocked.json.status, 429);
      assert.equal(blocked.json.retry_after_seconds, windowSeconds);

      const rows = await rateLimitRows(t, attacker);
      assert.equal(rows.length, 1);
      assert.equal(Boolean(rows[0]!.success), false);
      assert.equal(rows[0]!.ip_address, attacker);
    });

    it('leaves other addresses alone', async () => {
      const other = await call(t.app, 'GET', '/credentials', { remoteAddress: bystander, token: reader });
      assert.equal(other.status, 200, other.body);
      assert.equal((await rateLimitRows(t, bystander)).length, 0);
    });

    it('counts down retry-after', async () => {
      t.clock.advanceMs(45_000);
      const blocked = await call(t.app, 'GET', '/credentials', { remoteAddress: attacker, token: reader });
      assert.equal(blocked.status, 429);
      assert.equal(blocked.headers['retry-after'], '15');
      assert.equal((await rateLimitRows(t, attacker)).length, 1, 'a later 429 of the window is counted, not written');
    });

    it('unblocks after the window', async () => {
      t.clock.advanceMs(15_000);
      const allowed = await call(t.app, 'GET', '/credentials', { remoteAddress: attacker, token: reader });
      assert.equal(allowed.status, 200, allowed.body);

      await t.vault.audit.settled();
      const rows = await rateLimitRows(t, attacker);
      assert.equal(rows.length, 2, 'the ended window writes its count');
      assert.equal(rows[1]!.details.rejected_requests, 1);
    });

    it('starts a fresh count', async () => {
      for (let attempt = 0; attempt < 2; attempt += 1) {
        assert.equal((await call(t.app, 'GET', '/credentials', { remoteAddress: attacker })).status, 401);
      }
      assert.equal((await call(t.app, 'GET', '/credentials', { remoteAddress: attacker, token: reader })).status, 200);
      assert.equal((await call(t.app, 'GET', '/credentials', { remoteAddress: attacker })).status, 401);
      assert.equal((await call(t.app, 'GET', '/credentials', { remoteAddress: attacker, token: reader })).status, 429);
    });

    it('ignores missing scopes', async () => {
      const address = '203.0.113.9';
      for (let attempt = 0; attempt < 5; attempt += 1) {
        const denied = await call(t.app, 'GET', '/audit/log', { remoteAddress: address, token: reader });
        assert.equal(denied.status, 403, denied.body);
      }
      assert.equal((await call(t.app, 'GET', '/credentials', { remoteAddress: address, token: reader })).status, 200);
    });

    it('counts an IPv6 /64 together', async () => {
      for (const address of ['2001:db8:7:7::1', '2001:db8:7:7::2', '2001:db8:7:7:ffff:1:2:3']) {
        assert.equal((await call(t.app, 'GET', '/credentials', { remoteAddress: address })).status, 401, address);
      }

      const sameNetwork = await call(t.app, 'GET', '/credentials', { remoteAddress: '2001:0db8:0007:0007::4', token: reader });
      assert.equal(sameNetwork.status, 429, sameNetwork.body);
      assert.equal((await rateLimitRows(t, '2001:0db8:0007:0007::4')).length, 1, 'the 429 is audited with the full address');
      const otherNetwork = await call(t.app, 'GET', '/credentials', { remoteAddress: '2001:db8:7:8::1', token: reader });
      assert.equal(otherNetwork.status, 200, otherNetwork.body);
    });

    it('counts IPv4-mapped addresses as IPv4', async () => {
      const address = '203.0.113.50';
      assert.equal((await call(t.app, 'GET', '/credentials', { remoteAddress: address })).status, 401);
      assert.equal((await call(t.app, 'GET', '/credentials', { remoteAddress: `::ffff:${address}` })).status, 401);
      assert.equal((await call(t.app, 'GET', '/credentials', { remoteAddress: address })).status, 401);

      const blocked = await call(t.app, 'GET', '/credentials', { remoteAddress: `::ffff:${address}`, token: reader });
      assert.equal(blocked.status, 429, blocked.body);
    });
  });
}
