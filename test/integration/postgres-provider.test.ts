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
  }
});
