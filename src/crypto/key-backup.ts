import crypto from 'node:crypto';
import { keyCheckValue, masterKeyBytes, rejectWeakPassphrase } from './key-material.js';

/**
 * Sealed backups of the master keys, written by `aegis keys backup` and read by `aegis keys restore`.
 *
 * The file is JSON: a header (format name, version, creation time, scrypt parameters and salt, cipher)
 * and the AES-256-GCM nonce, ciphertext and tag, binary fields in base64. The sealing key is derived
 * from a recovery passphrase with scrypt. The header is bound into the associated data, so a changed
 * header (weaker scrypt parameters, another salt) fails to open just like a changed ciphertext.
 * Changing the associated-data string or the plaintext layout makes old backups unreadable: such a
 * change needs a new version and a reader for the old one.
 */
export const KEY_BACKUP_FORMAT = 'aegis-key-backup';
export const KEY_BACKUP_VERSION = 1;

/** The variable `aegis keys backup` and `aegis keys restore` read the recovery passphrase from. */
export const RECOVERY_PASSPHRASE_VARIABLE = 'AEGIS_RECOVERY_PASSPHRASE';

/**
 * scrypt cost for new backups: N = 2^17, r = 8, p = 1, which needs 128 MiB of memory and (an estimate)
 * under a second of CPU once per backup or restore. A backup lives long and may be stolen, so the cost is not
 * lowered for speed.
 */
const newBackupScrypt = { N: 2 ** 17, r: 8, p: 1 };
/** Bounds on the parameters a backup file may name: the lower ones keep the cost up, the upper ones cap memory use. */
const scryptBounds = { minLogN: 15, maxLogN: 20, maxR: 32, maxP: 16 };
const nonceBytes = 12;
const tagBytes = 16;
const saltBytes = 16;

/** One master key in a backup: its id, state and key check value as the vault stores them, and the key itself. */
export interface BackupKey {
  keyId: string;
  state: string;
  checkValue: string;
  createdAt: string;
  key: Buffer;
}

export interface KeyBackupContents {
  createdAt: string;
  keys: BackupKey[];
}

interface ScryptParameters {
  name: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  key_bytes: number;
}

/** The JSON fields of a backup file. */
interface KeyBackupFile {
  format: string;
  version: number;
  created_at: string;
  kdf: ScryptParameters;
  cipher: 'aes-256-gcm';
  nonce: string;
  ciphertext: string;
  tag: string;
}

/** A backup that cannot be written or opened; the message names the reason and never contains key material. */
export class KeyBackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyBackupError';
  }
}

/**
 * Seals the keys under a key derived from `passphrase` and returns the file's text. Every key must match
 * its key check value, so a backup never carries a key the vault would not accept.
 */
export function sealKeyBackup(keys: BackupKey[], passphrase: string, createdAt: Date): string {
  rejectWeakPassphrase(passphrase, RECOVERY_PASSPHRASE_VARIABLE);
  if (keys.length === 0) throw new KeyBackupError('There is no master key to back up.');
  for (const entry of keys) assertCheckValue(entry);

  const kdf: ScryptParameters = { name: 'scrypt', ...newBackupScrypt, salt: crypto.randomBytes(saltBytes).toString('base64'), key_bytes: masterKeyBytes };
  const header = { format: KEY_BACKUP_FORMAT, version: KEY_BACKUP_VERSION, created_at: createdAt.toISOString(), kdf, cipher: 'aes-256-gcm' as const };
  const plaintext = Buffer.from(
    JSON.stringify({
      keys: keys.map((entry) => ({
        key_id: entry.keyId,
        state: entry.state,
        check_value: entry.checkValue,
        created_at: entry.createdAt,
        key: entry.key.toString('base64'),
      })),
    }),
    'utf8',
  );
  const sealingKey = deriveSealingKey(passphrase, kdf);
  const nonce = crypto.randomBytes(nonceBytes);
  try {
    const cipher = crypto.createCipheriv('aes-256-gcm', sealingKey, nonce);
    cipher.setAAD(associatedData(header));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const file: KeyBackupFile = {
      ...header,
      nonce: nonce.toString('base64'),
      ciphertext: ciphertext.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
    };
    return `${JSON.stringify(file, null, 2)}\n`;
  } finally {
    sealingKey.fill(0);
    plaintext.fill(0);
  }
}

/**
 * Opens a backup's text with the passphrase. A wrong passphrase and a changed file fail the same way,
 * because AES-GCM cannot tell them apart.
 */
export function openKeyBackup(text: string, passphrase: string): KeyBackupContents {
  const file = parseBackupFile(text);
  const header = { format: file.format, version: file.version, created_at: file.created_at, kdf: file.kdf, cipher: file.cipher };
  const sealingKey = deriveSealingKey(passphrase, file.kdf);
  let plaintext: Buffer;
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', sealingKey, decodeBase64('nonce', file.nonce, nonceBytes));
    decipher.setAAD(associatedData(header));
    decipher.setAuthTag(decodeBase64('tag', file.tag, tagBytes));
    plaintext = Buffer.concat([decipher.update(decodeBase64('ciphertext', file.ciphertext)), decipher.final()]);
  } catch (error) {
    if (error instanceof KeyBackupError) throw error;
    throw new KeyBackupError('The recovery passphrase is wrong, or the backup file was changed.');
  } finally {
    sealingKey.fill(0);
  }
  try {
    return { createdAt: file.created_at, keys: parseKeys(plaintext) };
  } finally {
    plaintext.fill(0);
  }
}

