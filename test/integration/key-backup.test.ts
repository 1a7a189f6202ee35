import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { collectKeys } from '../../src/backup/collect-keys.js';
import { KeyBackupError, openKeyBackup, sealKeyBackup } from '../../src/crypto/key-backup.js';
import { keyCheckValue } from '../../src/crypto/key-material.js';
import { readKeyFile } from '../../src/crypto/key-sources.js';
import { Keyring } from '../../src/crypto/keyring.js';
import { listMasterKeys } from '../../src/crypto/master-keys.repository.js';
import { rotateMasterKey } from '../../src/crypto/master-key-rotation.js';
import { openDatabase } from '../../src/db/database.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const passphrase = 'recovery phrase: quiet-otter-47-maple';
const values = { 'backup-alpha': 'alpha-value-7f3c9e1d', 'backup-beta': 'beta-välue-ü-🔑-42' };

function modeOf(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

/** Lists every spelling of a secret that could leak: as written, and its bytes in base64, base64url and hex. */
function spellings(secret: string | Buffer): string[] {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  const forms = [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')];
  return typeof secret === 'string' ? [secret, ...forms] : forms;
}

function assertNoSecrets(text: string, secrets: Array<string | Buffer>, where: string): void {
  for (const secret of secrets) {
    for (const spelling of spellings(secret)) assert.ok(!text.includes(spelling), `${where} contains a secret (${spelling.length} characters)`);
  }
}

function outputOf(result: CliResult): string {
  return `${result.stdout}\n${result.stderr}`;
}

for (const dialect of await testDialects()) {
  describe(`aegis keys backup and restore on ${dialect}`, () => {
    let t: TestVault;
    let safe: string;
    let env: Record<string, string>;
    let keys: Buffer[];
    const otherVaultKeys: Buffer[] = [];
    const outputs: string[] = [];

    /** Runs the CLI against the test vault with the recovery passphrase set, and keeps the output for the secret search. */
    async function aegis(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
      const result = await runCli(args, { ...env, ...extraEnv });
      outputs.push(outputOf(result));
      return result;
    }

    before(async () => {
      t = await openTestVault(dialect);
      for (const [name, value] of Object.entries(values)) {
        const created = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name, credential_type: 'apiKey', provider: 'api', value } });
        assert.equal(created.status, 201, created.body);
      }
      // Two registered keys: the first becomes retired, the second current.
      await rotateMasterKey(t.vault.db, t.vault.keyring, t.vault.config.keySource, t.vault.clock, { settleMs: 0 });
      await t.close();
      keys = readKeyFile(path.join(t.dir, 'master.key'));
      safe = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-safe-'));
      env = { ...t.env, AEGIS_LOG_LEVEL: 'warn', AEGIS_RECOVERY_PASSPHRASE: passphrase };
    });

    after(async () => {
      const secrets: Array<string | Buffer> = [passphrase, ...Object.values(values), ...keys, ...otherVaultKeys];
      assertNoSecrets(outputs.join('\n'), secrets, 'CLI output');
      await destroyTestVault(t);
      fs.rmSync(safe, { recursive: true, force: true });
    });

    /**
     * Closes a second vault and backs up its keys; returns the backup, a key file path to restore to
     * and the environment for CLI calls on that vault.
     */
    async function backUpAnotherVault(vault: TestVault, name: string): Promise<{ backupFile: string; keyFile: string; env: Record<string, string> }> {
      const backupFile = path.join(safe, `${name}.json`);
      const keyFile = path.join(safe, `${name}.key`);
      await vault.close();
      const vaultEnv = { ...vault.env, AEGIS_LOG_LEVEL: 'warn', AEGIS_RECOVERY_PASSPHRASE: passphrase };
      const backup = await runCli(['keys', 'backup', '--to', backupFile], vaultEnv);
      assert.equal(backup.code, 0, backup.stderr);
      otherVaultKeys.push(...readKeyFile(path.join(vault.dir, 'master.key')));
      return { backupFile, keyFile, env: vaultEnv };
    }

    /** Counts the keys_restored entries in a closed vault's audit log. */
    async function restoreEntries(vault: TestVault): Promise<number> {
      const db = await openDatabase(vault.config);
      try {
        const entries = await db.kysely.selectFrom('aegis_audit_log').select('id').where('action', '=', 'keys_restored').execute();
        return entries.length;
      } finally {
        await db.close();
      }
    }

    it('round-trips every key', async () => {
      assert.equal(keys.length, 2);
      const file = path.join(safe, 'round-trip.json');
      const backup = await aegis(['keys', 'backup', '--to', file]);
      assert.equal(backup.code, 0, backup.stderr);
      assert.match(backup.stdout, /wrote 2 master key\(s\)/);
      assert.equal(modeOf(file), 0o600);

      const text = fs.readFileSync(file, 'utf8');
      const parsed = JSON.parse(text);
      assert.equal(parsed.format, 'aegis-key-backup');
      assert.equal(parsed.version, 1);
      assert.equal(parsed.kdf.name, 'scrypt');
      assert.ok(parsed.kdf.N >= 2 ** 17, `scrypt N ${parsed.kdf.N}`);
      assert.equal(parsed.cipher, 'aes-256-gcm');
      for (const field of ['nonce', 'ciphertext', 'tag']) assert.equal(typeof parsed[field], 'string', field);
      assertNoSecrets(text, [passphrase, ...keys], 'the backup file');

      const keyFile = path.join(safe, 'restored.key');
      const restore = await aegis(['keys', 'restore', '--from', file, '--to-key-file', keyFile]);
      assert.equal(restore.code, 0, restore.stderr);
      assert.match(restore.stdout, /database check: every current and active key of the vault at .* matches/);
      assert.match(restore.stdout, /AEGIS_MASTER_KEY_FILE=/);
      assert.equal(modeOf(keyFile), 0o600);
      const restored = readKeyFile(keyFile).map((key) => key.toString('base64')).sort();
      assert.deepEqual(restored, keys.map((key) => key.toString('base64')).sort());

      const records = await withDatabase((db) => listMasterKeys(db));
      assert.equal(records.length, 2);
      const audited = await withDatabase((db) => db.selectFrom('aegis_audit_log').selectAll().where('action', '=', 'keys_backed_up').execute());
      assert.equal(audited.length, 1);
      assert.equal(audited[0]!.target, `file:${file}`);
      assert.match(restore.stdout, /audit entry: written \(keys_restored\)/);
      const restoreEntries = await withDatabase((db) => db.selectFrom('aegis_audit_log').selectAll().where('action', '=', 'keys_restored').execute());
      assert.equal(restoreEntries.length, 1);
      assert.equal(restoreEntries[0]!.target, `file:${keyFile}`);
      assert.match(JSON.stringify(restoreEntries[0]!.details), /mk_/);
      assertNoSecrets(JSON.stringify(restoreEntries), [passphrase, ...keys], 'the restore audit entry');
      for (const record of records) {
        assert.ok(readKeyFile(keyFile).some((key) => keyCheckValue(key) === record.checkValue), `no restored key for ${record.keyId}`);
      }
    });

    it('opens the vault with the restored key file', async () => {
      const file = path.join(safe, 'reopen.json');
      assert.equal((await aegis(['keys', 'backup', '--to', file])).code, 0);
      const keyFile = path.join(safe, 'reopen.key');
      const restored = await aegis(['keys', 'restore', '--from', file, '--to-key-file', keyFile]);
      assert.equal(restored.code, 0, restored.stderr);
      assert.doesNotMatch(restored.stdout, /inside the data folder/);
      // A key file restored into the data folder works, with a warning.
      const beside = await aegis(['keys', 'restore', '--from', file, '--to-key-file', path.join(t.dir, 'restored.key')]);
      assert.equal(beside.code, 0, beside.stderr);
      assert.match(beside.stdout, /^warning: .*restored\.key is inside the data folder .*, so a copy of the data contains its key/m);
      fs.rmSync(path.join(t.dir, 'restored.key'));

      const reopened = await openTestVault(dialect, {
        reuse: { dir: t.dir, schema: t.env.AEGIS_DATABASE_SCHEMA },
        env: { AEGIS_MASTER_KEY_FILE: keyFile },
      });
      try {
        for (const [name, value] of Object.entries(values)) {
          const revealed = await call(reopened.app, 'GET', `/credentials/${name}/value`, { token: t.adminToken });
          assert.equal(revealed.status, 200, revealed.body);
          assert.equal(revealed.json.value, value);
        }
      } finally {
        await reopened.close();
      }
    });

    it('rejects a wrong passphrase', async () => {
      const file = path.join(safe, 'wrong-passphrase.json');
      assert.equal((await aegis(['keys', 'backup', '--to', file])).code, 0);
      const keyFile = path.join(safe, 'wrong-passphrase.key');
      const restore = await aegis(['keys', 'restore', '--from', file, '--to-key-file', keyFile], { AEGIS_RECOVERY_PASSPHRASE: 'another phrase, also long enough' });
      assert.equal(restore.code, 1);
      assert.match(restore.stderr, /The recovery passphrase is wrong, or the backup file was changed\. Nothing was written\./);
      assert.equal(fs.existsSync(keyFile), false);
    });

    it('rejects a short passphrase', async () => {
      const file = path.join(safe, 'short.json');
      const backup = await aegis(['keys', 'backup', '--to', file], { AEGIS_RECOVERY_PASSPHRASE: 'short-phrase' });
      assert.equal(backup.code, 1);
      assert.match(backup.stderr, /passphrase is too weak; use at least 16 characters/);
      assert.equal(fs.existsSync(file), false);
    });

    it('reads a passphrase file of mode 0600 only', async () => {
      const passphraseFile = path.join(safe, 'passphrase.txt');
      fs.writeFileSync(passphraseFile, `${passphrase}\n`, { mode: 0o644 });
      fs.chmodSync(passphraseFile, 0o644);
      const file = path.join(safe, 'from-file.json');
      const exposed = await aegis(['keys', 'backup', '--to', file, '--passphrase-file', passphraseFile], { AEGIS_RECOVERY_PASSPHRASE: '' });
      assert.equal(exposed.code, 1);
      assert.match(exposed.stderr, /is readable by other users \(mode 644\)/);
      assert.equal(fs.existsSync(file), false);

      fs.chmodSync(passphraseFile, 0o600);
      const backup = await aegis(['keys', 'backup', '--to', file, '--passphrase-file', passphraseFile], { AEGIS_RECOVERY_PASSPHRASE: '' });
      assert.equal(backup.code, 0, backup.stderr);
      assert.equal(openKeyBackup(fs.readFileSync(file, 'utf8'), passphrase).keys.length, 2);

      const both = path.join(safe, 'from-both.json');
      const twice = await aegis(['keys', 'backup', '--to', both, '--passphrase-file', passphraseFile]);
      assert.equal(twice.code, 2, twice.stderr);
      assert.equal(twice.stderr, 'aegis: Give the recovery passphrase once: --passphrase-file or AEGIS_RECOVERY_PASSPHRASE, not both. Nothing was written.\n');
      assert.equal(fs.existsSync(both), false);
    });

    it('rejects locations beside the data', async () => {
      const nested = path.join(t.dir, 'backups');
      fs.mkdirSync(nested, { recursive: true });
      const link = path.join(safe, 'link-to-data');
      fs.symlinkSync(t.dir, link);
      const cases = [
        { file: path.join(t.dir, 'keys.json'), reason: /is inside the data folder/ },
        { file: path.join(nested, 'keys.json'), reason: /is inside the data folder/ },
        { file: path.join(link, 'keys.json'), reason: /is inside the data folder/ },
      ];
      for (const { file, reason } of cases) {
        const backup = await aegis(['keys', 'backup', '--to', file]);
        assert.equal(backup.code, 1, file);
        assert.match(backup.stderr, reason, file);
        assert.match(backup.stderr, /Nothing was written\./, file);
        assert.equal(fs.existsSync(file), false, file);
      }
    });

    it('never overwrites without --force', async () => {
      const file = path.join(safe, 'once.json');
      assert.equal((await aegis(['keys', 'backup', '--to', file])).code, 0);
      const first = fs.readFileSync(file, 'utf8');

      const again = await aegis(['keys', 'backup', '--to', file]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already exists; pass --force to replace it/);
      assert.equal(fs.readFileSync(file, 'utf8'), first);

      const forced = await aegis(['keys', 'backup', '--to', file, '--force']);
      assert.equal(forced.code, 0, forced.stderr);
      assert.notEqual(fs.readFileSync(file, 'utf8'), first);
      assert.equal(modeOf(file), 0o600);

      const keyFile = path.join(safe, 'existing.key');
      fs.writeFileSync(keyFile, '# placeholder\n', { mode: 0o600 });
      const restore = await aegis(['keys', 'restore', '--from', file, '--to-key-file', keyFile]);
      assert.equal(restore.code, 1);
      assert.match(restore.stderr, /already exists; pass --force to replace it/);
      assert.equal(fs.readFileSync(keyFile, 'utf8'), '# placeholder\n');
    });

    it('never writes over the database or a folder', async () => {
      const file = path.join(safe, 'guard.json');
      assert.equal((await aegis(['keys', 'backup', '--to', file])).code, 0);
      if (dialect === 'sqlite') {
        const database = path.join(t.dir, 'aegis.db');
        const before = fs.readFileSync(database);
        for (const target of [database, `${database}-wal`]) {
          const restore = await aegis(['keys', 'restore', '--from', file, '--to-key-file', target, '--force']);
          assert.equal(restore.code, 1, restore.stderr);
          assert.match(restore.stderr, /is the vault's SQLite database .* or one of its journals; writing there would destroy the vault/);
        }
        assert.deepEqual(fs.readFileSync(database), before);
      }
      const folder = fs.mkdtempSync(path.join(safe, 'folder-'));
      for (const args of [['keys', 'backup', '--to', folder, '--force'], ['keys', 'restore', '--from', file, '--to-key-file', folder, '--force']]) {
        const result = await aegis(args);
        assert.equal(result.code, 1, result.stderr);
        assert.equal(result.stderr, `aegis: ${folder} is a folder; give the path of a file. Nothing was written.\n`);
      }
    });

    it('rejects a backup of another vault', async () => {
      const other = await openTestVault(dialect);
      const otherFile = path.join(safe, 'other-vault.json');
      try {
        await other.close();
        const otherBackup = await runCli(['keys', 'backup', '--to', otherFile], { ...other.env, AEGIS_LOG_LEVEL: 'warn', AEGIS_RECOVERY_PASSPHRASE: passphrase });
        assert.equal(otherBackup.code, 0, otherBackup.stderr);
        otherVaultKeys.push(...readKeyFile(path.join(other.dir, 'master.key')));
      } finally {
        await destroyTestVault(other);
      }

      const keyFile = path.join(safe, 'other-vault.key');
      const restore = await aegis(['keys', 'restore', '--from', otherFile, '--to-key-file', keyFile]);
      assert.equal(restore.code, 1);
      assert.match(restore.stderr, /The key backup does not match the vault at .*: it contains no key for the current master key mk_[0-9a-f]+/);
      assert.equal(fs.existsSync(keyFile), false);

      const unchecked = await aegis(['keys', 'restore', '--from', otherFile, '--to-key-file', keyFile, '--no-database-check']);
      assert.equal(unchecked.code, 0, unchecked.stderr);
      assert.match(unchecked.stdout, /database check: not checked \(--no-database-check\)/);
      assert.match(unchecked.stdout, /audit entry: not written: the keys were not checked against the database/);
    });

    it('records nothing for a vault without registered keys', async () => {
      const bare = await openTestVault(dialect);
      try {
        const { backupFile, keyFile, env: bareEnv } = await backUpAnotherVault(bare, 'no-keys');
        // Only the database is opened here: opening the vault would register the key again.
        const db = await openDatabase(bare.config);
        try {
          await db.kysely.deleteFrom('aegis_master_keys').execute();
        } finally {
          await db.close();
        }

        const restore = await runCli(['keys', 'restore', '--from', backupFile, '--to-key-file', keyFile], bareEnv);
        outputs.push(outputOf(restore));
        assert.equal(restore.code, 0, restore.stderr);
        assert.match(restore.stdout, /database check: not checked: the vault at .* has no registered master key/);
        assert.match(restore.stdout, /audit entry: not written: the keys were not checked against the database/);
        assert.equal(await restoreEntries(bare), 0);
      } finally {
        await destroyTestVault(bare);
      }
    });

    it('records nothing while migrations are pending', async () => {
      const behind = await openTestVault(dialect);
      try {
        const { backupFile, keyFile, env: behindEnv } = await backUpAnotherVault(behind, 'behind');
        // The vault now looks as if an older AEGIS had created it: its newest migration is not applied.
        const db = await openDatabase(behind.config);
        let newest: string;
        try {
          const applied = await sql<{ name: string }>`select name from aegis_migrations order by name desc limit 1`.execute(db.kysely);
          newest = applied.rows[0]!.name;
          await sql`delete from aegis_migrations where name = ${newest}`.execute(db.kysely);
        } finally {
          await db.close();
        }

        const restore = await runCli(['keys', 'restore', '--from', backupFile, '--to-key-file', keyFile], behindEnv);
        outputs.push(outputOf(restore));
        assert.equal(restore.code, 1, restore.stderr);
        assert.ok(fs.existsSync(keyFile), 'the key file is written although the entry is not');
        assert.match(restore.stdout, new RegExp(`audit entry: not written: the database lacks migrations ${newest}`));
        assert.equal(await restoreEntries(behind), 0);
      } finally {
        await destroyTestVault(behind);
      }
    });

    it('rejects a key that fails its check value', async () => {
      await withDatabase(async (db) => {
        const records = await listMasterKeys(db);
        const wrong = new Keyring(new Map(records.map((record) => [record.keyId, crypto.randomBytes(32)])));
        await assert.rejects(collectKeys(db, wrong), (error: unknown) => {
          assert.ok(error instanceof KeyBackupError, String(error));
          assert.match(error.message, /does not match its stored key check value/);
          return true;
        });
      });
    });

    /** Reopens the test vault's database for `run` (the in-process vault was closed for the CLI runs). */
    async function withDatabase<T>(run: (db: TestVault['vault']['db']['kysely']) => Promise<T>): Promise<T> {
      const reopened = await openTestVault(dialect, { reuse: { dir: t.dir, schema: t.env.AEGIS_DATABASE_SCHEMA } });
      try {
        return await run(reopened.vault.db.kysely);
      } finally {
        await reopened.close();
      }
    }
  });
}

