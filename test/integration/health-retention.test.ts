import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { insertPassedCheck } from '../../src/health/health-checks.repository.js';
import { testDialects } from '../helpers/databases.js';
import { setupCaller } from '../helpers/health-fixtures.js';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const dayMs = 86_400_000;

for (const dialect of await testDialects()) {
  describe(`health check retention on ${dialect}`, () => {
    let t: TestVault;
    const ids = new Map<string, string>();

    /** Stores a passed check of `name` taken `daysAgo` days before the test clock's time. */
    async function checkedDaysAgo(name: string, daysAgo: number): Promise<void> {
      const checkedAt = new Date(t.clock.now().getTime() - daysAgo * dayMs).toISOString();
      await insertPassedCheck(t.vault.db.kysely, ids.get(name)!, checkedAt, 5, {});
    }

    async function checkAges(name: string): Promise<number[]> {
      const rows = await t.vault.db.kysely.selectFrom('aegis_health_checks').select('checked_at').where('credential_id', '=', ids.get(name)!).execute();
      return rows.map((row) => Math.round((t.clock.now().getTime() - new Date(row.checked_at).getTime()) / dayMs)).sort((a, b) => a - b);
    }

    before(async () => {
      t = await openTestVault(dialect);
      // More credentials than one statement covers, so the credentials with checks are on a later page.
      for (let index = 0; index < 201; index += 1) {
        await t.vault.registry.create(setupCaller, { name: `filler/${index}`, credential_type: 'apiKey', provider: 'api' });
      }
      for (const name of ['checks/recent', 'checks/stale', 'checks/two-old']) {
        const created = await t.vault.registry.create(setupCaller, { name, credential_type: 'apiKey', provider: 'api' });
        ids.set(name, created.id);
      }
    });
    after(async () => destroyTestVault(t));

    it('keeps each credential newest check', async () => {
      await checkedDaysAgo('checks/recent', 100);
      await checkedDaysAgo('checks/recent', 95);
      await checkedDaysAgo('checks/recent', 1);
      await checkedDaysAgo('checks/stale', 100);
      await checkedDaysAgo('checks/two-old', 120);
      await checkedDaysAgo('checks/two-old', 100);

      assert.equal(await t.vault.health.retention(), 3);
      assert.deepEqual(await checkAges('checks/recent'), [1]);
      assert.deepEqual(await checkAges('checks/stale'), [100]);
      assert.deepEqual(await checkAges('checks/two-old'), [100]);
      assert.equal(await t.vault.health.retention(), 0);
    });

    it('runs in the retention job', async () => {
      await checkedDaysAgo('checks/recent', 91);
      await t.vault.scheduler.tick(t.clock.now());
      t.clock.set(new Date(t.clock.now().getTime() + dayMs).toISOString().slice(0, 10) + 'T03:15:00.000Z');
      await t.vault.scheduler.tick(t.clock.now());

      // The tick runs the hourly health checks too, which may add a check of age 0.
      const ages = await checkAges('checks/recent');
      assert.ok(ages.includes(2), `ages ${ages.join(', ')}`);
      assert.deepEqual(ages.filter((age) => age > 90), []);
    });
  });
}
