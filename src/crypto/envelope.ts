import crypto from 'node:crypto';
import { randomPool } from './random-pool.js';

/**
 * Envelope encryption of one stored value.
 *
 * Every value (each version of a credential) is sealed with AES-256-GCM under its own random data key,
 * and the data key is wrapped with AES-256-GCM under a master key from the keyring. The stored form is
 * text, six fields joined by dots, every binary field base64url without padding:
 *
 *   FORMAT . KEY_ID . WRAP_IV . WRAPPED_KEY+TAG . DATA_IV . CIPHERTEXT+TAG
 *
 * FORMAT is `1`. The associated data of both seals names the credential id and version (and the wrap
 * also names the master key id), so a ciphertext copied to another row, credential or version fails to
 * open. Changing the field order, the associated-data strings or the IV sizes breaks every stored value:
 * such a change needs a new FORMAT and a reader for the old one.
 */
export const ENVELOPE_FORMAT = '1';

const ivBytes = 12;
const tagBytes = 16;
const keyBytes = 32;
const keyIdPattern = /^[A-Za-z0-9_-]{1,64}$/;
const base64UrlPattern = /^[A-Za-z0-9_-]*$/;

/** The row a value belongs to; it is bound into the associated data. */
export interface EnvelopeContext {
  credentialId: string;
  version: number;
}

export interface EnvelopeParts {
  keyId: string;
  wrapIv: Buffer;
  wrappedKey: Buffer;
  dataIv: Buffer;
  ciphertext: Buffer;
}

export class EnvelopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvelopeError';
  }
}

export function dataAad(context: EnvelopeContext): Buffer {
  return Buffer.from(`aegis:v1:value:${context.credentialId}:${context.version}`, 'utf8');
}

export function wrapAad(keyId: string, context: EnvelopeContext): Buffer {
  return Buffer.from(`aegis:v1:data-key:${keyId}:${context.credentialId}:${context.version}`, 'utf8');
}

/** Seals `plaintext` with AES-256-GCM; returns the ciphertext with the 16-byte tag appended. */
export function gcmSeal(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const final = cipher.final();
  return Buffer.concat([body, final, cipher.getAuthTag()]);
}

/** Opens what `gcmSeal` made; throws EnvelopeError when the key, IV, associated data or bytes do not match. */
export function gcmOpen(key: Buffer, iv: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  if (sealed.length < tagBytes) throw new EnvelopeError('ciphertext is shorter than its authentication tag');
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - tagBytes));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - tagBytes)), decipher.final()]);
  } catch {
    throw new EnvelopeError('authentication failed');
  }
}

export function newIv(): Buffer {
  return randomPool.take(ivBytes);
}

export function newDataKey(): Buffer {
  return randomPool.take(keyBytes);
}

export function formatEnvelope(parts: EnvelopeParts): string {
  return [
    ENVELOPE_FORMAT,
    parts.keyId,
    parts.wrapIv.toString('base64url'),
    parts.wrappedKey.toString('base64url'),
    parts.dataIv.toString('base64url'),
    parts.ciphertext.toString('base64url'),
  ].join('.');
}

/** Parses a stored envelope strictly: any unknown format, bad field or wrong length is an EnvelopeError. */
export function parseEnvelope(text: string): EnvelopeParts {
  const fields = text.split('.');
  if (fields.length !== 6) throw new EnvelopeError(`expected 6 fields, found ${fields.length}`);
  const [format, keyId, wrapIv, wrappedKey, dataIv, ciphertext] = fields as [string, string, string, string, string, string];
  if (format !== ENVELOPE_FORMAT) throw new EnvelopeError(`unknown envelope format "${format.slice(0, 8)}"`);
  if (!keyIdPattern.test(keyId)) throw new EnvelopeError('invalid master key id');
  const parts = {
    keyId,
    wrapIv: decodeField('wrap IV', wrapIv),
    wrappedKey: decodeField('wrapped data key', wrappedKey),
    dataIv: decodeField('data IV', dataIv),
    ciphertext: decodeField('ciphertext', ciphertext),
  };
  if (parts.wrapIv.length !== ivBytes || parts.dataIv.length !== ivBytes) throw new EnvelopeError(`IVs must be ${ivBytes} bytes`);
  if (parts.wrappedKey.length !== keyBytes + tagBytes) throw new EnvelopeError(`wrapped data key must be ${keyBytes + tagBytes} bytes`);
  if (parts.ciphertext.length < tagBytes) throw new EnvelopeError('ciphertext is shorter than its authentication tag');
  return parts;
}

/**
 * Decodes one base64url field and accepts only the canonical encoding. Node's decoder skips characters
 * outside the alphabet, accepts `+`, `/` and `=`, and ignores a dangling last character and the unused
 * low bits of the final one. Without a check, one stored value would have several accepted spellings.
 * Encoding the bytes again gives back the text only when it had none of these, and costs less than a
 * pattern test over the text, so the pattern only chooses the message.
 */
function decodeField(name: string, text: string): Buffer {
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.toString('base64url') === text) return bytes;
  if (!base64UrlPattern.test(text)) throw new EnvelopeError(`${name} is not base64url`);
  throw new EnvelopeError(`${name} is not canonical base64url`);
}

export function isValidKeyId(keyId: string): boolean {
  return keyIdPattern.test(keyId);
}
