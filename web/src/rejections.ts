/**
 * Statuses that a repeat of the same request gets again: 400 for an invalid filter and 403 for a scope
 * the token lacks. 401 is not among them, because it signs the tab out.
 */
const REJECTED_STATUSES = new Set([400, 403]);

/**
 * The GET requests of one page that the server rejected, so the 5-second reload does not send them again.
 * Each rejection is a failed audit entry, and a reload every 5 seconds sets off the failure_burst anomaly
 * rule. A user's action (a new filter, a reload of the tab) still sends the request.
 */
export class RejectedRequests {
  readonly #paths = new Set<string>();

  /** Records the outcome of a request to `path`: the HTTP status of its failure, or null when it succeeded. */
  record(path: string, failedStatus: number | null): void {
    if (failedStatus !== null && REJECTED_STATUSES.has(failedStatus)) this.#paths.add(path);
    else this.#paths.delete(path);
  }

  /** Returns whether a reload should skip `path`, because the server rejected it before. */
  skips(path: string, reloading: boolean): boolean {
    return reloading && this.#paths.has(path);
  }
}
