import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { setupCaller } from '../helpers/health-fixtures.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

for (const dialect of await testDialects()) {
  describe(`credential search and sort on ${dialect}`, () => {
    let t: TestVault;

    /** Sorts names by UTF-16 code unit, for results whose database order depends on the collation. */
    function unordered(list: string[]): string[] {
      return [...list].sort();
    }

    async function names(url: string, token = t.adminToken): Promise<string[]> {
      const response = await call(t.app, 'GET', url, { token });
      assert.equal(response.status, 200, response.body);
      return response.json.credentials.map((credential: { name: string }) => credential.name);
    }

    before(async () => {
      t = await openTestVault(dialect);
      const create = (name: string, settings: Record<string, unknown> = {}) =>
        t.vault.registry.create(setupCaller, { name, credential_type: 'httpHeaderAuth', provider: 'api', ...settings });
      await create('Billing.API', { expires_at: '2026-09-01T00:00:00.000Z', tags: ['pay'] });
      await create('billing_key', { expires_at: '2026-07-01T00:00:00.000Z', provider: 'n8n', credential_type: 'n8nApiKey' });
      await create('billingXkey');
      await create('ledger-50pct', { expires_at: '2026-08-01T00:00:00.000Z', tags: ['pay'] });
      await create('ledger-50', { credential_type: 'bearer' });
      await create('search/zeta', { provider: 'n8n' });
    });
    after(async () => {
      await destroyTestVault(t);
    });

    it('search ignores case', async () => {
      assert.deepEqual(unordered(await names('/credentials?search=BILLING')), ['Billing.API', 'billingXkey', 'billing_key']);
      assert.deepEqual(await names('/credentials?search=api'), ['Billing.API']);
    });

    it('underscore in search is literal', async () => {
      assert.deepEqual(await names('/credentials?search=g_k'), ['billing_key']);
      assert.deepEqual(await names('/credentials?search=_'), ['billing_key']);
    });

    it('percent in search is literal', async () => {
      assert.deepEqual(await names('/credentials?search=%25'), []);
      assert.deepEqual(await names('/credentials?search=50%25'), []);
      assert.deepEqual(await names('/credentials?search=50'), ['ledger-50', 'ledger-50pct']);
    });

    it('quote and backslash are literal', async () => {
      assert.deepEqual(await names(`/credentials?search=${encodeURIComponent("'")}`), []);
      assert.deepEqual(await names(`/credentials?search=${encodeURIComponent('\\')}`), []);
      assert.deepEqual(await names('/credentials?search=.'), ['Billing.API']);
    });

    it('totals respect the search', async () => {
      const response = await call(t.app, 'GET', '/credentials?search=billing&limit=1&offset=1', { token: t.adminToken });
      assert.equal(response.status, 200, response.body);
      assert.equal(response.json.total, 3);
      assert.equal(response.json.healthy, 3);
      assert.equal(response.json.credentials.length, 1);
    });

    it('search combines with filters', async () => {
      assert.deepEqual(await names('/credentials?search=billing&provider=n8n'), ['billing_key']);
      assert.deepEqual(await names('/credentials?search=e&tag=pay'), ['ledger-50pct']);
      const limited = await tokenWith(t, 'ledger-reader', ['credentials:read'], { namePatterns: ['ledger-*'] });
      assert.deepEqual(await names('/credentials?search=50', limited), ['ledger-50', 'ledger-50pct']);
      assert.deepEqual(await names('/credentials?search=billing', limited), []);
    });

    it('sorts with nulls last', async () => {
      const withExpiry = ['billing_key', 'ledger-50pct', 'Billing.API'];
      const without = ['billingXkey', 'ledger-50', 'search/zeta'];
      assert.deepEqual(await names('/credentials?sort=expires_at'), [...withExpiry, ...without]);
      assert.deepEqual(await names('/credentials?sort=expires_at&order=desc'), [...[...withExpiry].reverse(), ...without]);
    });

    it('sorts by text columns', async () => {
      const byProvider = await names('/credentials?sort=provider&order=desc');
      assert.deepEqual(byProvider.slice(0, 2), ['billing_key', 'search/zeta']);
      assert.deepEqual(unordered(byProvider.slice(2)), ['Billing.API', 'billingXkey', 'ledger-50', 'ledger-50pct']);
      assert.deepEqual(await names('/credentials?sort=credential_type&search=ledger'), ['ledger-50', 'ledger-50pct']);
      assert.deepEqual(await names('/credentials?sort=credential_type&order=desc&search=ledger'), ['ledger-50pct', 'ledger-50']);
      assert.deepEqual(await names('/credentials?sort=name&order=desc&search=ledger'), ['ledger-50pct', 'ledger-50']);
    });

    it('sort pages across all rows', async () => {
      assert.deepEqual(await names('/credentials?sort=expires_at&order=desc&limit=2'), ['Billing.API', 'ledger-50pct']);
      assert.deepEqual(await names('/credentials?sort=expires_at&order=desc&limit=2&offset=2'), ['billing_key', 'billingXkey']);
    });

    it('rejects invalid search and sort', async () => {
      const cases = ['search=', `search=${'a'.repeat(129)}`, 'search=%01', 'sort=status', 'sort=encrypted_value', 'order=up'];
      for (const bad of cases) {
        const response = await call(t.app, 'GET', `/credentials?${bad}`, { token: t.adminToken });
        assert.equal(response.status, 400, `${bad}: ${response.body}`);
      }
      const longest = await call(t.app, 'GET', `/credentials?search=${'a'.repeat(128)}`, { token: t.adminToken });
      assert.equal(longest.status, 200, longest.body);
    });
  });
}
