import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InsertQueryNode, sql, TableNode, UpdateQueryNode, type KyselyPlugin, type QueryId, type RootOperationNode } from 'kysely';
import { currentMasterKeyId } from '../../src/crypto/master-keys.repository.js';
import { openDatabase } from '../../src/db/database.js';
import { acquireLease } from '../../src/leases/leases.repository.js';
import type { ProviderAdapter } from '../../src/providers/adapter.js';
import { insertVersion } from '../../src/registry/versions.repository.js';
import { recoverRotations } from '../../src/rotation/recovery.js';
import { rotationLeaseName } from '../../src/rotation/rotation.engine.js';
import { testDialects } from '../helpers/databases.js';
import { rotationDepsOn, VersionValueReads } from '../helpers/rotation-deps.js';
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

/** Reads API_KEY from a `.env` file. */
function fileValue(file: string): string | undefined {
  const line = fs.readFileSync(file, 'utf8').split('\n').find((text) => text.startsWith('API_KEY='));
  return line?.slice('API_KEY='.length);
}

/**
 * Leaves the credential as a rollback killed after its provider write leaves it: the file contains the
 * rollback's target value, the credential is `rotating`, and its lease belongs to a stopped process.
 */
async function leaveKilledRollback(t: TestVault, credential: { file: string; id: string }, targetValue: string): Promise<void> {
  fs.writeFileSync(credential.file, `API_KEY=${targetValue}\n`);
  await t.vault.db.kysely.updateTable('aegis_credentials').set({ status: 'rotating' }).where('id', '=', credential.id).execute();
  const stopped = spawnSync(process.execPath, ['-e', '']);
  assert.equal(stopped.status, 0);
  const lease = await acquireLease(t.vault.db.kysely, rotationLeaseName(credential.id), `${os.hostname()}:${stopped.pid}:abcdef`, 60_000, t.clock.now());
  assert.ok(lease);
}

/**
 * Leaves a killed rollback of the credential to `targetValue`, recovers it, and checks that the file
 * contains `currentValue` again and that the credential's stored and shown status is `expected`.
 */
