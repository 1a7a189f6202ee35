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
import { DataKeyCache, type DataKeyCacheOptions } from './data-key-cache.js';

/** Default cache: each data key for five minutes after it is cached, at most 10,000 keys. */
export const defaultDataKeyCache: DataKeyCacheOptions = { lifetimeMs: 300_000, maxEntries: 10_000 };

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
  readonly #dataKeys: DataKeyCache;

  constructor(keys: Map<string, Buffer>, resolve: KeyResolver = async () => undefined, cache: DataKeyCacheOptions = defaultDataKeyCache) {
    this.#keys = new Map(keys);
    this.#resolve = resolve;
    this.#dataKeys = new DataKeyCache(cache);
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
    // A value is usually read soon after it is written (applied to workflows, tested), so its key is
    // kept. From here on the cache owns the buffer.
    if (this.#dataKeys.enabled) this.#dataKeys.set(dataKeyId(envelope, context), dataKey);
    else dataKey.fill(0);
    return envelope;
  }

  /** Opens a stored envelope; throws EnvelopeError when it was changed or belongs to another row. */
  async open(envelope: string, context: EnvelopeContext, db?: Executor): Promise<string> {
    const parts = parseEnvelope(envelope);
    const cacheId = dataKeyId(envelope, context);
    const cached = this.#dataKeys.get(cacheId);
    if (cached !== undefined) return gcmOpen(cached, parts.dataIv, parts.ciphertext, dataAad(context)).toString('utf8');
    const masterKey = await this.key(parts.keyId, db);
    const dataKey = gcmOpen(masterKey, parts.wrapIv, parts.wrappedKey, wrapAad(parts.keyId, context));
    let value: string;
    try {
      value = gcmOpen(dataKey, parts.dataIv, parts.ciphertext, dataAad(context)).toString('utf8');
    } catch (error) {
      dataKey.fill(0);
      throw error;
    }
    // Only a key that opened its value is cached; set() zeroes it when the cache is off.
    this.#dataKeys.set(cacheId, dataKey);
    return value;
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

/**
 * Names a data key by its wrap (the envelope's first four fields) and the row it belongs to. A wrapped
 * key copied to another row therefore misses the cache and fails to unwrap, as it would without one.
 */
function dataKeyId(envelope: string, context: EnvelopeContext): string {
  let end = -1;
  for (let field = 0; field < 4; field += 1) end = envelope.indexOf('.', end + 1);
  return `${envelope.slice(0, end)}:${context.credentialId}:${context.version}`;
}

export { EnvelopeError };
