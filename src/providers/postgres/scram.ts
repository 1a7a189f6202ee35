import crypto from 'node:crypto';

/**
 * Builds a SCRAM-SHA-256 verifier (RFC 5802 / RFC 7677) in the form PostgreSQL stores in pg_authid:
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. Sending this instead of the password
 * keeps the plaintext out of PostgreSQL's statement log.
 * NOTE: PostgreSQL runs SASLprep on the password at login; this uses NFKC normalization, which matches
 * SASLprep for ASCII and common text but not for every code point SASLprep maps or prohibits.
 */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = crypto.randomBytes(16);
  const salted = crypto.pbkdf2Sync(Buffer.from(password.normalize('NFKC'), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = crypto.createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = crypto.createHash('sha256').update(clientKey).digest();
  const serverKey = crypto.createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
