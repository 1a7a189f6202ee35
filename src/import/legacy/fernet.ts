import crypto from 'node:crypto';

/**
 * Fernet decryption, as the earlier AEGIS (Python `cryptography.fernet`) wrote its values.
 *
 * A key is 32 bytes, written as urlsafe base64: the first 16 bytes sign (HMAC-SHA256) and the last 16
 * encrypt (AES-128-CBC). A token is urlsafe base64 of
 *
 *   VERSION (1 byte, 0x80) | TIMESTAMP (8 bytes) | IV (16 bytes) | CIPHERTEXT (PKCS7-padded) | HMAC (32 bytes)
 *
 * where the HMAC covers every byte before it. The timestamp is not checked: the earlier service decrypted
 * without a time-to-live, so its stored values never expire.
 */
const fernetVersion = 0x80;
const headerBytes = 1 + 8 + 16;
const hmacBytes = 32;
const blockBytes = 16;
const keyBytes = 32;

/** The reason a token was rejected, reported per row. */
export type FernetFailure = 'malformed' | 'too_short' | 'wrong_version' | 'bad_hmac' | 'bad_length' | 'bad_padding';

export class FernetError extends Error {
  constructor(
    readonly failure: FernetFailure,
    message: string,
  ) {
    super(message);
    this.name = 'FernetError';
  }
}

/** The two halves of a Fernet key. */
export interface FernetKey {
  signingKey: Buffer;
  encryptionKey: Buffer;
}

/** Splits 32 key bytes into the signing and encryption halves. */
export function fernetKeyFromBytes(bytes: Buffer): FernetKey {
  if (bytes.length !== keyBytes) throw new Error(`a Fernet key is ${keyBytes} bytes, got ${bytes.length}`);
  return { signingKey: Buffer.from(bytes.subarray(0, 16)), encryptionKey: Buffer.from(bytes.subarray(16)) };
}

/**
 * Parses a Fernet key written as urlsafe base64 (44 characters with padding, as `Fernet.generate_key()`
 * writes it). Surrounding whitespace is ignored. The error never repeats the text, because it is a key.
 */
export function parseFernetKey(text: string): FernetKey {
  const bytes = decodeUrlsafeBase64(text.trim());
  if (bytes === null) throw new Error('the Fernet key is not urlsafe base64');
  if (bytes.length !== keyBytes) throw new Error(`the Fernet key must decode to ${keyBytes} bytes, got ${bytes.length}`);
  return fernetKeyFromBytes(bytes);
}

/** Checks a token's format and HMAC without decrypting it; returns the decoded bytes. */
export function verifyFernetToken(key: FernetKey, token: string): Buffer {
  const bytes = decodeUrlsafeBase64(token);
  if (bytes === null) throw new FernetError('malformed', 'the token is not urlsafe base64');
  if (bytes.length < 1) throw new FernetError('too_short', 'the token is empty');
  if (bytes[0] !== fernetVersion) throw new FernetError('wrong_version', `the token has version byte 0x${bytes[0]!.toString(16).padStart(2, '0')}, expected 0x80`);
  if (bytes.length < headerBytes + hmacBytes) {
    throw new FernetError('too_short', `the token is ${bytes.length} bytes, shorter than the ${headerBytes + hmacBytes} bytes of its header and HMAC`);
  }
  const signed = bytes.subarray(0, bytes.length - hmacBytes);
  const expected = crypto.createHmac('sha256', key.signingKey).update(signed).digest();
  if (!crypto.timingSafeEqual(expected, bytes.subarray(bytes.length - hmacBytes))) {
    throw new FernetError('bad_hmac', 'bad HMAC: the token was changed or was made with another key');
  }
  return bytes;
}

/** Verifies a token's HMAC, then decrypts it; returns the plaintext bytes. */
export function decryptFernet(key: FernetKey, token: string): Buffer {
  const bytes = verifyFernetToken(key, token);
  const iv = bytes.subarray(9, headerBytes);
  const ciphertext = bytes.subarray(headerBytes, bytes.length - hmacBytes);
  if (ciphertext.length === 0 || ciphertext.length % blockBytes !== 0) {
    throw new FernetError('bad_length', `the ciphertext is ${ciphertext.length} bytes, not a multiple of the ${blockBytes}-byte AES block`);
  }
  const decipher = crypto.createDecipheriv('aes-128-cbc', key.encryptionKey, iv);
  // Padding is checked below, so a bad pad gets its own reason instead of OpenSSL's "bad decrypt".
  decipher.setAutoPadding(false);
  const padded = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  return removePkcs7(padded);
}

function removePkcs7(padded: Buffer): Buffer {
  const pad = padded[padded.length - 1]!;
  if (pad < 1 || pad > blockBytes) throw new FernetError('bad_padding', 'the PKCS7 padding is invalid');
  for (let index = padded.length - pad; index < padded.length; index++) {
    if (padded[index] !== pad) throw new FernetError('bad_padding', 'the PKCS7 padding is invalid');
  }
  return padded.subarray(0, padded.length - pad);
}

/**
 * Decodes urlsafe base64 with or without `=` padding, and only its canonical spelling. Node's decoder
 * skips characters outside the alphabet, so without these checks a changed token could still decode.
 */
function decodeUrlsafeBase64(text: string): Buffer | null {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) return null;
  const body = text.replace(/=+$/, '');
  if (text.length !== body.length && text.length % 4 !== 0) return null;
  const bytes = Buffer.from(body, 'base64url');
  if (bytes.toString('base64url') !== body) return null;
  return bytes;
}
