import type { BackupKey, KeyBackupContents } from '../crypto/key-backup.js';
import type { StoredKeyCheck } from './stored-key-checks.js';

/**
 * Formats restored keys as a key file that the file key source reads: one base64 key per line, each
 * after a `#` comment with its key id, state and the start of its key check value.
 */
export function formatKeyFile(contents: KeyBackupContents, restoredAt: Date): string {
  const lines = [
    `# AEGIS master keys restored on ${restoredAt.toISOString()} from a key backup made on ${contents.createdAt}.`,
    '# One base64 key per line. Keep this file apart from the database and its backups, mode 0600.',
  ];
  for (const entry of contents.keys) {
    lines.push(`# ${entry.keyId} (${entry.state} when backed up, key check value ${entry.checkValue.slice(0, 8)}...)`, entry.key.toString('base64'));
  }
  return `${lines.join('\n')}\n`;
}

/** Lists the registered keys the data still needs (current and active) for which the backup contains no matching key. */
export function missingFromBackup(keys: BackupKey[], stored: StoredKeyCheck[]): StoredKeyCheck[] {
  const backedUpCheckValues = new Set(keys.map((entry) => entry.checkValue));
  return stored.filter((record) => record.state !== 'retired' && !backedUpCheckValues.has(record.checkValue));
}

/**
 * Lists the retired keys that signed audit checkpoints and that the backup lacks. Values open without
 * them, so a restore goes ahead, but `aegis audit verify` cannot check those checkpoints.
 */
export function missingCheckpointSigners(keys: BackupKey[], stored: StoredKeyCheck[]): StoredKeyCheck[] {
  const backedUpCheckValues = new Set(keys.map((entry) => entry.checkValue));
  return stored.filter((record) => record.state === 'retired' && record.signsCheckpoints && !backedUpCheckValues.has(record.checkValue));
}
