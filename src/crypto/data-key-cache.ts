/** Settings of the unwrapped data key cache; a lifetime of 0 turns it off. */
export interface DataKeyCacheOptions {
  lifetimeMs: number;
  maxEntries: number;
  /** Monotonic milliseconds; tests pass their own. */
  now?: () => number;
}

interface CachedKey {
  key: Buffer;
  expiresAt: number;
}

/**
 * Unwrapped data keys by envelope and row, so reading a value again skips one AES-GCM unwrap with the
 * master key. The trade-off: a data key stays in memory for up to `lifetimeMs` after it was cached.
 * The master keys, which unwrap every data key, are in the same memory for the life of the process,
 * so the cache adds little exposure. Keys are zeroed when they leave it.
 *
 * Entries live in two generations: when the newer one is full, the older one is zeroed and dropped.
 * That bounds the cache at `maxEntries` with no per-insert eviction work.
 */
export class DataKeyCache {
  #newer = new Map<string, CachedKey>();
  #older = new Map<string, CachedKey>();
  readonly #lifetimeMs: number;
  readonly #generationSize: number;
  readonly #now: () => number;

  constructor(options: DataKeyCacheOptions) {
    this.#lifetimeMs = options.lifetimeMs;
    this.#generationSize = Math.max(1, Math.floor(options.maxEntries / 2));
    this.#now = options.now ?? (() => performance.now());
  }

  get enabled(): boolean {
    return this.#lifetimeMs > 0;
  }

  /** Returns the cached key, or undefined when it is missing or expired. Callers must not change it. */
  get(id: string): Buffer | undefined {
    const cached = this.#newer.get(id) ?? this.#older.get(id);
    if (cached === undefined) return undefined;
    if (cached.expiresAt <= this.#now()) return undefined;
    return cached.key;
  }

  /** Stores `key`, which the cache then owns and zeroes when it drops it; with the cache off it is zeroed now. */
  set(id: string, key: Buffer): void {
    if (!this.enabled) {
      key.fill(0);
      return;
    }
    if (this.#newer.size >= this.#generationSize) {
      zeroAll(this.#older);
      this.#older = this.#newer;
      this.#newer = new Map();
    }
    this.#newer.set(id, { key, expiresAt: this.#now() + this.#lifetimeMs });
  }

  get size(): number {
    return this.#newer.size + this.#older.size;
  }

  /** Zeroes and drops every key. */
  clear(): void {
    zeroAll(this.#newer);
    zeroAll(this.#older);
    this.#newer = new Map();
    this.#older = new Map();
  }
}

function zeroAll(entries: Map<string, CachedKey>): void {
  for (const cached of entries.values()) cached.key.fill(0);
}