async function recoverKilledRollback(t: TestVault, name: string, credential: { file: string; id: string }, values: { targetValue: string; currentValue: string | undefined }, expected: string): Promise<void> {
  await leaveKilledRollback(t, credential, values.targetValue);

  const report = await t.vault.rotation.recover();
  assert.deepEqual(report.restored, [name]);
  assert.equal(fileValue(credential.file), values.currentValue);
  const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('id', '=', credential.id).executeTakeFirstOrThrow();
  assert.equal(row.status, expected);
  const detail = await call(t.app, 'GET', `/credentials/${name}`, { token: t.adminToken });
  assert.equal(detail.json.credential_details.status, expected, detail.body);
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

/**
 * Stalls the env adapter's first write for one credential after it lands, until `release` is called,
 * then fails it with `failure` when one is given. `inSetValue` settles once the write has landed.
 */
function stallFirstWrite(t: TestVault, credentialId: string, failure?: string): { inSetValue: Promise<void>; release: () => void; undo: () => void } {
  let entered = () => {};
  const inSetValue = new Promise<void>((resolve) => (entered = resolve));
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  let stalled = false;
  const undo = wrapSetValue(t, credentialId, async () => {
    if (stalled) return;
    stalled = true;
    entered();
    await released;
    if (failure !== undefined) throw new Error(failure);
  });
  return { inSetValue, release: () => release(), undo };
}

/** Runs `action` once, before the keyring first decrypts a value of one credential. Returns a function that undoes the wrap. */
function beforeFirstOpen(t: TestVault, credentialId: string, action: () => Promise<void>): () => void {
  const keyring = t.vault.keyring;
  const open = keyring.open.bind(keyring);
  let ran = false;
  keyring.open = async (envelope, context, db) => {
    if (!ran && context.credentialId === credentialId) {
      ran = true;
      await action();
    }
    return open(envelope, context, db);
  };
  return () => {
    keyring.open = open;
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
    return await recoverRotations(rotationDepsOn(t, { ...db, kysely: db.kysely.withPlugin(plugin) }, 'leader-process'));
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

    // Each case makes the credential's state give the status, then leaves a killed rollback to recover.
    const statusCases: Array<{ expected: string; setUp: (name: string, file: string) => Promise<void> }> = [
      { expected: 'active', setUp: async () => {} },
      {
        expected: 'expiring',
        setUp: async (name) => {
          const expiresAt = new Date(t.clock.now().getTime() + 24 * 3_600_000).toISOString();
          const patched = await call(t.app, 'PATCH', `/credentials/${name}`, { token: t.adminToken, body: { expires_at: expiresAt } });
          assert.equal(patched.status, 200, patched.body);
        },
      },
      {
        expected: 'expired',
        setUp: async (name) => {
          const expiresAt = new Date(t.clock.now().getTime() - 3_600_000).toISOString();
          const patched = await call(t.app, 'PATCH', `/credentials/${name}`, { token: t.adminToken, body: { expires_at: expiresAt } });
          assert.equal(patched.status, 200, patched.body);
        },
      },
      {
        expected: 'failed',
        setUp: async (name, file) => {
          fs.writeFileSync(file, 'API_KEY=changed-outside-aegis\n');
          const tested = await call(t.app, 'POST', `/credentials/${name}/test`, { token: t.adminToken });
          assert.equal(tested.status, 200, tested.body);
          assert.equal(tested.json.status, 'unhealthy', tested.body);
        },
      },
    ];
    for (const { expected, setUp } of statusCases) {
      it(`restores ${expected} after killed rollback`, async () => {
        const name = `svc-killed-${expected}`;
        const credential = await createEnvCredential(t, name, `initial-value-${expected}`);
        const rotated = await call(t.app, 'POST', `/credentials/${name}/rotate`, { token: t.adminToken, body: {} });
        assert.equal(rotated.status, 200, rotated.body);
        const rotatedValue = fileValue(credential.file);
        await setUp(name, credential.file);
        await recoverKilledRollback(t, name, credential, { targetValue: `initial-value-${expected}`, currentValue: rotatedValue }, expected);
      });
    }

    // Each case fails a rotation, so the credential is `failed` while its health checks pass, and then
    // does what may follow before a rollback of it is killed.
    const failedRotationCases: Array<{ title: string; expected: string; afterFailure: (name: string) => Promise<void> }> = [
      { title: 'failed rotation survives recovery', expected: 'failed', afterFailure: async () => {} },
      {
        title: 'later health check clears failure',
        expected: 'active',
        afterFailure: async (name) => {
          const tested = await call(t.app, 'POST', `/credentials/${name}/test`, { token: t.adminToken });
          assert.equal(tested.json.status, 'healthy', tested.body);
        },
      },
      {
        // A provider that skips its test gives `unknown`, which leaves the status as it was.
        title: 'unknown health check keeps failure',
        expected: 'failed',
        afterFailure: async (name) => {
          const adapter = t.vault.adapters.env as { test: NonNullable<ProviderAdapter['test']> };
          const original = adapter.test;
          adapter.test = async () => ({ healthy: false, skipped: true, responseTimeMs: 0, details: {}, error: 'no test configured' });
          try {
            const tested = await call(t.app, 'POST', `/credentials/${name}/test`, { token: t.adminToken });
            assert.equal(tested.json.status, 'unknown', tested.body);
          } finally {
            adapter.test = original;
          }
          const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('name', '=', name).executeTakeFirstOrThrow();
          assert.equal(row.status, 'failed');
        },
      },
      {
        title: 'later rotation clears failure',
        expected: 'active',
        afterFailure: async (name) => {
          const rotated = await call(t.app, 'POST', `/credentials/${name}/rotate`, { token: t.adminToken, body: {} });
          assert.equal(rotated.status, 200, rotated.body);
        },
      },
    ];
    for (const [index, { title, expected, afterFailure }] of failedRotationCases.entries()) {
      it(title, async () => {
        const name = `svc-failed-rotation-${index}`;
        const credential = await createEnvCredential(t, name, `initial-value-failed-${index}`);
        const rotated = await call(t.app, 'POST', `/credentials/${name}/rotate`, { token: t.adminToken, body: {} });
        assert.equal(rotated.status, 200, rotated.body);

        // A missing file fails the rotation without changing the provider, and the file comes back unchanged.
        const moved = `${credential.file}.moved`;
        fs.renameSync(credential.file, moved);
        const failed = await call(t.app, 'POST', `/credentials/${name}/rotate`, { token: t.adminToken, body: {} });
        fs.renameSync(moved, credential.file);
        assert.equal(failed.status, 502, failed.body);
        assert.equal(failed.json.provider_state, 'unchanged', failed.body);
        const afterRotation = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('id', '=', credential.id).executeTakeFirstOrThrow();
        assert.equal(afterRotation.status, 'failed');

        t.clock.advanceMs(60_000);
        await afterFailure(name);
        const currentValue = fileValue(credential.file);
        await recoverKilledRollback(t, name, credential, { targetValue: `initial-value-failed-${index}`, currentValue }, expected);
      });
    }

    it('restores failed after killed rotation', async () => {
      const credential = await createEnvCredential(t, 'svc-killed-rotation', 'initial-value-rotation');
      fs.writeFileSync(credential.file, 'API_KEY=changed-outside-aegis\n');
      const tested = await call(t.app, 'POST', '/credentials/svc-killed-rotation/test', { token: t.adminToken });
      assert.equal(tested.json.status, 'unhealthy', tested.body);

      // The rotation stops before its provider write until its lease has expired, as a killed one would.
      // Then its write fails, so it puts the current value back and records nothing, having lost the lease.
      const adapter = t.vault.adapters.env as { setValue: NonNullable<ProviderAdapter['setValue']> };
      const original = adapter.setValue;
      let entered = () => {};
      const inSetValue = new Promise<void>((resolve) => (entered = resolve));
      let release = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      let stalled = false;
      adapter.setValue = async (target, value, previous) => {
        if (target.id !== credential.id || stalled) return original(target, value, previous);
        stalled = true;
        entered();
        await released;
        throw new Error('the write was cut off');
      };
      try {
        const rotation = call(t.app, 'POST', '/credentials/svc-killed-rotation/rotate', { token: t.adminToken, body: { value: 'next-value-rotation' } });
        await inSetValue;
        t.clock.advanceMs(t.config.rotationLeaseSeconds * 1000 + 1000);

        const report = await t.vault.rotation.recover();
        assert.deepEqual(report.restored, ['svc-killed-rotation']);
        release();
        const stopped = await rotation;
        assert.equal(stopped.status, 409, stopped.body);
        assert.equal(stopped.json.code, 'lease_lost');
      } finally {
        release();
        adapter.setValue = original;
      }
      assert.equal(fileValue(credential.file), 'initial-value-rotation');
      const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('id', '=', credential.id).executeTakeFirstOrThrow();
      assert.equal(row.status, 'failed');
    });

    it('completed rotation moves expiry', async () => {
      const credential = await createEnvCredential(t, 'svc-completed', 'initial-value-completed');
      const expiresAt = new Date(t.clock.now().getTime() + 2 * 3_600_000).toISOString();
      const patched = await call(t.app, 'PATCH', '/credentials/svc-completed', { token: t.adminToken, body: { expires_at: expiresAt, value_policy: { validity_hours: 48 } } });
      assert.equal(patched.status, 200, patched.body);
      await t.vault.db.kysely.updateTable('aegis_credentials').set({ alert_sent: true }).where('id', '=', credential.id).execute();

      // The rotation's provider write lands, then the rotation stops until its lease has expired, as a
      // killed one would, so recovery finds the new value at the provider and completes it.
      const { inSetValue, release, undo } = stallFirstWrite(t, credential.id);
      let recoveredAt: Date;
      try {
        const rotation = call(t.app, 'POST', '/credentials/svc-completed/rotate', { token: t.adminToken, body: { value: 'next-value-completed' } });
        await inSetValue;
        t.clock.advanceMs(t.config.rotationLeaseSeconds * 1000 + 1000);
        recoveredAt = t.clock.now();

        const report = await t.vault.rotation.recover();
        assert.deepEqual(report.completed, ['svc-completed']);
        release();
        const stopped = await rotation;
        assert.equal(stopped.status, 409, stopped.body);
        assert.equal(stopped.json.code, 'lease_lost');
      } finally {
        release();
        undo();
      }
      assert.equal(fileValue(credential.file), 'next-value-completed');
      const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select(['status', 'expires_at', 'alert_sent']).where('id', '=', credential.id).executeTakeFirstOrThrow();
      assert.equal(row.status, 'active');
      assert.equal(new Date(row.expires_at as string | Date).toISOString(), new Date(recoveredAt.getTime() + 48 * 3_600_000).toISOString());
      assert.equal(Boolean(row.alert_sent), false);
    });

    it('stopped rotation keeps recovered value', async () => {
      const credential = await createEnvCredential(t, 'svc-overtaken', 'initial-value-overtaken');
      // The rotation's provider write lands and stalls until recovery has completed the rotation in
      // another process, then fails, as a write whose reload command exits non-zero does.
      const { inSetValue, release, undo } = stallFirstWrite(t, credential.id, 'the reload command failed');
      try {
        const rotation = call(t.app, 'POST', '/credentials/svc-overtaken/rotate', { token: t.adminToken, body: { value: 'next-value-overtaken' } });
        await inSetValue;
        t.clock.advanceMs(t.config.rotationLeaseSeconds * 1000 + 1000);
        const report = await t.vault.rotation.recover();
        assert.deepEqual(report.completed, ['svc-overtaken']);
        release();
        const stopped = await rotation;
        assert.equal(stopped.status, 409, stopped.body);
        assert.equal(stopped.json.code, 'lease_lost');
      } finally {
        release();
        undo();
      }
      assert.equal(fileValue(credential.file), 'next-value-overtaken');
      const value = await call(t.app, 'GET', '/credentials/svc-overtaken/value', { token: t.adminToken });
      assert.equal(value.json.value, 'next-value-overtaken', value.body);
    });

    it('recovery reads only two versions', async () => {
      const credential = await createEnvCredential(t, 'svc-many', 'initial-value-many');
      for (let index = 0; index < 20; index += 1) {
        const rotated = await call(t.app, 'POST', '/credentials/svc-many/rotate', { token: t.adminToken, body: {} });
        assert.equal(rotated.status, 200, rotated.body);
      }
      // The state a rotation killed after its provider write leaves: pending version 22, whose value the file
      // contains, and the credential `rotating`.
      const db = t.vault.db.kysely;
      const keyId = await currentMasterKeyId(db);
      const sealed = await t.vault.keyring.seal('pending-value-many', { credentialId: credential.id, version: 22 }, keyId, db);
      await insertVersion(db, {
        id: crypto.randomUUID(),
        credentialId: credential.id,
        version: 22,
        encryptedValue: sealed,
        encryptionKeyId: keyId,
        providerCredentialId: null,
        createdAt: t.clock.now().toISOString(),
        createdBy: 'recovery-test',
        reason: null,
        isCurrent: false,
        state: 'pending',
      });
      await leaveKilledRollback(t, credential, 'pending-value-many');

      const reads = new VersionValueReads();
      const report = await recoverRotations(rotationDepsOn(t, { ...t.vault.db, kysely: db.withPlugin(reads) }, 'recovery-test-process'));
      assert.deepEqual(report.completed, ['svc-many']);
      assert.equal(reads.count, 2);
      const value = await call(t.app, 'GET', '/credentials/svc-many/value', { token: t.adminToken });
      assert.equal(value.json.version, 22, value.body);
      assert.equal(value.json.value, 'pending-value-many');
    });

    it('failed rollback keeps a newer status', async () => {
      const credential = await createEnvCredential(t, 'svc-checked', 'initial-value-checked');
      const rotated = await call(t.app, 'POST', '/credentials/svc-checked/rotate', { token: t.adminToken, body: {} });
      assert.equal(rotated.status, 200, rotated.body);
      const rotatedValue = fileValue(credential.file)!;

      // A failed health check commits while the rollback decrypts the versions' values, which is after it
      // read the credential and before it marks it rotating. Health checks take no lease.
      let checked = false;
      const undoOpen = beforeFirstOpen(t, credential.id, async () => {
        checked = true;
        fs.writeFileSync(credential.file, 'API_KEY=changed-outside-aegis\n');
        const tested = await call(t.app, 'POST', '/credentials/svc-checked/test', { token: t.adminToken });
        assert.equal(tested.json.status, 'unhealthy', tested.body);
        fs.writeFileSync(credential.file, `API_KEY=${rotatedValue}\n`);
      });
      // The first write to the provider fails after it landed, so the rollback puts the current value
      // back and does not commit.
      let failed = false;
      const undo = wrapSetValue(t, credential.id, async () => {
        if (failed) return;
        failed = true;
        throw new Error('the reload command failed');
      });
      try {
        const rolledBack = await call(t.app, 'POST', '/credentials/svc-checked/rollback', { token: t.adminToken, body: {} });
        assert.equal(rolledBack.status, 502, rolledBack.body);
        assert.equal(rolledBack.json.code, 'rollback_failed');
      } finally {
        undo();
        undoOpen();
      }

      assert.ok(checked, 'the rollback decrypted no value of svc-checked');
      assert.equal(fileValue(credential.file), rotatedValue);
      const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('id', '=', credential.id).executeTakeFirstOrThrow();
      assert.equal(row.status, 'failed');
    });

    it('alerts each unrestored rollback', async () => {
      const credential = await createEnvCredential(t, 'svc-unrestored', 'initial-value-unrestored');
      const rotated = await call(t.app, 'POST', '/credentials/svc-unrestored/rotate', { token: t.adminToken, body: {} });
      assert.equal(rotated.status, 200, rotated.body);
      const adapter = t.vault.adapters.env as { setValue: NonNullable<ProviderAdapter['setValue']> };
      const original = adapter.setValue;
      adapter.setValue = async (target, value, previous) => {
        if (target.id === credential.id) throw new Error('the .env file is read-only');
        return original(target, value, previous);
      };
      try {
        // Two rollbacks killed after their provider write, each at a later time, whose value cannot be put back.
        for (let round = 0; round < 2; round += 1) {
          t.clock.advanceMs(3_600_000);
          await leaveKilledRollback(t, credential, 'initial-value-unrestored');
          const report = await t.vault.rotation.recover();
          assert.deepEqual(report.failed, ['svc-unrestored']);
        }
      } finally {
        adapter.setValue = original;
      }

      const alerts = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').select('condition_key').where('credential_name', '=', 'svc-unrestored').where('alert_type', '=', 'rotation_failed').execute();
      assert.equal(alerts.length, 2, JSON.stringify(alerts));
    });

    it('rollback without its lease skips provider', async () => {
      const credential = await createEnvCredential(t, 'svc-lost', 'initial-value-lost');
      const rotated = await call(t.app, 'POST', '/credentials/svc-lost/rotate', { token: t.adminToken, body: {} });
      assert.equal(rotated.status, 200, rotated.body);
      const rotatedValue = fileValue(credential.file)!;

      // Another process takes the lease over while the rollback decrypts the versions' values, before it
      // marks the credential rotating.
      let takenOver = false;
      const undoOpen = beforeFirstOpen(t, credential.id, async () => {
        takenOver = true;
        await t.vault.db.kysely
          .updateTable('aegis_leases')
          .set({ owner: 'another-host:1:taken', fencing_token: sql`fencing_token + 1` })
          .where('name', '=', rotationLeaseName(credential.id))
          .execute();
      });
      let writes = 0;
      const undo = wrapSetValue(t, credential.id, async () => {
        writes += 1;
      });
      try {
        const rolledBack = await call(t.app, 'POST', '/credentials/svc-lost/rollback', { token: t.adminToken, body: {} });
        assert.equal(rolledBack.status, 409, rolledBack.body);
        assert.equal(rolledBack.json.code, 'lease_lost');
      } finally {
        undo();
        undoOpen();
      }

      assert.ok(takenOver, 'the rollback decrypted no value of svc-lost');
      assert.equal(writes, 0);
      assert.equal(fileValue(credential.file), rotatedValue);
      const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('id', '=', credential.id).executeTakeFirstOrThrow();
      assert.equal(row.status, 'active');
    });

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
