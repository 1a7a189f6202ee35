import type { AuditQuery } from './audit.repository.js';

/**
 * The way a SQLite query finds the audit entries of a request whose filters have no index ending in
 * `seq`: an action alone, a time range, `success=true`, or a limited token's reach without such a
 * filter. SQLite keeps no statistics of the table, because AEGIS never runs ANALYZE. So it looks such a
 * filter up in some index, reads every match and sorts the matches by `seq` for the page: for a common
 * action over 1,000,000 entries, 0.35 s per page, and 0.5 s with a one-day range.
 * - `indexed`: the filters as written, for SQLite to choose an index.
 * - `by-time`: `action` written `+action`, which SQLite cannot look up in an index, so a time range is
 *   looked up in the index on the time, which also contains `action`.
 * - `newest-first`: `action`, `timestamp` and the reach's columns written with `+`, so SQLite reads the
 *   entries newest first and checks each until the page is full.
 */
export type EntryLookup = 'indexed' | 'by-time' | 'newest-first';

/** Tells whether an unlimited query chooses its lookup: SQLite, one action, and no actor or credential to look up instead. */
export function choosesActionLookup(dialect: string, query: AuditQuery): boolean {
  return dialect === 'sqlite' && query.action !== undefined && query.actor === undefined && query.credentialName === undefined && query.reach === undefined;
}

/** Returns the lookup for counting the matches: the filters' own index, or the time index for a time range. */
export function countLookup(query: AuditQuery): EntryLookup {
  return query.startDate !== undefined || query.endDate !== undefined ? 'by-time' : 'indexed';
}

/**
 * Returns the lookup for reading the page, once the matches are counted. Reading newest first passes
 * about `(offset + limit) * entries / matches` rows before the page is full, while an index lookup
 * reads and sorts all `matches`. The cheaper of the two wins, so common entries are read newest first
 * and rare ones through an index. With an end date, reading newest first also passes every entry later
 * than the range: `laterEntries` is their count, which may stop at `matches`. Without it, as on
 * SQLite, a page with an end date is looked up by time.
 */
export function pageLookup(query: AuditQuery, matches: number, entries: number, laterEntries?: number): EntryLookup {
  const passedFirst = query.endDate === undefined ? 0 : laterEntries;
  if (passedFirst !== undefined && matches > 0 && passedFirst + ((query.offset + query.limit) * entries) / matches < matches) return 'newest-first';
  return countLookup(query);
}
