import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { acquireLease, releaseLease } from '../../src/leases/leases.repository.js';
import type { ProviderAdapter } from '../../src/providers/adapter.js';
import { rollback } from '../../src/rotation/rollback.js';
import { rotationLeaseName } from '../../src/rotation/rotation.engine.js';
import { localCaller } from '../../src/tokens/caller.js';
import { runCli } from '../helpers/cli.js';
import { testDialects } from '../helpers/databases.js';
import { rotationDepsOn, VersionValueReads } from '../helpers/rotation-deps.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const otherLines = '# service settings\nDB_HOST=db.internal\n\nexport LOG_LEVEL=debug\n';

/** Writes a .env file holding `variable=value` between other lines, and creates an env credential for it. */
async function createEnvCredential(t: TestVault, name: string, value: string, file = path.join(t.dir, `${name}.env`)): Promise<{ file: string; id: string }> {
  fs.writeFileSync(file, `${otherLines}API_KEY=${value}\nTRAILING=1\n`);
  const created = await call(t.app, 'POST', '/credentials', {
    token: t.adminToken,
    body: { name, credential_type: 'apiKey', provider: 'env', provider_config: { file, variable: 'API_KEY' }, value },
  });
  assert.equal(created.status, 201, created.body);
  const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', name).executeTakeFirstOrThrow();
  return { file, id: row.id };
}

function fileValue(file: string): string | undefined {
  const line = fs.readFileSync(file, 'utf8').split('\n').find((text) => text.startsWith('API_KEY='));
  return line?.slice('API_KEY='.length);
}

async function reveal(t: TestVault, name: string): Promise<{ value: string; version: number }> {
  const response = await call(t.app, 'GET', `/credentials/${name}/value`, { token: t.adminToken });
  assert.equal(response.status, 200, response.body);
  return response.json;
}

async function versionRows(t: TestVault, credentialId: string) {
  return t.vault.db.kysely
    .selectFrom('aegis_credential_versions')
    .select(['version', 'is_current', 'state', 'reason'])
    .where('credential_id', '=', credentialId)
    .orderBy('version')
    .execute();
}

async function currentVersion(t: TestVault, credentialId: string): Promise<number> {
  const rows = await versionRows(t, credentialId);
  const current = rows.filter((row) => row.is_current === true || row.is_current === 1);
  assert.equal(current.length, 1, `expected one current version, got ${JSON.stringify(rows)}`);
  return current[0]!.version;
}