describe('key backup file', () => {
  const key = crypto.randomBytes(32);
  const entry = { keyId: 'mk_0123456789ab', state: 'current', checkValue: keyCheckValue(key), createdAt: '2026-01-01T00:00:00.000Z', key };

  it('fails to open after a header change', () => {
    const sealed = JSON.parse(sealKeyBackup([entry], passphrase, new Date('2026-06-01T00:00:00Z')));
    const lowered = JSON.stringify({ ...sealed, kdf: { ...sealed.kdf, N: 2 ** 15 } });
    assert.throws(() => openKeyBackup(lowered, passphrase), /The recovery passphrase is wrong, or the backup file was changed/);
    const redated = JSON.stringify({ ...sealed, created_at: '2020-01-01T00:00:00.000Z' });
    assert.throws(() => openKeyBackup(redated, passphrase), /The recovery passphrase is wrong, or the backup file was changed/);
    assert.equal(openKeyBackup(JSON.stringify(sealed), passphrase).keys[0]!.key.equals(key), true);
  });

  it('names a truncated file as damaged', () => {
    const sealed = sealKeyBackup([entry], passphrase, new Date('2026-06-01T00:00:00Z'));
    assert.throws(() => openKeyBackup(sealed.slice(0, sealed.length / 2), passphrase), /The file is not JSON: it is damaged or truncated/);
  });

  it('rejects weak scrypt parameters', () => {
    const sealed = JSON.parse(sealKeyBackup([entry], passphrase, new Date('2026-06-01T00:00:00Z')));
    const weak = JSON.stringify({ ...sealed, kdf: { ...sealed.kdf, N: 2 ** 10 } });
    assert.throws(() => openKeyBackup(weak, passphrase), /scrypt parameters are invalid or out of bounds/);
  });

  it('rejects a key with a wrong check value', () => {
    assert.throws(() => sealKeyBackup([{ ...entry, checkValue: '0'.repeat(32) }], passphrase, new Date()), /does not match its key check value/);
  });
});
