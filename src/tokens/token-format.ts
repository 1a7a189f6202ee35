import crypto from 'node:crypto';

/**
 * API tokens look like `aegis_<id>_<secret>`: a 12-character hex id that finds the row, and a 32-byte
 * random secret in base64url. Only the SHA-256 of the secret is stored; a fast hash is enough because
 * the secret is random, not a password.
 */
const tokenPattern = /^aegis_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface ParsedToken {
  id: string;
  secret: string;
}

export function newToken(): { id: string; secret: string; token: string } {
  const id = crypto.randomBytes(6).toString('hex');
  const secret = crypto.randomBytes(32).toString('base64url');
  return { id, secret, token: `aegis_${id}_${secret}` };
}

export function parseToken(token: string): ParsedToken | null {
  const match = tokenPattern.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : null;
}

export function hashSecret(secret: string): string {
  return crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Compares a presented secret with a stored hash in constant time. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return presented.length === stored.length && crypto.timingSafeEqual(presented, stored);
}
