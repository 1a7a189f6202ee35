import fs from 'node:fs';
import { sql } from 'kysely';
import type { Config, KeySource } from '../config/config.js';
import { verifyKeyring } from '../crypto/keyring-loader.js';
import { listMasterKeys } from '../crypto/master-keys.repository.js';
import { describeKeySource } from '../crypto/key-sources.js';
import type { Db } from '../db/database.js';
import { describeNewerSchema, newerSchemaFix, pendingMigrations, unknownAppliedMigrations } from '../db/migrate.js';
import type { Clock } from '../lib/clock.js';
import { StartupError } from '../lib/errors.js';
import { errorText, fail, ok, setting, skip, warn, type CheckResult } from './check.js';
import { openReadOnlyDatabase } from './read-only-database.js';

/** Clock differences to the database server above which the doctor warns and fails, in milliseconds. */
const clockWarnMs = 5_000;
const clockFailMs = 60_000;

/** The checks that query the database, in report order. Each is skipped when the database cannot be opened. */
const queryCheckNames = ['migrations', 'master key', 'clock'];

/** Every check `checkDatabase` reports, in report order. */
export const databaseCheckNames = ['database', ...queryCheckNames];

/**
 * Checks the database without writing to it: that it is reachable, that every migration is applied,
 * that the configured master key matches the stored key check values, and that the clocks agree.
 * When the database cannot be opened, that failure is returned with the other checks skipped.
 */
export async function checkDatabase(config: Config, clock: Clock): Promise<CheckResult[]> {
  let db: Db;
  try {
    db = await openReadOnlyDatabase(config);
    await sql`select 1`.execute(db.kysely);
  } catch (error) {
    return [unreachable(config, error), ...queryCheckNames.map((name) => skip(name, 'database'))];
  }
  try {
    return [
      ok('database', `${db.dialect === 'postgres' ? 'PostgreSQL' : 'SQLite'} at ${db.location} is reachable`),
      await checkMigrations(db),
      await checkMasterKey(db, config.keySource),
      await checkClock(db, clock),
    ];
  } finally {
    await db.close();
  }
}

function unreachable(config: Config, error: unknown): CheckResult {
  const reason = errorText(error);
  if (config.databaseUrl) {
    return fail(
      'database',
      `Cannot connect to PostgreSQL: ${reason}.`,
      `Start PostgreSQL or correct ${setting('storage.database_url', 'DATABASE_URL')}; test it with \`psql "$DATABASE_URL" -c 'select 1'\`.`,
    );
  }
  if (!fs.existsSync(config.sqlitePath)) {
    return fail(
      'database',
      `The SQLite file ${config.sqlitePath} does not exist.`,
      `Run \`aegis init\` to create the vault, or set ${setting('storage.sqlite_path', 'AEGIS_SQLITE_PATH')} to the existing file.`,
    );
  }
  return fail('database', `Cannot open the SQLite file ${config.sqlitePath}: ${reason}.`, `Check that ${config.sqlitePath} is an AEGIS database and readable by this user.`);
}

async function checkMigrations(db: Db): Promise<CheckResult> {
  if (db.dialect === 'postgres' && db.schema !== undefined) {
    const found = await sql<{ found: boolean }>`select exists (select 1 from pg_namespace where nspname = ${db.schema}) as found`.execute(db.kysely);
    if (!found.rows[0]?.found) {
      // A first start creates the schema and an empty vault in it, which a misspelled name would hide.
      return fail(
        'migrations',
        `The schema ${db.schema} does not exist in the database, so it holds no vault yet.`,
        `Check ${setting('storage.database_schema', 'AEGIS_DATABASE_SCHEMA')}: a first start with a misspelled name creates a new, empty vault. For a new vault, run \`aegis migrate\`.`,
      );
    }
  }
  const unknown = await unknownAppliedMigrations(db);
  if (unknown.length > 0) return fail('migrations', describeNewerSchema(db, unknown), newerSchemaFix);
  const pending = await pendingMigrations(db);
  if (pending.length === 0) return ok('migrations', 'every migration is applied');
  return fail(
    'migrations',
    `${pending.length} migration(s) are not applied: ${pending.join(', ')}.`,
    'Run `aegis migrate` (or start `aegis serve`, which applies them before anything else).',
  );
}

/** Runs the start-up key check, which only reads: key registration happens later, in `registerFirstKey`. */
async function checkMasterKey(db: Db, source: KeySource): Promise<CheckResult> {
  try {
    const { registered } = await verifyKeyring(db, source);
    if (!registered) return ok('master key', `the ${describeKeySource(source)} is usable; the first start registers it`);
    const states = (await listMasterKeys(db.kysely)).map((record) => record.state);
    if (!states.includes('current')) {
      return fail('master key', 'The vault has master keys but none is current, so every write fails.', 'Run `aegis keys rotate` once to make a new key current.');
    }
    if (states.includes('active')) {
      return warn(
        'master key',
        `The ${describeKeySource(source)} matches, but ${states.filter((state) => state === 'active').length} key(s) beside the current one are still active: a master key rotation stopped part-way, or is running now. Values still open.`,
        'Unless a rotation is running, run `aegis keys rotate` to re-wrap the remaining values and retire the old keys.',
      );
    }
    return ok('master key', `the ${describeKeySource(source)} matches the vault's key check values`);
  } catch (error) {
    if (!(error instanceof StartupError)) throw error;
    return fail('master key', error.message.replace(/ Nothing was written\.$/, ''), masterKeyFix(source));
  }
}

function masterKeyFix(source: KeySource): string {
  if (source.kind === 'file' && fs.existsSync(source.path) && (fs.statSync(source.path).mode & 0o077) !== 0) {
    return `Run \`chmod 600 ${source.path}\`.`;
  }
  switch (source.kind) {
    case 'file':
      return `Set ${setting('keys.master_key_file', 'AEGIS_MASTER_KEY_FILE')} to the key file this vault was created with, or restore that file from a backup.`;
    case 'env':
      return `Set ${setting('keys.master_key', 'AEGIS_MASTER_KEY')} to this vault's master keys (every key still in use, comma-separated).`;
    case 'passphrase':
      return `Set ${setting('keys.passphrase', 'AEGIS_MASTER_PASSPHRASE')} to the passphrase this vault was created with.`;
  }
}

/** Compares PostgreSQL's now() with the local clock; SQLite has no server clock to compare. */
async function checkClock(db: Db, clock: Clock): Promise<CheckResult> {
  if (db.dialect !== 'postgres') return ok('clock', 'SQLite uses the local clock; there is no server clock to compare');
  const before = clock.now().getTime();
  const result = await sql<{ now: Date }>`select now() as now`.execute(db.kysely);
  const after = clock.now().getTime();
  const server = new Date(result.rows[0]!.now).getTime();
  // Compare with the middle of the round trip, so a slow query does not count as clock difference.
  const differenceMs = server - (before + after) / 2;
  const seconds = (Math.abs(differenceMs) / 1000).toFixed(1);
  const direction = differenceMs > 0 ? 'ahead of' : 'behind';
  const fix = 'Synchronize both hosts with NTP (e.g. `timedatectl set-ntp true`); leases, expiry and audit times depend on it.';
  if (Math.abs(differenceMs) > clockFailMs) return fail('clock', `The PostgreSQL server's clock is ${seconds} s ${direction} the local clock.`, fix);
  if (Math.abs(differenceMs) > clockWarnMs) return warn('clock', `The PostgreSQL server's clock is ${seconds} s ${direction} the local clock.`, fix);
  return ok('clock', `the local clock and PostgreSQL's agree within ${seconds} s`);
}
