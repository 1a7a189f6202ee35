import crypto from 'node:crypto';
import { StartupError } from '../lib/errors.js';

export const masterKeyBytes = 32;

/**
 * scrypt cost for passphrase-derived master keys: N = 2^17, r = 8, p = 1 (about 128 MiB and a few
 * hundred milliseconds, once per key at start-up). Changing these changes every derived key.
 */
const scryptOptions = { N: 2 ** 17, r: 8, p: 1, maxmem: 256 * 1024 * 1024 };
const minPassphraseLength = 16;

/**
 * Decodes a base64 master key and rejects one that is the wrong size or plainly not random.
 * `origin` names where it came from, for the message.
 */
export function decodeMasterKey(text: string, origin: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    throw new StartupError(`${origin}: the master key is not base64. Generate one with \`aegis keys generate\` or \`openssl rand -base64 32\`.`);
  }
  const key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length !== masterKeyBytes) {
    throw new StartupError(
      `${origin}: the master key must decode to ${masterKeyBytes} bytes, got ${key.length}. Keys are never padded or truncated; generate one with \`aegis keys generate\` or \`openssl rand -base64 32\`.`,
    );
  }
  rejectWeakKey(key, origin);
  return key;
}

/** Rejects keys that no random generator would produce: few distinct bytes, or a constant step (0, 1, 2, ...). */
export function rejectWeakKey(key: Buffer, origin: string): void {
  const distinct = new Set(key).size;
  const step = (key[1]! - key[0]! + 256) % 256;
  const constantStep = key.every((byte, index) => index === 0 || (byte - key[index - 1]! + 256) % 256 === step);
  if (distinct < 16 || constantStep) {
    throw new StartupError(`${origin}: the master key is weak (a repeated or sequential pattern). Generate a random one with \`aegis keys generate\` or \`openssl rand -base64 32\`.`);
  }
}

export function rejectWeakPassphrase(passphrase: string, origin: string): void {
  if ([...passphrase].length < minPassphraseLength || new Set(passphrase).size < 8) {
    throw new StartupError(`${origin}: the passphrase is too weak; use at least ${minPassphraseLength} characters with at least 8 different ones.`);
  }
}

/** Stretches a passphrase into a 256-bit master key with scrypt and the stored random salt. */
export function derivePassphraseKey(passphrase: string, saltBase64: string): Buffer {
  return crypto.scryptSync(passphrase.normalize('NFC'), Buffer.from(saltBase64, 'base64'), masterKeyBytes, scryptOptions);
}

export function newSalt(): string {
  return crypto.randomBytes(16).toString('base64');
}

export function generateMasterKey(): Buffer {
  return crypto.randomBytes(masterKeyBytes);
}

/**
 * A key check value: HMAC-SHA256 of a fixed label under the key, first 16 bytes in hex. It tells whether
 * a configured key is the one the data was written with, without revealing anything about the key.
 */
export function keyCheckValue(key: Buffer): string {
  return crypto.createHmac('sha256', key).update('AEGIS master key check v1').digest('hex').slice(0, 32);
}

export function newKeyId(): string {
  return `mk_${crypto.randomBytes(6).toString('hex')}`;
}
