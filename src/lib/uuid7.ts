import { randomPool } from '../crypto/random-pool.js';

/**
 * Returns a version 7 UUID (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. An id made
 * in a later millisecond sorts later, so a primary key index grows at its end. Random ids land all
 * over the index, and each commit then rewrites pages across it.
 */
export function uuid7(milliseconds: number = Date.now()): string {
  const bytes = randomPool.take(16);
  bytes.writeUIntBE(milliseconds, 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
