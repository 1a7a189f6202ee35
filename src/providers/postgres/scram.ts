import crypto from 'node:crypto';

/**
 * Builds a SCRAM-SHA-256 verifier (RFC 5802 / RFC 7677) in the form PostgreSQL stores in pg_authid:
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. Sending this instead of the password
 * keeps the plaintext out of PostgreSQL's statement log.
 */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = crypto.randomBytes(16);
  const salted = crypto.pbkdf2Sync(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = crypto.createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = crypto.createHash('sha256').update(clientKey).digest();
  const serverKey = crypto.createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** RFC 3454 table B.1: code points SASLprep maps to nothing (soft hyphen, zero-width characters, variation selectors). */
const mappedToNothing = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;
/** RFC 3454 table C.1.2: non-ASCII spaces, which SASLprep maps to U+0020. */
const nonAsciiSpace = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;
/** RFC 3454 tables C.1.2 and C.2 to C.9: code points SASLprep prohibits. */
const prohibited =
  /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000\u0000-\u001F\u007F\u0080-\u009F\u06DD\u070F\u180E\u200C\u200D\u2028\u2029\u2060-\u2063\u206A-\u206F\uFEFF\uFFF9-\uFFFD\u{1D173}-\u{1D17A}\uE000-\uF8FF\u{F0000}-\u{FFFFD}\u{100000}-\u{10FFFD}\uFDD0-\uFDEF\uFFFE\uFFFF\u{1FFFE}\u{1FFFF}\u{2FFFE}\u{2FFFF}\u{3FFFE}\u{3FFFF}\u{4FFFE}\u{4FFFF}\u{5FFFE}\u{5FFFF}\u{6FFFE}\u{6FFFF}\u{7FFFE}\u{7FFFF}\u{8FFFE}\u{8FFFF}\u{9FFFE}\u{9FFFF}\u{AFFFE}\u{AFFFF}\u{BFFFE}\u{BFFFF}\u{CFFFE}\u{CFFFF}\u{DFFFE}\u{DFFFF}\u{EFFFE}\u{EFFFF}\u{FFFFE}\u{FFFFF}\u{10FFFE}\u{10FFFF}\uD800-\uDFFF\u2FF0-\u2FFB\u0340\u0341\u200E\u200F\u202A-\u202E\u{E0001}\u{E0020}-\u{E007F}]/u;

/**
 * Prepares a password the way PostgreSQL's SASLprep (RFC 4013) does before hashing it. ASCII passes
 * unchanged. Otherwise non-ASCII spaces become U+0020, table B.1 characters are removed, and the result is
 * NFKC normalized. When the result contains a prohibited code point, the raw password is hashed instead.
 * NOTE: Only the mappings are tested against a server (PostgreSQL 15). The ASCII shortcut and the raw
 * fallback follow PostgreSQL's src/common/saslprep.c as described, not as tested. PostgreSQL also rejects
 * code points unassigned in Unicode 3.2 and failed bidirectional checks, which this does not; a password
 * hit by that gap fails the rotation's login test, and the old password is restored.
 */
export function saslPrep(password: string): string {
  if (/^[\x00-\x7F]*$/.test(password)) return password;
  const prepared = password.replace(nonAsciiSpace, ' ').replace(mappedToNothing, '').normalize('NFKC');
  return prohibited.test(prepared) ? password : prepared;
}
