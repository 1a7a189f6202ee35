import fs from 'node:fs';
import type { Logger } from 'pino';
import type { KeySource } from '../config/config.js';
import { tableExists, type Db, type Executor } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import { StartupError } from '../lib/errors.js';
import { keyCheckValue, newKeyId, newSalt } from './key-material.js';
import { checkKeySource, createKeyFile, describeKeySource, readKeyCandidates } from './key-sources.js';
import type { DataKeyCacheOptions } from './data-key-cache.js';
import { defaultDataKeyCache, Keyring } from './keyring.js';
import { insertMasterKey, listMasterKeys, type MasterKeyRecord } from './master-keys.repository.js';

/**
 * Checks the configured master keys against the vault before anything is written: every key the data
 * still uses must be present, and the current one must match its key check value. Runs before migrations,
 * so a wrong key stops start-up with the database untouched.
 */
export async function verifyKeyring(
  db: Db,
  source: KeySource,
  cache: DataKeyCacheOptions = defaultDataKeyCache,
): Promise<{ keyring: Keyring; registered: boolean }> {
  const records = (await tableExists(db, 'aegis_master_keys')) ? await listMasterKeys(db.kysely) : [];
  if (records.length === 0) {
    // A new vault: reject an unusable key source now, because migrations write the schema next.
    checkKeySource(source);
    return { keyring: new Keyring(new Map(), resolverFor(db, source), cache), registered: false };
  }
  if (source.kind === 'file' && source.generated && !fs.existsSync(source.path)) {
    throw new StartupError(
      `The vault at ${db.location} has master keys but the key file ${source.path} is missing. Restore it, or set AEGIS_MASTER_KEY_FILE to where it is; nothing was written.`,
    );
  }
  const keys = matchKeys(records, source);
  for (const record of records) {
    if (record.state === 'retired' || keys.has(record.keyId)) continue;
    const which = record.state === 'current' ? 'current master key' : 'master key still in use';
    throw new StartupError(
      `The ${describeKeySource(source)} does not hold the ${which} ${record.keyId} of the vault at ${db.location} (its key check value is ${record.checkValue.slice(0, 8)}...). It is the wrong key for this vault; point AEGIS at the right one. Nothing was written.`,
    );
  }
  return { keyring: new Keyring(keys, resolverFor(db, source), cache), registered: true };
}

/**
 * Registers the first master key of a new vault, after migrations made the tables. With the default key
 * file this also creates the file; the caller warns that a key beside the data is for development only.
 */
export async function registerFirstKey(db: Db, source: KeySource, clock: Clock, log: Logger): Promise<{ keyId: string; key: Buffer }> {
  if (source.kind === 'file' && source.generated && !fs.existsSync(source.path)) {
    try {
      createKeyFile(source.path);
      log.warn({ keyFile: source.path }, 'generated a master key file beside the data; for production keep the key apart (AEGIS_MASTER_KEY_FILE)');
    } catch (error) {
      // Another process starting on the same new data folder created it first; its key is used.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      await waitForContent(source.path);
    }
  }
  const salt = source.kind === 'passphrase' ? newSalt() : null;
  const [candidate] = readKeyCandidates(source, salt ? [salt] : []);
  if (!candidate) throw new StartupError(`The ${describeKeySource(source)} holds no master key.`);
  const keyId = newKeyId();
  await insertMasterKey(db.kysely, {
    keyId,
    state: 'current',
    checkValue: keyCheckValue(candidate.key),
    source: source.kind,
    kdfSalt: candidate.kdfSalt,
    createdAt: clock.now().toISOString(),
  });
  return { keyId, key: candidate.key };
}

/** Waits up to a second for a key file that another process has created to get its content, which it writes right after. */
async function waitForContent(file: string): Promise<void> {
  for (let attempt = 0; attempt < 20 && fs.statSync(file).size === 0; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 50));
}

function matchKeys(records: MasterKeyRecord[], source: KeySource): Map<string, Buffer> {
  const salts = records.flatMap((record) => (record.kdfSalt && record.state !== 'retired' ? [record.kdfSalt] : []));
  const byCheckValue = new Map(readKeyCandidates(source, salts).map((candidate) => [keyCheckValue(candidate.key), candidate.key]));
  const keys = new Map<string, Buffer>();
  for (const record of records) {
    const key = byCheckValue.get(record.checkValue);
    if (key) keys.set(record.keyId, key);
  }
  return keys;
}

/** Looks a key up again in the source, for keys another process added while this one runs. */
function resolverFor(db: Db, source: KeySource) {
  return async (keyId: string, executor?: Executor): Promise<Buffer | undefined> => {
    const record = (await listMasterKeys(executor ?? db.kysely)).find((entry) => entry.keyId === keyId);
    if (!record) return undefined;
    const candidates = readKeyCandidates(source, record.kdfSalt ? [record.kdfSalt] : []);
    return candidates.find((candidate) => keyCheckValue(candidate.key) === record.checkValue)?.key;
  };
}
