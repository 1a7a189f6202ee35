import {
  EnvelopeError,
  dataAad,
  formatEnvelope,
  gcmOpen,
  gcmSeal,
  newDataKey,
  newIv,
  parseEnvelope,
  wrapAad,
  type EnvelopeContext,
} from './envelope.js';

import type { Executor } from '../db/database.js';

/**
 * Finds a master key the keyring does not hold yet, such as one added by `aegis keys rotate` in another
 * process. It reads through `db` when given: inside a transaction on SQLite, the only connection is taken.
 */
export type KeyResolver = (keyId: string, db?: Executor) => Promise<Buffer | undefined>;

export class KeyUnavailableError extends Error {
  constructor(readonly keyId: string) {
    super(`Master key ${keyId} is not in the configured keyring. Add the key file line or variable that holds it, then restart.`);
    this.name = 'KeyUnavailableError';
  }
}

/**
 * The master keys (key encryption keys) this process holds, by key id, and the envelope operations
 * on top of them. Which key is current is the database's decision: callers pass the key id to seal with.
 */
export class Keyring {
  readonly #keys: Map<string, Buffer>;
  readonly #resolve: KeyResolver;

  constructor(keys: Map<string, Buffer>, resolve: KeyResolver = async () => undefined) {
    this.#keys = new Map(keys);
    this.#resolve = resolve;
  }

  keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  add(keyId: string, key: Buffer): void {
    this.#keys.set(keyId, key);
  }

  async key(keyId: string, db?: Executor): Promise<Buffer> {
    const held = this.#keys.get(keyId);
    if (held) return held;
    const found = await this.#resolve(keyId, db);
    if (!found) throw new KeyUnavailableError(keyId);
    this.#keys.set(keyId, found);
    return found;
  }

  /** Seals a value for one credential version under the master key `keyId`. */
  async seal(value: string, context: EnvelopeContext, keyId: string, db?: Executor): Promise<string> {
    // UTF-8 cannot encode a lone surrogate: Buffer.from would store U+FFFD in its place and reveal another value.
    if (!value.isWellFormed()) throw new EnvelopeError('the value contains a lone UTF-16 surrogate, which UTF-8 cannot store');
    const masterKey = await this.key(keyId, db);
    const dataKey = newDataKey();
    const wrapIv = newIv();
    const dataIv = newIv();
    const envelope = formatEnvelope({
      keyId,
      wrapIv,
      wrappedKey: gcmSeal(masterKey, wrapIv, dataKey, wrapAad(keyId, context)),
      dataIv,
      ciphertext: gcmSeal(dataKey, dataIv, Buffer.from(value, 'utf8'), dataAad(context)),
    });
    dataKey.fill(0);
    return envelope;
  }

  /** Opens a stored envelope; throws EnvelopeError when it was changed or belongs to another row. */
  async open(envelope: string, context: EnvelopeContext, db?: Executor): Promise<string> {
    const parts = parseEnvelope(envelope);
    const masterKey = await this.key(parts.keyId, db);
    const dataKey = gcmOpen(masterKey, parts.wrapIv, parts.wrappedKey, wrapAad(parts.keyId, context));
    try {
      return gcmOpen(dataKey, parts.dataIv, parts.ciphertext, dataAad(context)).toString('utf8');
    } finally {
      dataKey.fill(0);
    }
  }

  /** Re-wraps the data key under `toKeyId`; the sealed value itself is untouched. */
  async rewrap(envelope: string, context: EnvelopeContext, toKeyId: string, db?: Executor): Promise<string> {
    const parts = parseEnvelope(envelope);
    if (parts.keyId === toKeyId) return envelope;
    const dataKey = gcmOpen(await this.key(parts.keyId, db), parts.wrapIv, parts.wrappedKey, wrapAad(parts.keyId, context));
    const wrapIv = newIv();
    const wrappedKey = gcmSeal(await this.key(toKeyId, db), wrapIv, dataKey, wrapAad(toKeyId, context));
    dataKey.fill(0);
    return formatEnvelope({ ...parts, keyId: toKeyId, wrapIv, wrappedKey });
  }
}

export { EnvelopeError };
