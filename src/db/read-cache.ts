import type { Db } from './database.js';

/**
 * Keeps rows the hot read path loads on every request (a token, a credential with its version and
 * health summary) for as long as the database has not changed, so an agent reading the same
 * credential again costs no statement.
 *
 * It is not time-bound: every entry is dropped as soon as `Db.changeCount` moves, which it does on
 * each write through this process (audit appends aside) and on each commit another process made. A
 * change by this process shows at once. Another process's commit shows on SQLite from the next turn
 * of the event loop (SqliteAdapter.changeCount), and on PostgreSQL when its notice arrives, a moment
 * after the commit (PostgresChanges). While the database gives no change count, nothing is cached
 * and each read goes to the database. The caches load only from aegis_tokens, aegis_credentials, aegis_credential_versions
 * and aegis_health_checks, whose triggers (migration 0010) send the notices. A cache that reads
 * another table needs a migration that adds its trigger.
 *
 * Values are shared between requests and must not be changed by callers. Misses (unknown names) are
 * not cached, so random names cannot fill the cache.
 */
export class ReadCache<V> {
  readonly #changeCount: () => number | undefined;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, V>();
  #seenChangeCount = -1;

  constructor(db: Pick<Db, 'changeCount'>, maxEntries: number) {
    this.#changeCount = db.changeCount ?? (() => undefined);
    this.#maxEntries = maxEntries;
  }

  /** Returns the cached value for `key`, or loads it and caches it when the database did not change meanwhile. */
  async read(key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const before = this.#changeCount();
    if (before === undefined) return load();
    if (before !== this.#seenChangeCount) {
      this.#entries.clear();
      this.#seenChangeCount = before;
    }
    const cached = this.#entries.get(key);
    if (cached !== undefined) return cached;

    const value = await load();
    // A write between the load's start and now may or may not be in `value`, so it is not cached.
    if (value !== undefined && this.#changeCount() === before) {
      if (this.#entries.size >= this.#maxEntries) {
        const oldest = this.#entries.keys().next().value;
        if (oldest !== undefined) this.#entries.delete(oldest);
      }
      this.#entries.set(key, value);
    }
    return value;
  }

  /**
   * Replaces the cached value for `key` with `next` if it is still `previous`, the value the caller
   * read, after the caller changed the row in a way the change count does not see (the last-use time,
   * see `mayChangeCachedRows`). A value loaded since, after another change, stays.
   */
  replace(key: string, previous: V, next: V): void {
    if (this.#entries.get(key) === previous) this.#entries.set(key, next);
  }

  /** Returns the number of cached values; for tests. */
  get size(): number {
    return this.#entries.size;
  }
}
