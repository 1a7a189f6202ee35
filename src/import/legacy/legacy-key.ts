import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { fernetKeyFromBytes, parseFernetKey, type FernetKey } from './fernet.js';
import { ValidationError } from '../../lib/errors.js';
import { readImportFile } from '../import-report.js';

const pbkdf2 = promisify(crypto.pbkdf2);

/** The earlier AEGIS's key derivation: PBKDF2-HMAC-SHA256 over the master key's UTF-8 bytes, one fixed salt. */
export const LEGACY_KDF = { salt: 'aegis_salt_v2', iterations: 100_000, keyBytes: 32, digest: 'sha256' } as const;

/**
 * Derives the Fernet key the earlier AEGIS used from its master key text. The text is used exactly as
 * given, because the old service encoded it without trimming: a trailing newline gives another key.
 */
export async function deriveLegacyKey(masterKey: string): Promise<FernetKey> {
  const bytes = await pbkdf2(Buffer.from(masterKey, 'utf8'), LEGACY_KDF.salt, LEGACY_KDF.iterations, LEGACY_KDF.keyBytes, LEGACY_KDF.digest);
  try {
    return fernetKeyFromBytes(bytes);
  } finally {
    bytes.fill(0);
  }
}

/** Reads a file that contains a Fernet key itself (urlsafe base64 of 32 bytes), as `Fernet.generate_key()` writes it. */
export function readLegacyKeyFile(file: string): FernetKey {
  const text = readImportFile(file).toString('utf8');
  try {
    return parseFernetKey(text);
  } catch (error) {
    throw new ValidationError('--legacy-key-file', `${file} does not hold a Fernet key: ${(error as Error).message}`);
  }
}
