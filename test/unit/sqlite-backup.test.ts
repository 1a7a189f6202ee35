import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { backupSqlite } from '../../src/backup/sqlite-backup.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-sqlite-backup-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Creates a SQLite file with the tables the backup reads. */
function vaultFile(): string {
  const file = path.join(dir, 'aegis.db');
  const db = new BetterSqlite3(file);
  db.exec('create table aegis_master_keys (key_id text); create table aegis_credentials (id text); create table aegis_audit_log (id text); insert into aegis_credentials values (1);');
  db.close();
  return file;
}

describe('SQLite backup', () => {
  it('removes partial copies of stopped backups', async () => {
    const source = vaultFile();
    const backups = fs.mkdtempSync(path.join(dir, 'backups-'));
    // A process that has ended, as a backup killed part-way has.
    const stopped = spawnSync(process.execPath, ['-e', '']).pid!;
    const stale = [`.copy.db.${stopped}.partial`, `.copy.db.${stopped}.partial-journal`].map((name) => path.join(backups, name));
    const running = path.join(backups, `.copy.db.${process.ppid}.partial`);
    const other = path.join(backups, `.other.db.${stopped}.partial`);
    for (const file of [...stale, running, other]) fs.writeFileSync(file, 'x', { mode: 0o600 });

    const result = await backupSqlite(source, path.join(backups, 'copy.db'), false);

    assert.equal(result.credentials, 1);
    for (const file of stale) assert.equal(fs.existsSync(file), false, file);
    assert.equal(fs.existsSync(running), true, 'the partial file of a running process was removed');
    assert.equal(fs.existsSync(other), true, 'the partial file of another backup name was removed');
  });
});
