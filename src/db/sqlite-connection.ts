import BetterSqlite3 from 'better-sqlite3';

/** WAL pages after which SQLite copies the WAL back into the database file. */
const walCheckpointPages = 10_000;

/**
 * Opens a connection to AEGIS's SQLite file with the settings every connection of the process uses:
 * the one that serves requests and the audit writer thread's.
 */
export function openSqliteConnection(file: string, options: { busyTimeoutMs?: number } = {}): BetterSqlite3.Database {
  const raw = new BetterSqlite3(file);
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = NORMAL');
  raw.pragma('foreign_keys = ON');
  // How long a statement waits for another connection's write lock before it fails with SQLITE_BUSY.
  raw.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5_000}`);
  // A checkpoint copies the WAL into the database file and stalls the connection's thread meanwhile. At
  // SQLite's default of 1,000 pages (4 MB), B1's p99 was 15 ms. At 10,000 pages (about 40 MB of WAL) it
  // was 8 to 9 ms, because a busy vault checkpointed ten times less often.
  raw.pragma(`wal_autocheckpoint = ${walCheckpointPages}`);
  return raw;
}
