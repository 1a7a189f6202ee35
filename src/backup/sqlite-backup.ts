import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CommandError } from '../cli/context.js';
import { processIsGone } from '../lib/process.js';
import { removeOnSignal } from '../lib/remove-on-signal.js';
import { publishFile } from './secret-file.js';

export interface SqliteBackupResult {
  bytes: number;
  credentials: number;
  auditEntries: number;
}

/**
 * Copies the SQLite database to `file` with SQLite's online backup API while servers keep writing:
 * the copy is one consistent snapshot, because SQLite restarts the copy when another connection writes
 * meanwhile. The copy is checked with `pragma integrity_check`, switched from WAL to a rollback journal
 * so it is one self-contained file, and only then published under `file` with mode 0600.
 */
export async function backupSqlite(source: string, file: string, force: boolean): Promise<SqliteBackupResult> {
  if (!fs.existsSync(source)) throw new CommandError(`There is no SQLite database at ${source}; check AEGIS_SQLITE_PATH or AEGIS_DATA_DIR.`);
  const folder = path.dirname(path.resolve(file));
  removeStalePartials(folder, path.basename(file));
  const database = new BetterSqlite3(source, { fileMustExist: true });
  const temporary = path.join(folder, `.${path.basename(file)}.${process.pid}.partial`);
  const stopRemoving = removeOnSignal(['', '-wal', '-shm', '-journal'].map((suffix) => `${temporary}${suffix}`), file);
  try {
    return await copyAndPublish(database, source, temporary, file, force);
  } finally {
    stopRemoving();
  }
}

async function copyAndPublish(database: BetterSqlite3.Database, source: string, temporary: string, file: string, force: boolean): Promise<SqliteBackupResult> {
  try {
    database.pragma('busy_timeout = 5000');
    const table = database.prepare("select name from sqlite_master where type = 'table' and name = 'aegis_master_keys'").get();
    if (!table) throw new CommandError(`${source} is not an AEGIS database (it has no aegis_master_keys table).`);
    // Created empty with mode 0600 first, so the copy is never readable by others, not even while it is written.
    fs.closeSync(fs.openSync(temporary, 'wx', 0o600));
    await database.backup(temporary);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  } finally {
    database.close();
  }
  try {
    const result = checkCopy(temporary);
    publishFile(temporary, file, force);
    return result;
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

/**
 * Removes the partial copies (and their SQLite journals) that an earlier backup to the same file left
 * when its process was killed: each is a copy of every sealed value, up to the database's size. A
 * partial file whose process still runs (a backup in progress) stays. One with this process's id is
 * stale too: this process has not started its copy yet, and in a container every run may have the
 * same id.
 */
function removeStalePartials(folder: string, name: string): void {
  const prefix = `.${name}.`;
  for (const entry of fs.readdirSync(folder)) {
    const pid = entry.startsWith(prefix) ? /^(\d+)\.partial(-wal|-shm|-journal)?$/.exec(entry.slice(prefix.length))?.[1] : undefined;
    if (pid === undefined || (Number(pid) !== process.pid && !processIsGone(Number(pid)))) continue;
    fs.rmSync(path.join(folder, entry), { force: true });
  }
}

function checkCopy(file: string): SqliteBackupResult {
  const copy = new BetterSqlite3(file, { fileMustExist: true });
  try {
    const integrity = copy.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') throw new CommandError(`The copy failed SQLite's integrity check (${String(integrity)}); nothing was written. Try again.`);
    copy.pragma('journal_mode = DELETE');
    const count = (table: string) => (copy.prepare(`select count(*) as count from ${table}`).get() as { count: number }).count;
    const credentials = count('aegis_credentials');
    const auditEntries = count('aegis_audit_log');
    copy.close();
    const handle = fs.openSync(file, 'r');
    try {
      fs.fsyncSync(handle);
    } finally {
      fs.closeSync(handle);
    }
    return { bytes: fs.statSync(file).size, credentials, auditEntries };
  } finally {
    if (copy.open) copy.close();
  }
}
