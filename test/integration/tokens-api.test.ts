import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

for (const dialect of await testDialects()) {
  describe(`GET /tokens on ${dialect}`, () => {
    let t: TestVault;

    before(async () => {
      t = await openTestVault(dialect);
      // Tokens created in the same millisecond are ordered by their random ids, so each gets its own second.
      for (let index = 1; index <= 4; index += 1) {
        t.clock.advanceMs(1_000);
        await tokenWith(t, `agent-${index}`, ['credentials:read']);
      }
    });
    after(async () => destroyTestVault(t));

    it('pages tokens oldest first', async () => {
      const page = await call(t.app, 'GET', '/tokens?limit=2&offset=1', { token: t.adminToken });
      assert.equal(page.status, 200, page.body);
      assert.equal(page.json.total, 5);
      assert.deepEqual(page.json.tokens.map((token: { actor: string }) => token.actor), ['agent-1', 'agent-2']);
      assert.ok(!page.body.includes('secret_hash'), page.body);
    });

    it('lists 50 by default', async () => {
      const all = await call(t.app, 'GET', '/tokens', { token: t.adminToken });
      assert.equal(all.status, 200, all.body);
      assert.equal(all.json.total, 5);
      assert.deepEqual(all.json.tokens.map((token: { actor: string }) => token.actor), ['admin', 'agent-1', 'agent-2', 'agent-3', 'agent-4']);
    });

    it('rejects a limit over 1000', async () => {
      const tooMany = await call(t.app, 'GET', '/tokens?limit=1001', { token: t.adminToken });
      assert.equal(tooMany.status, 400, tooMany.body);
      assert.equal(tooMany.json.field, 'querystring.limit');
    });
  });
}
