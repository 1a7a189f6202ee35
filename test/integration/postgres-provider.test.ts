import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { clusterUnavailableReason, startPostgresCluster, type PostgresCluster } from '../helpers/postgres-cluster.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const unavailable = clusterUnavailableReason();
if (unavailable && process.env.CI === 'true') {
  throw new Error(`The postgres provider tests need their own PostgreSQL cluster, and CI=true requires them: ${unavailable}.`);
}
if (unavailable) process.stdout.write(`# skipping postgres provider tests: ${unavailable}\n`);

/** Asserts that logging in as `user` with `password` fails with PostgreSQL's authentication error. */
async function assertLoginRejected(cluster: PostgresCluster, user: string, password: string): Promise<void> {
  await assert.rejects(cluster.connect(user, password), (error: Error & { code?: string }) => {
    // 28P01 is invalid_password: the server checked the password and rejected it.
    assert.equal(error.code, '28P01', `expected an authentication error, got ${error.message}`);
    return true;
  });
}

/** Logs in as `user` with `password` and returns the role that a query runs as. */
async function loginAndQuery(cluster: PostgresCluster, user: string, password: string): Promise<string> {
  const client = await cluster.connect(user, password, 'appdb');
  try {
    const result = await client.query<{ role: string }>('select current_user as role');
    return result.rows[0]!.role;
  } finally {
    await client.end();
  }
}

