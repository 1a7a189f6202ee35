import { keyCheckValue } from '../crypto/key-material.js';
import type { BackupKey } from '../crypto/key-backup.js';
import { KeyBackupError } from '../crypto/key-backup.js';
import { KeyUnavailableError, type Keyring } from '../crypto/keyring.js';
import { listMasterKeys } from '../crypto/master-keys.repository.js';
import type { Executor } from '../db/database.js';

export interface CollectedKeys {
  keys: BackupKey[];
  /** Retired keys the key source no longer holds; the data does not need them, old database backups may. */
  missingRetired: string[];
}

/**
 * Collects every registered master key the keyring can supply, checking each against its stored key
 * check value. A current or active key that is missing or does not match throws, because a backup
 * without it could not open the data.
 */
export async function collectKeys(db: Executor, keyring: Pick<Keyring, 'key'>): Promise<CollectedKeys> {
  const keys: BackupKey[] = [];
  const missingRetired: string[] = [];
  for (const record of await listMasterKeys(db)) {
    let key: Buffer;
    try {
      key = await keyring.key(record.keyId);
    } catch (error) {
      if (!(error instanceof KeyUnavailableError)) throw error;
      if (record.state === 'retired') {
        missingRetired.push(record.keyId);
        continue;
      }
      throw new KeyBackupError(`The configured key source does not hold the ${record.state} master key ${record.keyId}; nothing was written.`);
    }
    if (keyCheckValue(key) !== record.checkValue) {
      throw new KeyBackupError(
        `Master key ${record.keyId} does not match its stored key check value ${record.checkValue.slice(0, 8)}...; nothing was written. Check the key source before backing it up.`,
      );
    }
    keys.push({ keyId: record.keyId, state: record.state, checkValue: record.checkValue, createdAt: record.createdAt, key });
  }
  return { keys, missingRetired };
}
