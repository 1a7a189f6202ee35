/** How long one audit entry covers the successful scrapes of a token: an hour. */
export const SCRAPE_AUDIT_WINDOW_MS = 3_600_000;

interface TokenWindow {
  startedAt: number;
  /** Successful scrapes in this window after the one that was audited. */
  unrecorded: number;
}

/**
 * Decides which successful scrapes get an audit entry: the first one of each token in each hour, in this
 * process. The entry then states how many scrapes of the previous window went unrecorded, so the audit
 * log still accounts for every scrape in aggregate. Denied and failed scrapes are not counted here: the
 * authentication hook and the error handler audit each of them.
 */
export class ScrapeAuditWindow {
  /** One window per token that has scraped in this process; tokens are few, so the map stays small. */
  readonly #windows = new Map<string, TokenWindow>();

  /**
   * Records a successful scrape by `tokenKey` at `nowMs`. Returns the number of unrecorded scrapes to
   * write in a new audit entry, or null when this scrape falls in a window that is already audited.
   */
  admit(tokenKey: string, nowMs: number): number | null {
    const window = this.#windows.get(tokenKey);
    if (window && nowMs >= window.startedAt && nowMs - window.startedAt < SCRAPE_AUDIT_WINDOW_MS) {
      window.unrecorded += 1;
      return null;
    }
    this.#windows.set(tokenKey, { startedAt: nowMs, unrecorded: 0 });
    return window?.unrecorded ?? 0;
  }

  /** Undoes `admit` when the audit entry could not be written, so the next scrape writes it with the same count. */
  retract(tokenKey: string, unrecorded: number): void {
    this.#windows.set(tokenKey, { startedAt: Number.NEGATIVE_INFINITY, unrecorded });
  }
}
