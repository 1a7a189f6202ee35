import type { AuditQuery } from './audit.repository.js';

/**
 * The way a SQLite query of the audit log finds one action's entries when the request names neither an
 * actor nor a credential. SQLite keeps no statistics of the table, because AEGIS never runs ANALYZE.
 * So for `action = ?` it always takes the index that starts with `action`, and then reads every
 * matching row to check a date range and to sort the matches by `seq`. For a common action over
 * 1,000,000 entries, a page took 0.35 s, and 0.5 s with a one-day range.
 * - `indexed`: the index that starts with `action`.
 * - `unindexed`: the column written `+action`, which SQLite cannot look up in an index. With a date range
 *   it then takes the index on the time, which also contains `action`. Without one it reads the entries
 *   newest first and checks each.
 */
export type ActionLookup = 'indexed' | 'unindexed';

/** Tells whether the query may choose its action lookup: SQLite, one action, and no actor or credential to look up instead. */
export function choosesActionLookup(dialect: string, query: AuditQuery): boolean {
  return dialect === 'sqlite' && query.action !== undefined && query.actor === undefined && query.credentialName === undefined && query.reach === undefined;
}

/** Returns the lookup for counting the matches: the index alone gives the count, unless a date range needs the time index. */
export function countLookup(query: AuditQuery): ActionLookup {
  return query.startDate !== undefined || query.endDate !== undefined ? 'unindexed' : 'indexed';
}

/**
 * Returns the lookup for reading the page, once the matches are counted. Reading newest first passes
 * about `(offset + limit) * entries / matches` rows before the page is full, while the index reads and
 * sorts all `matches`. The cheaper of the two wins, so a common action is read newest first and a rare
 * one through its index.
 */
export function pageLookup(query: AuditQuery, matches: number, entries: number): ActionLookup {
  if (countLookup(query) === 'unindexed') return 'unindexed';
  if (matches === 0) return 'indexed';
  return ((query.offset + query.limit) * entries) / matches < matches ? 'unindexed' : 'indexed';
}