function deriveSealingKey(passphrase: string, kdf: ScryptParameters): Buffer {
  const maxmem = 128 * kdf.N * kdf.r * kdf.p + 64 * 1024 * 1024;
  return crypto.scryptSync(passphrase.normalize('NFC'), Buffer.from(kdf.salt, 'base64'), kdf.key_bytes, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem });
}

/** Builds the associated data from the header fields in a fixed order, so reordering the JSON keys in the file does not matter. */
function associatedData(header: Pick<KeyBackupFile, 'format' | 'version' | 'created_at' | 'kdf' | 'cipher'>): Buffer {
  const { kdf } = header;
  const fields = [header.format, header.version, header.created_at, kdf.name, kdf.N, kdf.r, kdf.p, kdf.salt, kdf.key_bytes, header.cipher];
  return Buffer.from(`aegis:key-backup:${JSON.stringify(fields)}`, 'utf8');
}

function parseBackupFile(text: string): KeyBackupFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new KeyBackupError(`The file is not JSON: it is damaged or truncated, or it is not an AEGIS key backup (format "${KEY_BACKUP_FORMAT}"). Use another copy of the backup.`);
  }
  const file = parsed as Partial<KeyBackupFile> | null;
  if (typeof file !== 'object' || file === null || file.format !== KEY_BACKUP_FORMAT) {
    throw new KeyBackupError(`The file is not an AEGIS key backup: its "format" field is not "${KEY_BACKUP_FORMAT}".`);
  }
  if (file.version !== KEY_BACKUP_VERSION) {
    throw new KeyBackupError(`Key backup version ${String(file.version)} is not supported; this AEGIS reads version ${KEY_BACKUP_VERSION}.`);
  }
  if (file.cipher !== 'aes-256-gcm') throw new KeyBackupError(`Key backup cipher "${String(file.cipher)}" is not supported; expected "aes-256-gcm".`);
  for (const field of ['created_at', 'nonce', 'ciphertext', 'tag'] as const) {
    if (typeof file[field] !== 'string') throw new KeyBackupError(`The key backup's "${field}" field is missing or not a string.`);
  }
  checkScryptParameters(file.kdf);
  return file as KeyBackupFile;
}

function checkScryptParameters(kdf: unknown): asserts kdf is ScryptParameters {
  const value = kdf as Partial<ScryptParameters> | null;
  const valid =
    typeof value === 'object' &&
    value !== null &&
    value.name === 'scrypt' &&
    Number.isInteger(value.N) &&
    Number.isInteger(Math.log2(value.N!)) &&
    Math.log2(value.N!) >= scryptBounds.minLogN &&
    Math.log2(value.N!) <= scryptBounds.maxLogN &&
    Number.isInteger(value.r) &&
    value.r! >= 8 &&
    value.r! <= scryptBounds.maxR &&
    Number.isInteger(value.p) &&
    value.p! >= 1 &&
    value.p! <= scryptBounds.maxP &&
    value.key_bytes === masterKeyBytes &&
    typeof value.salt === 'string' &&
    Buffer.from(value.salt, 'base64').length >= saltBytes;
  if (!valid) {
    throw new KeyBackupError(
      `The key backup's scrypt parameters are invalid or out of bounds (N from 2^${scryptBounds.minLogN} to 2^${scryptBounds.maxLogN}, r from 8 to ${scryptBounds.maxR}, p from 1 to ${scryptBounds.maxP}, a salt of ${saltBytes} or more bytes, ${masterKeyBytes}-byte key).`,
    );
  }
}

function decodeBase64(field: string, text: string, expectedBytes?: number): Buffer {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text || (expectedBytes !== undefined && bytes.length !== expectedBytes)) {
    throw new KeyBackupError(`The key backup's "${field}" field is not valid base64${expectedBytes === undefined ? '' : ` of ${expectedBytes} bytes`}.`);
  }
  return bytes;
}

function parseKeys(plaintext: Buffer): BackupKey[] {
  const parsed = JSON.parse(plaintext.toString('utf8')) as { keys?: Array<Record<string, unknown>> };
  if (!Array.isArray(parsed.keys) || parsed.keys.length === 0) throw new KeyBackupError('The key backup contains no master key.');
  return parsed.keys.map((entry, index) => {
    const { key_id: keyId, state, check_value: checkValue, created_at: createdAt, key } = entry;
    if (typeof keyId !== 'string' || typeof state !== 'string' || typeof checkValue !== 'string' || typeof createdAt !== 'string' || typeof key !== 'string') {
      throw new KeyBackupError(`Entry ${index + 1} of the key backup is incomplete.`);
    }
    const backupKey = { keyId, state, checkValue, createdAt, key: Buffer.from(key, 'base64') };
    if (backupKey.key.length !== masterKeyBytes) throw new KeyBackupError(`Master key ${keyId} in the key backup is not ${masterKeyBytes} bytes.`);
    assertCheckValue(backupKey);
    return backupKey;
  });
}

function assertCheckValue(entry: BackupKey): void {
  if (keyCheckValue(entry.key) !== entry.checkValue) {
    throw new KeyBackupError(
      `Master key ${entry.keyId} does not match its key check value ${entry.checkValue.slice(0, 8)}...; it is not the key the vault registered, so it was not used.`,
    );
  }
}