async function outboxRows(t: TestVault, credentialId: string) {
  return t.vault.db.kysely.selectFrom('aegis_alert_outbox').selectAll().where('credential_id', '=', credentialId).orderBy('created_at').execute();
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

/** Sends each change a rotation must hold back (a new value, a description, a retire and a rollback) one after another, and returns the responses. */
async function changeAll(t: TestVault, name: string) {
  const options = { token: t.adminToken };
  return [
    await call(t.app, 'PATCH', `/credentials/${name}`, { ...options, body: { value: 'patched-during-rotation' } }),
    await call(t.app, 'PATCH', `/credentials/${name}`, { ...options, body: { description: 'during' } }),
    await call(t.app, 'DELETE', `/credentials/${name}`, options),
    await call(t.app, 'POST', `/credentials/${name}/rollback`, { ...options, body: {} }),
  ];
}

/** Every row of a table as JSON text, to search for values that must not be stored there. */
async function tableText(t: TestVault, table: string): Promise<string> {
  const result = await sql`select * from ${sql.table(table)}`.execute(t.vault.db.kysely);
  return JSON.stringify(result.rows);
}

for (const dialect of await testDialects()) {
  describe(`rotation engine on ${dialect}`, () => {
    let t: TestVault;
    let dir: string;
    let failingFile: string;
    let reloadLog: string;

    before(async () => {
      dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-rotation-')));
      failingFile = path.join(dir, 'failing.env');
      reloadLog = path.join(dir, 'reload.log');
      // The reload command of failing.env records what the file held, then fails, so every attempt fails at the provider.
      const reloadCommands = { [failingFile]: `cat '${failingFile}' >> '${reloadLog}'; exit 1` };
      t = await openTestVault(dialect, { reuse: { dir }, env: { AEGIS_ENV_RELOAD_COMMANDS: JSON.stringify(reloadCommands) } });
    });
    after(async () => destroyTestVault(t));

    it('manual rotate writes version 2', async () => {
      const { file, id } = await createEnvCredential(t, 'svc-a', 'initial-value-a');
      const before = fs.readFileSync(file, 'utf8');

      const rotated = await call(t.app, 'POST', '/credentials/svc-a/rotate', { token: t.adminToken, body: {} });
      assert.equal(rotated.status, 200, rotated.body);
      assert.equal(rotated.json.previous_version, 1);
      assert.equal(rotated.json.new_version, 2);

      const rows = await versionRows(t, id);
      assert.equal(rows.length, 2);
      assert.equal(rows[1]!.reason, 'rotation');
      assert.equal(rows[1]!.state, 'committed');
      assert.equal(await currentVersion(t, id), 2);

      const revealed = await reveal(t, 'svc-a');
      assert.equal(revealed.version, 2);
      assert.notEqual(revealed.value, 'initial-value-a');
      assert.equal(fileValue(file), revealed.value);
      const after = fs.readFileSync(file, 'utf8');
      assert.equal(after.replace(revealed.value, 'initial-value-a'), before);

      const history = await call(t.app, 'GET', '/rotation/history?credential_name=svc-a', { token: t.adminToken });
      assert.equal(history.status, 200);
      assert.equal(history.json.total, 1);
      // A token limited to other names gets none of its rows, with or without the name filter.
      const elsewhere = await tokenWith(t, 'history-elsewhere', ['credentials:read'], { namePatterns: ['other/*'] });
      for (const url of ['/rotation/history?credential_name=svc-a', '/rotation/history']) {
        const hidden = await call(t.app, 'GET', url, { token: elsewhere });
        assert.equal(hidden.status, 200, hidden.body);
        assert.equal(hidden.json.total, 0, url);
        assert.deepEqual(hidden.json.history, [], url);
      }
      const reaching = await tokenWith(t, 'history-reaching', ['credentials:read'], { namePatterns: ['svc-*'] });
      const reached = await call(t.app, 'GET', '/rotation/history?credential_name=svc-a', { token: reaching });
      assert.equal(reached.json.total, 1, reached.body);
      const entry = history.json.history[0];
      assert.equal(entry.trigger, 'manual');
      assert.equal(entry.success, true);
      assert.equal(entry.previous_version, 1);
      assert.equal(entry.new_version, 2);
      assert.equal(typeof entry.duration_ms, 'number');
      assert.ok(entry.duration_ms >= 0);

      const audit = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('credential_id', '=', id).where('action', '=', 'rotated').execute();
      assert.equal(audit.length, 1);
      assert.ok(audit[0]!.success === true || audit[0]!.success === 1);

      const alerts = await outboxRows(t, id);
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0]!.alert_type, 'rotation_success');
      assert.equal(alerts[0]!.message, "✅ Credential 'svc-a' rotated successfully");
      assert.equal(alerts[0]!.priority, 'low');

      const credential = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('id', '=', id).executeTakeFirstOrThrow();
      assert.equal(credential.status, 'active');
      const leases = await t.vault.db.kysely.selectFrom('aegis_leases').selectAll().where('name', '=', rotationLeaseName(id)).execute();
      assert.equal(leases.length, 0);
    });

    it('concurrent rotations: one wins', async () => {
      const { id } = await createEnvCredential(t, 'svc-b', 'initial-value-b');
      // A rotation that gets the lease waits in setValue until every request has finished or got that far.
      // So all ten overlap in time, because without the gate one rotation can finish before the next request starts.
      let arrived = 0;
      let openGate = () => {};
      const gate = new Promise<void>((resolve) => (openGate = resolve));
      const settle = () => {
        arrived += 1;
        if (arrived === 10) openGate();
      };
      const restore = wrapSetValue(t, id, async () => {
        settle();
        await gate;
      });
      let responses;
      try {
        responses = await Promise.all(
          Array.from({ length: 10 }, () =>
            call(t.app, 'POST', '/credentials/svc-b/rotate', { token: t.adminToken, body: {} }).then((response) => {
              if (response.status !== 200) settle();
              return response;
            }),
          ),
        );
      } finally {
        restore();
      }
      const statuses = responses.map((response) => response.status).sort();
      assert.deepEqual(statuses, [200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
      for (const response of responses.filter((entry) => entry.status === 409)) {
        assert.equal(response.json.code, 'rotation_in_progress');
      }
      const rows = await versionRows(t, id);
      assert.equal(rows.length, 2);
      assert.equal(await currentVersion(t, id), 2);
    });

    it('changes wait for a running rotation', async () => {
      const { id } = await createEnvCredential(t, 'svc-busy', 'initial-value-busy');
      let entered = () => {};
      const inSetValue = new Promise<void>((resolve) => (entered = resolve));
      let release = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      const restore = wrapSetValue(t, id, async () => {
        entered();
        await released;
      });
      try {
        const rotation = call(t.app, 'POST', '/credentials/svc-busy/rotate', { token: t.adminToken, body: {} });
        await inSetValue;
        for (const change of await changeAll(t, 'svc-busy')) {
          assert.equal(change.status, 409, change.body);
          assert.equal(change.json.code, 'rotation_in_progress');
        }
        release();
        assert.equal((await rotation).status, 200);
      } finally {
        release();
        restore();
      }
      const detail = (await call(t.app, 'GET', '/credentials/svc-busy', { token: t.adminToken })).json.credential_details;
      assert.equal(detail.status, 'active');
      assert.equal(detail.description, null);
      assert.deepEqual((await versionRows(t, id)).map((row) => row.version), [1, 2]);
      assert.notEqual((await reveal(t, 'svc-busy')).value, 'patched-during-rotation');

      // After the rotation, a change goes through, and the next rotation keeps it.
      const described = await call(t.app, 'PATCH', '/credentials/svc-busy', { token: t.adminToken, body: { description: 'after' } });
      assert.equal(described.status, 200, described.body);
      assert.equal((await call(t.app, 'POST', '/credentials/svc-busy/rotate', { token: t.adminToken, body: {} })).status, 200);
      assert.equal((await call(t.app, 'GET', '/credentials/svc-busy', { token: t.adminToken })).json.credential_details.description, 'after');
    });

    it('changes wait for an interrupted rotation', async () => {
      const { id } = await createEnvCredential(t, 'svc-left', 'initial-value-left');
      // A rotation whose process stopped, and whose lease has expired: only the status is left.
      await t.vault.db.kysely.updateTable('aegis_credentials').set({ status: 'rotating' }).where('id', '=', id).execute();
      for (const change of await changeAll(t, 'svc-left')) {
        assert.equal(change.status, 409, change.body);
        assert.equal(change.json.code, 'rotation_in_progress');
        assert.match(change.json.detail, /run-scheduled/);
      }
      const run = await call(t.app, 'POST', '/rotation/run-scheduled', { token: t.adminToken });
      assert.deepEqual(run.json.recovered, [{ credential: 'svc-left', outcome: 'restored' }]);
      const described = await call(t.app, 'PATCH', '/credentials/svc-left', { token: t.adminToken, body: { description: 'after' } });
      assert.equal(described.status, 200, described.body);
    });

    it('recovery closes a rotation it cannot restore', async () => {
      // failing.env's reload command fails, so recovery cannot put the previous value back.
      const { id } = await createEnvCredential(t, 'svc-stuck', 'initial-value-stuck', failingFile);
      await t.vault.db.kysely.updateTable('aegis_credentials').set({ status: 'rotating' }).where('id', '=', id).execute();
      const run = await call(t.app, 'POST', '/rotation/run-scheduled', { token: t.adminToken });
      assert.deepEqual(run.json.recovered, [{ credential: 'svc-stuck', outcome: 'failed' }]);
      const detail = (await call(t.app, 'GET', '/credentials/svc-stuck', { token: t.adminToken })).json.credential_details;
      assert.equal(detail.status, 'failed');
      const [history] = (await call(t.app, 'GET', '/rotation/history?credential_name=svc-stuck', { token: t.adminToken })).json.history;
      assert.match(history.error_message, /putting the previous value back failed/);
      // No longer rotating, so its settings can be fixed again.
      const described = await call(t.app, 'PATCH', '/credentials/svc-stuck', { token: t.adminToken, body: { description: 'fixed' } });
      assert.equal(described.status, 200, described.body);
      // 'failing provider keeps old version' counts the values written to failing.env in this log, and
      // it can register API_KEY of failing.env only once no other credential manages it.
      fs.writeFileSync(reloadLog, '');
      assert.equal((await call(t.app, 'DELETE', '/credentials/svc-stuck', { token: t.adminToken })).status, 200);
    });

    it('concurrent changes are all kept', async () => {
      const { id } = await createEnvCredential(t, 'svc-many', 'initial-value-many');
      const patch = (body: Record<string, unknown>) => call(t.app, 'PATCH', '/credentials/svc-many', { token: t.adminToken, body });
      const fields = await Promise.all([patch({ description: 'kept' }), patch({ tags: ['kept'] }), patch({ metadata: { kept: true } })]);
      for (const response of fields) assert.equal(response.status, 200, response.body);
      const detail = (await call(t.app, 'GET', '/credentials/svc-many', { token: t.adminToken })).json.credential_details;
      assert.equal(detail.description, 'kept');
      assert.deepEqual(detail.tags, ['kept']);
      assert.deepEqual(detail.metadata, { kept: true });

      const values = await Promise.all(Array.from({ length: 6 }, (_, index) => patch({ value: `concurrent-value-${index}` })));
      for (const response of values) assert.equal(response.status, 200, response.body);
      assert.deepEqual((await versionRows(t, id)).map((row) => row.version), [1, 2, 3, 4, 5, 6, 7]);
      assert.equal(await currentVersion(t, id), 7);

      const [retired, described] = await Promise.all([
        call(t.app, 'DELETE', '/credentials/svc-many', { token: t.adminToken }),
        patch({ description: 'racing the retire' }),
      ]);
      assert.equal(retired.status, 200, retired.body);
      assert.ok(described.status === 200 || described.json.code === 'credential_retired', described.body);
      assert.equal((await call(t.app, 'GET', '/credentials/svc-many', { token: t.adminToken })).json.credential_details.status, 'retired');
    });

    it('expired lease is taken over', async () => {
      const { id } = await createEnvCredential(t, 'svc-c', 'initial-value-c');
      const otherLease = await acquireLease(t.vault.db.kysely, rotationLeaseName(id), 'other-process', 60_000, t.clock.now());
      assert.ok(otherLease);

      const blocked = await call(t.app, 'POST', '/credentials/svc-c/rotate', { token: t.adminToken, body: {} });
      assert.equal(blocked.status, 409);
      assert.equal(blocked.json.code, 'rotation_in_progress');
      assert.equal(await currentVersion(t, id), 1);

      t.clock.advanceMs(61_000);
      const rotated = await call(t.app, 'POST', '/credentials/svc-c/rotate', { token: t.adminToken, body: {} });
      assert.equal(rotated.status, 200, rotated.body);
      assert.equal(await currentVersion(t, id), 2);
    });

    it('lost lease cannot commit', async () => {
      const { file, id } = await createEnvCredential(t, 'svc-d', 'initial-value-d');
      // Between setting the value and committing, another process takes the lease over.
      const restore = wrapSetValue(t, id, async () => {
        await t.vault.db.kysely
          .updateTable('aegis_leases')
          .set({ owner: 'thief', fencing_token: sql`fencing_token + 1` })
          .where('name', '=', rotationLeaseName(id))
          .execute();
      });
      try {
        const rotated = await call(t.app, 'POST', '/credentials/svc-d/rotate', { token: t.adminToken, body: {} });
        assert.equal(rotated.status, 409, rotated.body);
        assert.equal(rotated.json.code, 'lease_lost');
      } finally {
        restore();
      }
      assert.equal(await currentVersion(t, id), 1);
      assert.equal((await reveal(t, 'svc-d')).version, 1);
      const lease = await t.vault.db.kysely.selectFrom('aegis_leases').selectAll().where('name', '=', rotationLeaseName(id)).executeTakeFirst();
      assert.equal(lease?.owner, 'thief');

      // Once the thief's lease expires, recovery finishes the rotation the file already carries.
      t.clock.advanceMs(t.vault.config.rotationLeaseSeconds * 1000 + 1000);
      const report = await t.vault.rotation.recover();
      assert.deepEqual(report.completed, ['svc-d']);
      const revealed = await reveal(t, 'svc-d');
      assert.equal(revealed.version, 2);
      assert.equal(fileValue(file), revealed.value);
    });

    it('recovery takes stopped holder lease', async () => {
      const { id } = await createEnvCredential(t, 'svc-i', 'initial-value-i');
      const stopped = spawnSync(process.execPath, ['-e', '']);
      assert.equal(stopped.status, 0);
      const leaseName = rotationLeaseName(id);
      await t.vault.db.kysely.updateTable('aegis_credentials').set({ status: 'rotating' }).where('id', '=', id).execute();

      // A live process on this host (the test runner's parent) keeps its lease until it expires.
      assert.ok(await acquireLease(t.vault.db.kysely, leaseName, `${os.hostname()}:${process.ppid}:abcdef`, 60_000, t.clock.now()));
      const whileAlive = await t.vault.rotation.recover();
      assert.deepEqual(whileAlive.skipped, ['svc-i']);

      await t.vault.db.kysely.updateTable('aegis_leases').set({ owner: `${os.hostname()}:${stopped.pid}:abcdef` }).where('name', '=', leaseName).execute();
      const afterStop = await t.vault.rotation.recover();
      assert.deepEqual(afterStop.restored, ['svc-i']);
      const credential = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('id', '=', id).executeTakeFirstOrThrow();
      assert.equal(credential.status, 'active');
      assert.equal(await currentVersion(t, id), 1);
    });

    it('scheduled run names what it recovered', async () => {
      const { id } = await createEnvCredential(t, 'svc-j', 'initial-value-j');
      const hidden = await createEnvCredential(t, 'other-j', 'initial-value-other-j');
      const stopped = spawnSync(process.execPath, ['-e', '']);
      for (const credentialId of [id, hidden.id]) {
        await t.vault.db.kysely.updateTable('aegis_credentials').set({ status: 'rotating' }).where('id', '=', credentialId).execute();
        assert.ok(await acquireLease(t.vault.db.kysely, rotationLeaseName(credentialId), `${os.hostname()}:${stopped.pid}:abcdef`, 60_000, t.clock.now()));
      }
      // The response of a token limited to svc-* names only svc-j among the recovered credentials.
      const limited = await call(t.app, 'POST', '/tokens', { token: t.adminToken, body: { actor: 'svc-rotator', scopes: ['credentials:rotate'], name_patterns: ['svc-*'] } });
      assert.equal(limited.status, 201, limited.body);
      const run = await call(t.app, 'POST', '/rotation/run-scheduled', { token: limited.json.token });
      assert.equal(run.status, 200, run.body);
      assert.deepEqual(run.json.recovered, [{ credential: 'svc-j', outcome: 'restored' }]);
      for (const credentialId of [id, hidden.id]) {
        const credential = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('id', '=', credentialId).executeTakeFirstOrThrow();
        assert.equal(credential.status, 'active');
      }
    });

    it('failing provider keeps old version', async () => {
      const { file, id } = await createEnvCredential(t, 'svc-e', 'initial-value-e', failingFile);
      const rotated = await call(t.app, 'POST', '/credentials/svc-e/rotate', { token: t.adminToken, body: {} });
      assert.equal(rotated.status, 502, rotated.body);
      assert.equal(rotated.json.code, 'rotation_failed');

      const tried = fs
        .readFileSync(reloadLog, 'utf8')
        .split('\n')
        .filter((line) => line.startsWith('API_KEY='))
        .map((line) => line.slice('API_KEY='.length));
      // Three attempts, then the restore of the old value (whose reload also fails).
      assert.equal(tried.length, 4);
      const attempts = tried.slice(0, 3);
      assert.equal(new Set(attempts).size, 3);
      assert.ok(!attempts.includes('initial-value-e'));
      assert.equal(tried[3], 'initial-value-e');

      assert.equal(fileValue(file), 'initial-value-e');
      assert.equal(await currentVersion(t, id), 1);
      assert.equal((await reveal(t, 'svc-e')).value, 'initial-value-e');
      const rows = await versionRows(t, id);
      assert.deepEqual(
        rows.map((row) => row.state),
        ['committed', 'failed'],
      );
      const credential = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('id', '=', id).executeTakeFirstOrThrow();
      assert.equal(credential.status, 'failed');

      const alerts = await outboxRows(t, id);
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0]!.alert_type, 'rotation_failed');
      assert.match(alerts[0]!.message, /^❌ Rotation failed for 'svc-e': .+/);
      assert.equal(alerts[0]!.priority, 'critical');

      const history = await call(t.app, 'GET', '/rotation/history?credential_name=svc-e', { token: t.adminToken });
      assert.equal(history.json.total, 1);
      assert.equal(history.json.history[0].success, false);
      assert.equal(history.json.history[0].attempts, 3);

      for (const table of ['aegis_alert_outbox', 'aegis_rotation_history', 'aegis_audit_log']) {
        const text = await tableText(t, table);
        for (const value of tried) assert.ok(!text.includes(value), `${table} holds a value`);
      }
    });

    it('rollback switches between versions', async () => {
      const { file, id } = await createEnvCredential(t, 'svc-f', 'initial-value-f');
      const values = ['initial-value-f'];
      for (let index = 0; index < 2; index += 1) {
        const rotated = await call(t.app, 'POST', '/credentials/svc-f/rotate', { token: t.adminToken, body: {} });
        assert.equal(rotated.status, 200, rotated.body);
        values.push((await reveal(t, 'svc-f')).value);
      }
      assert.equal(await currentVersion(t, id), 3);

      const toFirst = await call(t.app, 'POST', '/credentials/svc-f/rollback', { token: t.adminToken, body: { version: 1 } });
      assert.equal(toFirst.status, 200, toFirst.body);
      assert.equal(toFirst.json.from_version, 3);
      assert.equal(toFirst.json.to_version, 1);
      assert.equal(fileValue(file), values[0]);
      assert.deepEqual(await reveal(t, 'svc-f'), { name: 'svc-f', version: 1, value: values[0] });

      const toSecond = await call(t.app, 'POST', '/credentials/svc-f/rollback', { token: t.adminToken, body: { version: 2 } });
      assert.equal(toSecond.status, 200, toSecond.body);
      assert.equal(fileValue(file), values[1]);
      assert.deepEqual(await reveal(t, 'svc-f'), { name: 'svc-f', version: 2, value: values[1] });

      const unknown = await call(t.app, 'POST', '/credentials/svc-f/rollback', { token: t.adminToken, body: { version: 99 } });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.json.code, 'version_not_found');
      assert.equal(await currentVersion(t, id), 2);
      assert.equal(fileValue(file), values[1]);

      const history = await call(t.app, 'GET', '/rotation/history?credential_name=svc-f', { token: t.adminToken });
      const rotations = history.json.history.filter((entry: { trigger: string }) => entry.trigger === 'manual');
      const undone = rotations.find((entry: { new_version: number }) => entry.new_version === 3);
      assert.equal(undone.rolled_back, true);
      assert.equal(typeof undone.rollback_at, 'string');
      const rollbacks = history.json.history.filter((entry: { trigger: string }) => entry.trigger === 'rollback');
      assert.equal(rollbacks.length, 2);
    });

    it('rollback reads only two versions', async () => {
      const { file, id } = await createEnvCredential(t, 'svc-long-history', 'initial-value-long-history');
      for (let index = 0; index < 20; index += 1) {
        const rotated = await call(t.app, 'POST', '/credentials/svc-long-history/rotate', { token: t.adminToken, body: {} });
        assert.equal(rotated.status, 200, rotated.body);
      }
      assert.equal(await currentVersion(t, id), 21);
      const reads = new VersionValueReads();
      const deps = rotationDepsOn(t, { ...t.vault.db, kysely: t.vault.db.kysely.withPlugin(reads) }, 'rollback-test-process');
      const caller = localCaller('rollback-test');

      assert.deepEqual(await rollback(deps, caller, 'svc-long-history', 3), { fromVersion: 21, toVersion: 3 });
      assert.equal(reads.count, 2);
      assert.deepEqual(await reveal(t, 'svc-long-history'), { name: 'svc-long-history', version: 3, value: fileValue(file) });

      reads.count = 0;
      assert.deepEqual(await rollback(deps, caller, 'svc-long-history'), { fromVersion: 3, toVersion: 2 });
      assert.equal(reads.count, 2);

      reads.count = 0;
      await assert.rejects(rollback(deps, caller, 'svc-long-history', 99), { code: 'version_not_found' });
      assert.equal(reads.count, 1);
    });

    it('emergency rotation alerts as critical', async () => {
      const { id } = await createEnvCredential(t, 'svc-g', 'initial-value-g');
      const rotated = await call(t.app, 'POST', '/credentials/svc-g/rotate', { token: t.adminToken, body: { trigger: 'emergency', reason: 'leaked in a log' } });
      assert.equal(rotated.status, 200, rotated.body);
      const alerts = await outboxRows(t, id);
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0]!.alert_type, 'rotation_success');
      assert.equal(alerts[0]!.priority, 'critical');
      assert.equal(alerts[0]!.message, "✅ Credential 'svc-g' rotated successfully (emergency rotation)");
      const history = await call(t.app, 'GET', '/rotation/history?credential_name=svc-g', { token: t.adminToken });
      assert.equal(history.json.history[0].trigger, 'emergency');
      assert.equal(history.json.history[0].reason, 'leaked in a log');
    });

    it('refuses a file outside the server folders', async () => {
      // The CLI runs with a wider folder list than the server, as an operator's shell might.
      const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-elsewhere-'));
      const file = path.join(elsewhere, 'app.env');
      fs.writeFileSync(file, 'API_KEY=outside-value\n');
      const created = await runCli(
        ['credentials', 'create', 'svc-outside', '--type', 'apiKey', '--provider', 'env', '--provider-config', JSON.stringify({ file, variable: 'API_KEY' }), '--value-env', 'OUTSIDE_VALUE'],
        { ...t.env, AEGIS_ENV_ALLOWED_DIRS: `${t.dir}:${elsewhere}`, OUTSIDE_VALUE: 'outside-value', AEGIS_LOG_LEVEL: 'warn' },
      );
      assert.equal(created.code, 0, created.stderr);
      const rotated = await call(t.app, 'POST', '/credentials/svc-outside/rotate', { token: t.adminToken, body: {} });
      assert.equal(rotated.status, 409, rotated.body);
      assert.equal(rotated.json.code, 'provider_config_invalid');
      assert.match(rotated.json.detail, /outside the folders allowed for env credentials/);
      assert.equal(fs.readFileSync(file, 'utf8'), 'API_KEY=outside-value\n');
      const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('name', '=', 'svc-outside').executeTakeFirstOrThrow();
      assert.equal(row.status, 'active');
      fs.rmSync(elsewhere, { recursive: true, force: true });
    });

    it('names a link leading outside', async () => {
      const { file } = await createEnvCredential(t, 'svc-link', 'initial-value-link');
      const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-elsewhere-'));
      const target = path.join(elsewhere, 'other.env');
      fs.writeFileSync(target, 'API_KEY=outside-value\n');
      fs.rmSync(file);
      fs.symlinkSync(target, file);
      try {
        const rotated = await call(t.app, 'POST', '/credentials/svc-link/rotate', { token: t.adminToken, body: {} });
        assert.equal(rotated.status, 409, rotated.body);
        assert.equal(rotated.json.code, 'provider_config_invalid');
        assert.ok(rotated.json.detail.includes(`"${file}" is a symbolic link, or lies under one, whose target ${target} is outside the folders allowed for env credentials.`), rotated.json.detail);
        assert.doesNotMatch(rotated.json.detail, /\.\./);
        assert.match(rotated.json.detail, /replace the link with the file itself\. Change provider_config with PATCH/);
        assert.equal(fs.readFileSync(target, 'utf8'), 'API_KEY=outside-value\n');
      } finally {
        fs.rmSync(elsewhere, { recursive: true, force: true });
      }
    });

    it('missing file reports provider unchanged', async () => {
      const { file } = await createEnvCredential(t, 'svc-gone', 'initial-value-gone');
      fs.rmSync(file);
      const rotated = await call(t.app, 'POST', '/credentials/svc-gone/rotate', { token: t.adminToken, body: { value: 'next-value-gone' } });
      assert.equal(rotated.status, 502, rotated.body);
      assert.match(rotated.json.detail, /writing API_KEY to .* failed: ENOENT\./);
      // Nothing was written, so nothing is put back, and the message states that.
      assert.ok(!rotated.json.detail.includes('restoring the previous value'), rotated.json.detail);
      assert.match(rotated.json.detail, /The provider was not changed, and the previous version is still current: fix the cause, then retry\.$/);
      assert.ok(!rotated.json.detail.includes('may hold'), rotated.json.detail);
      assert.equal(rotated.json.provider_state, 'unchanged');
      assert.equal(fs.existsSync(file), false);
      assert.ok(!rotated.body.includes('next-value-gone'), 'no value in the response');
    });

    it('failed restore does not say retry is safe', async () => {
      // The write lands, its reload command fails, and the file is gone before the restore.
      const { file } = await createEnvCredential(t, 'svc-vanishing', 'initial-value-vanishing');
      const undo = wrapSetValue(t, (await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'svc-vanishing').executeTakeFirstOrThrow()).id, async () => {
        fs.rmSync(file);
        throw new Error('the service did not start');
      });
      try {
        const rotated = await call(t.app, 'POST', '/credentials/svc-vanishing/rotate', { token: t.adminToken, body: { value: 'next-value-vanishing' } });
        assert.equal(rotated.status, 502, rotated.body);
        assert.match(rotated.json.detail, /restoring the previous value also failed/);
        assert.match(rotated.json.detail, /the provider may hold the new value or none: check the provider, then retry\.$/);
        assert.ok(!rotated.json.detail.includes('safe to retry'), rotated.json.detail);
        assert.equal(rotated.json.provider_state, 'unknown');
        const [history] = (await call(t.app, 'GET', '/rotation/history?credential_name=svc-vanishing', { token: t.adminToken })).json.history;
        assert.match(history.error_message, /the provider may hold the new value or none/);
      } finally {
        undo();
      }
    });

    it('rejects a second credential per variable', async () => {
      const { file } = await createEnvCredential(t, 'svc-shared', 'initial-value-shared');
      const body = { name: 'svc-shared-copy', credential_type: 'apiKey', provider: 'env', provider_config: { file, variable: 'API_KEY' }, value: 'initial-value-shared' };
      const second = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body });
      assert.equal(second.status, 409, second.body);
      assert.equal(second.json.code, 'provider_target_taken');
      assert.equal(second.json.field, 'provider_config.variable');
      assert.equal(second.json.detail.startsWith(`provider_config.variable: API_KEY in ${file} is already managed by credential "svc-shared".`), true, second.json.detail);

      // Another variable of the same file is a place of its own.
      const other = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { ...body, provider_config: { file, variable: 'TRAILING' } } });
      assert.equal(other.status, 201, other.body);
      const patched = await call(t.app, 'PATCH', '/credentials/svc-shared-copy', { token: t.adminToken, body: { provider_config: { file, variable: 'API_KEY' } } });
      assert.equal(patched.status, 409, patched.body);
      assert.equal(patched.json.field, 'provider_config.variable');

      // A token that cannot reach the other credential learns only that one exists.
      const limited = await tokenWith(t, 'shared-limited', ['credentials:write', 'credentials:read'], { namePatterns: ['limited/*'] });
      const hidden = await call(t.app, 'POST', '/credentials', { token: limited, body: { ...body, name: 'limited/copy' } });
      assert.equal(hidden.status, 409, hidden.body);
      assert.ok(!hidden.body.includes('"svc-shared"'), hidden.body);
      assert.ok(!hidden.body.includes('\\"svc-shared\\"'), hidden.body);
      assert.match(hidden.json.detail, /already managed by another credential, which this token cannot reach\./);

      // Once the first credential is retired, its variable can be managed by another.
      assert.equal((await call(t.app, 'DELETE', '/credentials/svc-shared', { token: t.adminToken })).status, 200);
      assert.equal((await call(t.app, 'PATCH', '/credentials/svc-shared-copy', { token: t.adminToken, body: { provider_config: { file, variable: 'API_KEY' } } })).status, 200);
    });

    it('concurrent creates share no variable', async () => {
      const file = path.join(t.dir, 'race.env');
      fs.writeFileSync(file, 'RACE_KEY=initial\n');
      const body = (name: string) => ({ name, credential_type: 'apiKey', provider: 'env', provider_config: { file, variable: 'RACE_KEY' }, value: 'initial' });
      const created = await Promise.all(['race-a', 'race-b', 'race-c', 'race-d'].map((name) => call(t.app, 'POST', '/credentials', { token: t.adminToken, body: body(name) })));
      assert.deepEqual(created.map((response) => response.status).sort(), [201, 409, 409, 409], created.map((response) => response.body).join('\n'));
    });

    // A PEM key in a .env file spans lines inside quotes: AEGIS cannot write such a value, but it can record one.
    it('env credential records a multi-line value', async () => {
      const pem = '-----BEGIN KEY-----\nabc\n-----END KEY-----';
      await createEnvCredential(t, 'svc-pem', 'placeholder');
      const patched = await call(t.app, 'PATCH', '/credentials/svc-pem', { token: t.adminToken, body: { value: pem } });
      assert.equal(patched.status, 200, patched.body);
      const revealed = await reveal(t, 'svc-pem');
      assert.equal(revealed.value, pem);
      assert.equal(revealed.version, 2);
      const rotated = await call(t.app, 'POST', '/credentials/svc-pem/rotate', { token: t.adminToken, body: { value: `${pem}\n` } });
      assert.equal(rotated.status, 400, rotated.body);
      assert.equal(rotated.json.field, 'value');
    });

    it('n8n rotation without N8N_URL names the setting', async () => {
      const created = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'svc-n8n', credential_type: 'apiKey', value: 'n8n-value' } });
      assert.equal(created.status, 201, created.body);
      const rotated = await call(t.app, 'POST', '/credentials/svc-n8n/rotate', { token: t.adminToken, body: { value: 'n8n-value-2' } });
      assert.equal(rotated.status, 409, rotated.body);
      assert.equal(rotated.json.code, 'rotation_unsupported');
      assert.match(rotated.json.detail, /N8N_URL and N8N_API_KEY/);
    });

    it('n8n sync without N8N_URL logs a warning', async () => {
      const synced = await call(t.app, 'POST', '/sync/n8n', { token: t.adminToken });
      assert.equal(synced.status, 503, synced.body);
      const failed = t.logs.lines.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'request failed' && entry.route === 'POST /sync/n8n');
      assert.equal(failed.length, 1);
      assert.equal(failed[0].level, 40);
    });

    // Moves the shared clock by 91 days, so it runs last.
    it('retention keeps current and previous', async () => {
      const { file, id } = await createEnvCredential(t, 'svc-h', 'initial-value-h');
      for (let index = 0; index < 3; index += 1) {
        const rotated = await call(t.app, 'POST', '/credentials/svc-h/rotate', { token: t.adminToken, body: {} });
        assert.equal(rotated.status, 200, rotated.body);
      }
      const current = await reveal(t, 'svc-h');
      assert.equal(current.version, 4);
      // svc-busy-r is being rolled back when retention runs: the rollback has read its target version.
      const busy = await createEnvCredential(t, 'svc-busy-r', 'initial-value-busy');
      for (let index = 0; index < 3; index += 1) assert.equal((await call(t.app, 'POST', '/credentials/svc-busy-r/rotate', { token: t.adminToken, body: {} })).status, 200);

      t.clock.advanceHours(91 * 24);
      const lease = await acquireLease(t.vault.db.kysely, rotationLeaseName(busy.id), 'rollback-in-another-process', 60_000, t.clock.now());
      assert.ok(lease);
      const result = await t.vault.rotation.retention();
      assert.ok(result.versionsRemoved >= 2);
      const rows = await versionRows(t, id);
      assert.deepEqual(
        rows.map((row) => row.version),
        [3, 4],
      );
      assert.equal(await currentVersion(t, id), 4);
      assert.deepEqual((await versionRows(t, busy.id)).map((row) => row.version), [1, 2, 3, 4]);
      await releaseLease(t.vault.db.kysely, lease);
      await t.vault.rotation.retention();
      assert.deepEqual((await versionRows(t, busy.id)).map((row) => row.version), [3, 4]);

      const purged = await call(t.app, 'POST', '/credentials/svc-h/rollback', { token: t.adminToken, body: { version: 1 } });
      assert.equal(purged.status, 410, purged.body);
      assert.equal(purged.json.code, 'version_purged');
      assert.equal(await currentVersion(t, id), 4);
      assert.equal(fileValue(file), current.value);

      const unknown = await call(t.app, 'POST', '/credentials/svc-h/rollback', { token: t.adminToken, body: { version: 5 } });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.json.code, 'version_not_found');
      assert.equal(fileValue(file), current.value);

      const previous = await call(t.app, 'POST', '/credentials/svc-h/rollback', { token: t.adminToken, body: {} });
      assert.equal(previous.status, 200, previous.body);
      assert.equal(previous.json.to_version, 3);
    });
  });
}
