import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

// `aegis backup` copies SQLite vaults only. The key comes from the environment, so no key file is
// beside the database and only the database-file check rejects a backup written over the vault.
describe('aegis backup on sqlite', () => {
  let t: TestVault;
  let database: string;
  let env: Record<string, string>;

  before(async () => {
    t = await openTestVault('sqlite', { env: { AEGIS_MASTER_KEY: crypto.randomBytes(32).toString('base64') } });
    const created = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'backup-guard', credential_type: 'apiKey', provider: 'api', value: 'guard-value-5e1b' } });
    assert.equal(created.status, 201, created.body);
    await t.close();
    database = path.join(t.dir, 'aegis.db');
    env = { ...t.env, AEGIS_LOG_LEVEL: 'warn' };
  });

  after(async () => {
    await destroyTestVault(t);
  });

  it('never writes over the database or its journals', async () => {
    const before = fs.readFileSync(database);
    for (const target of [database, `${database}-wal`, `${database}-journal`]) {
      const backup = await runCli(['backup', '--to', target, '--allow-data-dir', '--force'], env);
      assert.equal(backup.code, 1, backup.stdout);
      assert.match(backup.stderr, /is the vault's SQLite database .* or one of its journals; writing there would destroy the vault/);
      assert.match(backup.stderr, /Nothing was written/);
    }
    assert.deepEqual(fs.readFileSync(database), before);
    assert.equal(fs.existsSync(`${database}-journal`), false);
  });

  it('still copies into the data folder with --allow-data-dir', async () => {
    const copy = path.join(t.dir, 'copy.db');
    const backup = await runCli(['backup', '--to', copy, '--allow-data-dir'], env);
    assert.equal(backup.code, 0, backup.stderr);
    assert.equal(fs.statSync(copy).mode & 0o777, 0o600);
  });
});
