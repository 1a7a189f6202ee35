import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InsertQueryNode, TableNode, UpdateQueryNode, type KyselyPlugin, type QueryId, type RootOperationNode } from 'kysely';
import { openDatabase } from '../../src/db/database.js';
import type { ProviderAdapter } from '../../src/providers/adapter.js';
import { recoverRotations } from '../../src/rotation/recovery.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/** Writes `name.env` containing API_KEY=`value`, and creates an env credential for it. */
async function createEnvCredential(t: TestVault, name: string, value: string): Promise<{ file: string; id: string }> {
  const file = path.join(t.dir, `${name}.env`);
  fs.writeFileSync(file, `API_KEY=${value}\n`);
  const created = await call(t.app, 'POST', '/credentials', {
    token: t.adminToken,
    body: { name, credential_type: 'apiKey', provider: 'env', provider_config: { file, variable: 'API_KEY' }, value },
  });
  assert.equal(created.status, 201, created.body);
  const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', name).executeTakeFirstOrThrow();
  return { file, id: row.id };
}

/** Runs `afterSet` after each value the env adapter writes for one credential; returns a function that undoes the wrap. */
function wrapSetValue(t: TestVault, credentialId: string, afterSet: () => Promise<void>): () => void {
  const adapter = t.vault.adapters.env as { setValue: NonNullable<ProviderAdapter['setValue']> };
  const original = adapter.setValue;
  adapter.setValue = async (credential, value, previous) => {
    await original(credential, value, previous);
    if (credential.id === credentialId) await afterSet();
  };
  return () => {
    adapter.setValue = original;
  };
}

/** Tells whether a query inserts or updates a row of `aegis_leases`, as taking a lease does. */
function writesLease(node: RootOperationNode): boolean {
  const table = InsertQueryNode.is(node) ? node.into : UpdateQueryNode.is(node) ? node.table : undefined;
  return table !== undefined && TableNode.is(table) && table.table.identifier.name === 'aegis_leases';
}

/**
 * Runs the recovery pass of another process (a scheduler leader) on a connection of its own to the
 * vault's database, with `plugin` seeing each of its queries and their results. Kysely calls the plugin
 * before the query gives its connection back, so the plugin can only wait for work on another connection.
 */
async function recoverInAnotherProcess(t: TestVault, plugin: KyselyPlugin) {
  const db = await openDatabase(t.config);
  try {
    return await recoverRotations({
      db: { ...db, kysely: db.kysely.withPlugin(plugin) },
      clock: t.clock,
      keyring: t.vault.keyring,
      audit: t.vault.audit,
      log: t.vault.log,
      adapters: t.vault.adapters,
      owner: 'leader-process',
      leaseTtlMs: t.config.rotationLeaseSeconds * 1000,
      unreleasedLeases: new Map(),
      attempts: t.config.rotationAttempts,
    });
  } finally {
    await db.close();
  }
}

for (const dialect of await testDialects()) {
  describe(`rotation recovery on ${dialect}`, () => {
    let t: TestVault;

    before(async () => {
      t = await openTestVault(dialect, { reuse: { dir: fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-recovery-'))) } });
    });
    after(async () => destroyTestVault(t));

    it('skips a rotation that just finished', async () => {
      const { id } = await createEnvCredential(t, 'svc-race', 'initial-value-race');
      let entered = () => {};
      const inSetValue = new Promise<void>((resolve) => (entered = resolve));
      let release = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      const undo = wrapSetValue(t, id, async () => {
        entered();
        await released;
      });
      try {
        const rotation = call(t.app, 'POST', '/credentials/svc-race/rotate', { token: t.adminToken, body: {} });
        await inSetValue;

        // The recovery pass lists svc-race while it rotates. The rotation then commits and releases its
        // lease before the pass goes on to svc-race.
        let listedWhileRotating = false;
        let leasesTaken = 0;
        const leaseWrites = new WeakSet<QueryId>();
        const report = await recoverInAnotherProcess(t, {
          transformQuery({ node, queryId }) {
            if (writesLease(node)) leaseWrites.add(queryId);
            return node;
          },
          async transformResult({ queryId, result }) {
            if (leaseWrites.has(queryId) && result.rows.length > 0) leasesTaken += 1;
            if (!listedWhileRotating && result.rows.some((row) => row.id === id && row.status === 'rotating')) {
              listedWhileRotating = true;
              release();
              const rotated = await rotation;
              assert.equal(rotated.status, 200, rotated.body);
            }
            return result;
          },
        });

        assert.ok(listedWhileRotating, 'the recovery pass never listed svc-race as rotating');
        assert.equal(leasesTaken, 0, 'the recovery pass took the lease of a finished rotation');
        assert.deepEqual(report, { completed: [], restored: [], failed: [], skipped: [] });
      } finally {
        release();
        undo();
      }
      const patched = await call(t.app, 'PATCH', '/credentials/svc-race', { token: t.adminToken, body: { description: 'after the rotation' } });
      assert.equal(patched.status, 200, patched.body);
    });
  });
}
