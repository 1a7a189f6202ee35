import crypto from 'node:crypto';

/**
 * A Fernet encryptor for tests, written apart from the importer's decryptor so a test does not check the
 * code against itself. It makes tokens the way Python's `cryptography.fernet.Fernet.encrypt` does.
 */

/** Derives the earlier AEGIS's Fernet key bytes from its master key: PBKDF2-SHA256, 100,000 iterations, salt `aegis_salt_v2`. */
export function deriveLegacyKeyBytes(masterKey: string): Buffer {
  return crypto.pbkdf2Sync(Buffer.from(masterKey, 'utf8'), Buffer.from('aegis_salt_v2', 'ascii'), 100_000, 32, 'sha256');
}

/** Writes 32 key bytes as a Fernet key: urlsafe base64 with padding, as `Fernet.generate_key()` does. */
export function fernetKeyText(key: Buffer): string {
  return key.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/** Encrypts `plaintext` into a Fernet token; `iv` and `time` (seconds since the epoch) are fixed only by spec vectors. */
export function fernetEncrypt(key: Buffer, plaintext: string | Buffer, options: { iv?: Buffer; time?: number } = {}): string {
  const iv = options.iv ?? crypto.randomBytes(16);
  const timestamp = Buffer.alloc(8);
  timestamp.writeBigUInt64BE(BigInt(options.time ?? Math.floor(Date.now() / 1000)));
  const cipher = crypto.createCipheriv('aes-128-cbc', key.subarray(16, 32), iv);
  const ciphertext = Buffer.concat([cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final()]);
  const signed = Buffer.concat([Buffer.from([0x80]), timestamp, iv, ciphertext]);
  const hmac = crypto.createHmac('sha256', key.subarray(0, 16)).update(signed).digest();
  return fernetKeyText(Buffer.concat([signed, hmac]));
}

/** Flips one bit in the decoded token at `offset` (negative counts from the end) and encodes it again. */
export function tamperFernet(token: string, offset: number): string {
  const bytes = Buffer.from(token, 'base64url');
  const index = offset < 0 ? bytes.length + offset : offset;
  bytes[index] = bytes[index]! ^ 0x01;
  return fernetKeyText(bytes);
}