describe('postgres provider on a SCRAM cluster', { skip: unavailable ?? false }, async () => {
  let cluster: PostgresCluster;

  before(async () => {
    cluster = await startPostgresCluster();
    await cluster.adminQuery(`create role app_user login password 'set-up-only'`);
    await cluster.adminQuery('create database appdb owner app_user');
  });
  after(async () => cluster?.stop());

  it('cluster checks passwords', async () => {
    await assertLoginRejected(cluster, 'app_user', 'wrong-password');
    assert.equal(await loginAndQuery(cluster, 'app_user', 'set-up-only'), 'app_user');
  });

  for (const dialect of unavailable ? [] : await testDialects()) {
    describe(`rotation with ${dialect} storage`, () => {
      let t: TestVault;
      const initial = `initial-${dialect}-${crypto.randomBytes(12).toString('hex')}`;
      let rotated = '';

      before(async () => {
        await cluster.adminQuery(`alter role app_user password '${initial}'`);
        t = await openTestVault(dialect, { env: { AEGIS_POSTGRES_ADMIN_URL: cluster.adminUrl } });
      });
      after(async () => destroyTestVault(t));

      it('creates a postgres credential', async () => {
        const created = await call(t.app, 'POST', '/credentials', {
          token: t.adminToken,
          body: { name: 'db/app_user', credential_type: 'postgres', provider: 'postgres', value: initial, provider_config: { role: 'app_user' } },
        });
        assert.equal(created.status, 201, created.body);
      });

      it('rotates the role password', async () => {
        const response = await call(t.app, 'POST', '/credentials/db%2Fapp_user/rotate', { token: t.adminToken, body: { trigger: 'manual' } });
        assert.equal(response.status, 200, response.body);
        assert.equal(response.json.new_version, 2);

        const revealed = await call(t.app, 'GET', '/credentials/db%2Fapp_user/value', { token: t.adminToken });
        assert.equal(revealed.status, 200);
        rotated = revealed.json.value;
        assert.notEqual(rotated, initial);

        await assertLoginRejected(cluster, 'app_user', initial);
        assert.equal(await loginAndQuery(cluster, 'app_user', rotated), 'app_user');
      });

      it('rolls back to the old password', async () => {
        const response = await call(t.app, 'POST', '/credentials/db%2Fapp_user/rollback', { token: t.adminToken, body: {} });
        assert.equal(response.status, 200, response.body);
        assert.equal(response.json.to_version, 1);

        assert.equal(await loginAndQuery(cluster, 'app_user', initial), 'app_user');
        await assertLoginRejected(cluster, 'app_user', rotated);
      });

      it('rotates to a non-ASCII password', async () => {
        // The soft hyphen and zero-width space are removed, NBSP becomes a space and the ligature NFKC-normalized (SASLprep).
        const supplied = `pass\u00ADword\u200B\u00A0\uFB01-${crypto.randomBytes(6).toString('hex')}`;
        const response = await call(t.app, 'POST', '/credentials/db%2Fapp_user/rotate', { token: t.adminToken, body: { value: supplied } });
        assert.equal(response.status, 200, response.body);

        assert.equal(await loginAndQuery(cluster, 'app_user', supplied), 'app_user');
        await assertLoginRejected(cluster, 'app_user', initial);
      });

      it('keeps passwords out of the server log', () => {
        const log = fs.readFileSync(cluster.logFile, 'utf8');
        // The statements are logged, with a SCRAM verifier in place of the password.
        assert.match(log, /alter role "app_user" password 'SCRAM-SHA-256\$4096:/);
        assert.equal(log.split(initial).length - 1, 0, 'the initial password is in the server log');
        assert.ok(rotated.length > 0);
        assert.equal(log.split(rotated).length - 1, 0, 'the rotated password is in the server log');
      });

      it('keeps passwords out of AEGIS logs', () => {
        const logs = t.logs.text();
        assert.ok(!logs.includes(initial));
        assert.ok(!logs.includes(rotated));
      });
    });

    describe(`privileged roles with ${dialect} storage`, () => {
      let t: TestVault;
      let limited: TestVault;
      const password = `role-test-${dialect}-${crypto.randomBytes(12).toString('hex')}`;
      const privileged = { aegis_role_super: 'superuser', aegis_role_repl: 'replication', aegis_role_bypass: 'bypassrls' };

      /** Creates a postgres credential for `role` in `vault` and returns the response. */
      function create(vault: TestVault, name: string, role: string) {
        return call(vault.app, 'POST', '/credentials', {
          token: vault.adminToken,
          body: { name, credential_type: 'postgres', provider: 'postgres', value: password, provider_config: { role } },
        });
      }

      before(async () => {
        for (const [role, attribute] of Object.entries(privileged)) await cluster.adminQuery(`create role ${role} login ${attribute} password '${password}'`);
        await cluster.adminQuery(`create role aegis_role_app login password '${password}'`);
        // Roles that can act as a privileged role, or create roles, are as privileged.
        await cluster.adminQuery(`create role aegis_role_creator login createrole password '${password}'`);
        await cluster.adminQuery(`create role aegis_role_in_super login password '${password}' in role aegis_role_super`);
        await cluster.adminQuery(`create role aegis_role_program login password '${password}' in role pg_execute_server_program`);
        // A member of the administrative connection's role can act as that role.
        await cluster.adminQuery(`create role aegis_role_member login password '${password}' in role postgres`);
        // An administrative connection that is no superuser, whose own role is rejected too.
        await cluster.adminQuery(`create role aegis_role_admin login createrole password '${password}'`);
        const narrow = new URL(cluster.adminUrl);
        narrow.username = 'aegis_role_admin';
        narrow.password = password;
        t = await openTestVault(dialect, { env: { AEGIS_POSTGRES_ADMIN_URL: cluster.adminUrl, AEGIS_POSTGRES_CONNECTIONS: JSON.stringify({ narrow: narrow.toString() }) } });
        limited = await openTestVault(dialect, { env: { AEGIS_POSTGRES_ADMIN_URL: cluster.adminUrl, AEGIS_POSTGRES_ALLOWED_ROLES: 'aegis_role_app*,aegis_role_super' } });
      });
      after(async () => {
        await destroyTestVault(t);
        await destroyTestVault(limited);
        for (const role of ['aegis_role_creator', 'aegis_role_in_super', 'aegis_role_program', ...Object.keys(privileged), 'aegis_role_app', 'aegis_role_member', 'aegis_role_admin']) {
          await cluster.adminQuery(`drop role if exists ${role}`);
        }
      });

      it('rejects privileged roles at create', async () => {
        const reasons: Record<string, string> = {
          aegis_role_super: 'is a superuser',
          aegis_role_repl: 'has the REPLICATION attribute',
          aegis_role_bypass: 'has the BYPASSRLS attribute',
          aegis_role_member: "is a member of the administrative connection's role",
          aegis_role_creator: 'has the CREATEROLE attribute',
          aegis_role_in_super: 'is a member of aegis_role_super, which it can act as',
          aegis_role_program: 'is a member of pg_execute_server_program, which it can act as',
          postgres: 'is a superuser',
        };
        for (const [role, reason] of Object.entries(reasons)) {
          const created = await create(t, `db/${role}`, role);
          assert.equal(created.status, 400, `${role}: ${created.body}`);
          assert.equal(created.json.field, 'provider_config.role');
          assert.ok(created.json.detail.startsWith(`provider_config.role: role ${role} ${reason}, so AEGIS does not manage its password.`), created.json.detail);
        }
      });

      it("rejects the connection's own role", async () => {
        const created = await call(t.app, 'POST', '/credentials', {
          token: t.adminToken,
          body: { name: 'db/aegis_role_admin', credential_type: 'postgres', provider: 'postgres', value: password, provider_config: { role: 'aegis_role_admin', connection: 'narrow' } },
        });
        assert.equal(created.status, 400, created.body);
        assert.ok(created.json.detail.startsWith("provider_config.role: role aegis_role_admin is the administrative connection's own role"), created.json.detail);
      });

      it('rejects a privileged role at PATCH', async () => {
        assert.equal((await create(t, 'db/aegis_role_app', 'aegis_role_app')).status, 201);
        const patched = await call(t.app, 'PATCH', '/credentials/db%2Faegis_role_app', { token: t.adminToken, body: { provider_config: { role: 'aegis_role_super' } } });
        assert.equal(patched.status, 400, patched.body);
        assert.equal(patched.json.field, 'provider_config.role');
      });

      it('rejects a second credential per role', async () => {
        const second = await create(t, 'db/aegis_role_app-copy', 'aegis_role_app');
        assert.equal(second.status, 409, second.body);
        assert.equal(second.json.code, 'provider_target_taken');
        assert.equal(second.json.field, 'provider_config.role');
        assert.match(second.json.detail, /^provider_config\.role: role aegis_role_app on connection "default" is already managed by credential "db\/aegis_role_app"\./);

        // A change of provider_config to a role another credential manages is rejected too.
        await cluster.adminQuery(`create role aegis_role_other login password '${password}'`);
        try {
          assert.equal((await create(t, 'db/aegis_role_other', 'aegis_role_other')).status, 201);
          const patched = await call(t.app, 'PATCH', '/credentials/db%2Faegis_role_other', { token: t.adminToken, body: { provider_config: { role: 'aegis_role_app' } } });
          assert.equal(patched.status, 409, patched.body);
          assert.equal(patched.json.field, 'provider_config.role');
          assert.match(patched.json.detail, /already managed by credential "db\/aegis_role_app"/);
          // The credential keeps its own role when the change repeats it.
          const same = await call(t.app, 'PATCH', '/credentials/db%2Faegis_role_other', { token: t.adminToken, body: { provider_config: { role: 'aegis_role_other' } } });
          assert.equal(same.status, 200, same.body);
          assert.equal((await call(t.app, 'DELETE', '/credentials/db%2Faegis_role_other', { token: t.adminToken })).status, 200);
        } finally {
          await cluster.adminQuery('drop role if exists aegis_role_other');
        }
      });

      it('rejects a role that became superuser', async () => {
        await cluster.adminQuery('alter role aegis_role_app superuser');
        try {
          const rotated = await call(t.app, 'POST', '/credentials/db%2Faegis_role_app/rotate', { token: t.adminToken, body: { value: 'role-test-chosen-password' } });
          assert.equal(rotated.status, 502, rotated.body);
          assert.match(rotated.json.detail, /role aegis_role_app is a superuser, so AEGIS did not change its password/);
          assert.equal(await loginAndQuery(cluster, 'aegis_role_app', password), 'aegis_role_app');
          await assertLoginRejected(cluster, 'aegis_role_app', 'role-test-chosen-password');
        } finally {
          await cluster.adminQuery('alter role aegis_role_app nosuperuser');
        }
      });

      it('reports a timed-out change as unknown', async () => {
        await cluster.adminQuery(`create role aegis_role_slow login password '${password}'`);
        const slow = await openTestVault(dialect, { env: { AEGIS_POSTGRES_ADMIN_URL: cluster.adminUrl, AEGIS_PROVIDER_TIMEOUT_MS: '300' } });
        // An open transaction that changed the role makes AEGIS's ALTER ROLE wait past its time limit.
        const blocker = await cluster.connect('postgres', decodeURIComponent(new URL(cluster.adminUrl).password));
        try {
          assert.equal((await create(slow, 'db/aegis_role_slow', 'aegis_role_slow')).status, 201);
          await blocker.query('begin');
          await blocker.query(`alter role aegis_role_slow valid until 'infinity'`);
          const rotated = await call(slow.app, 'POST', '/credentials/db%2Faegis_role_slow/rotate', { token: slow.adminToken, body: {} });
          assert.equal(rotated.status, 502, rotated.body);
          assert.equal(rotated.json.provider_state, 'timed_out');
          assert.match(rotated.json.detail, /a provider call timed out and may still take effect, so the provider state is unknown and it may hold the attempted value: check the provider, then retry\.$/);
          assert.ok(!rotated.json.detail.includes('safe to retry'), rotated.json.detail);
          // No second attempt, which the call still waiting could overwrite.
          assert.equal(rotated.json.attempts, 1);

          const [history] = (await call(slow.app, 'GET', '/rotation/history?credential_name=db%2Faegis_role_slow', { token: slow.adminToken })).json.history;
          assert.match(history.error_message, /timed out and may still take effect/);
          const alerts = await slow.vault.db.kysely.selectFrom('aegis_alert_outbox').select('message').where('alert_type', '=', 'rotation_failed').execute();
          assert.equal(alerts.length, 1);
          assert.match(alerts[0]!.message, /timed out and may still take effect/);
        } finally {
          await blocker.query('rollback').catch(() => undefined);
          await blocker.end();
          await destroyTestVault(slow);
          await cluster.adminQuery('drop role if exists aegis_role_slow');
        }
      });

      it('limits roles to the allowed list', async () => {
        const outside = await create(limited, 'db/aegis_role_repl', 'aegis_role_repl');
        assert.equal(outside.status, 400, outside.body);
        assert.equal(outside.json.field, 'provider_config.role');
        assert.match(outside.json.detail, /is not among the roles this server lets AEGIS manage\. .*providers\.postgres\.allowed_roles or AEGIS_POSTGRES_ALLOWED_ROLES/);
        // A listed role is still rejected while it is a superuser.
        assert.equal((await create(limited, 'db/aegis_role_super', 'aegis_role_super')).status, 400);
        assert.equal((await create(limited, 'db/aegis_role_app', 'aegis_role_app')).status, 201);
        const rotated = await call(limited.app, 'POST', '/credentials/db%2Faegis_role_app/rotate', { token: limited.adminToken, body: {} });
        assert.equal(rotated.status, 200, rotated.body);
      });
    });
  }
});
