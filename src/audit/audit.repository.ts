import { sql, type Kysely, type RawBuilder, type SelectQueryBuilder, type Transaction } from 'kysely';
import type { DialectName, Executor } from '../db/database.js';
import type { Database } from '../db/schema.js';
import { toBool, toNumber } from '../db/values.js';
import { narrowAuditReach, type AuditReach, type NarrowedReach, type ReachParts } from './audit-reach.js';
import { choosesActionLookup, countLookup, pageLookup, type EntryLookup } from './entry-lookup.js';
import { auditRow } from './audit-row.js';
import { chainEntries, type ChainHead } from './chain.js';
import type { AuditEntry, AuditEntryInput, StoredAuditEntry } from './audit.types.js';

/** Rows per INSERT: 14 parameters each stays below SQLite's limit of 32,766 bound parameters per statement. */
const insertBatchRows = 1_000;

/**
 * Appends entries to the chain inside the caller's transaction. Locking the head row orders appends
 * from every connection and process: on PostgreSQL with SELECT ... FOR UPDATE, on SQLite through the
 * write lock that BEGIN IMMEDIATE already holds. `timestamp` is one instant for all entries, or one per
 * entry.
 */
export async function appendEntries(
  trx: Transaction<Database>,
  dialect: DialectName,
  inputs: ReadonlyArray<AuditEntryInput>,
  timestamp: string | ReadonlyArray<string>,
): Promise<AuditEntry[]> {
  let head = trx.selectFrom('aegis_audit_head').select(['seq', 'entry_hash']).where('id', '=', 1);
  if (dialect === 'postgres') head = head.forUpdate();
  const current = await head.executeTakeFirstOrThrow(missingHeadError);

  const entries = chainEntries({ seq: toNumber(current.seq), entryHash: current.entry_hash }, inputs, timestamp);
  if (entries.length === 0) return entries;
  for (let start = 0; start < entries.length; start += insertBatchRows) {
    await trx.insertInto('aegis_audit_log').values(entries.slice(start, start + insertBatchRows).map(auditRow)).execute();
  }
  const last = entries[entries.length - 1]!;
  await trx.updateTable('aegis_audit_head').set({ seq: last.seq, entry_hash: last.entryHash }).where('id', '=', 1).execute();
  return entries;
}

/**
 * Stores entries chained after `expected` (by `chainEntries`) in one PostgreSQL statement, which
 * commits on its own: it moves the head only if the head is still `expected`, and inserts the entries
 * only if it moved it. Returns false, having written nothing, when the head is elsewhere (another
 * writer appended since); the caller then takes the locked path of `appendEntries`. One round trip
 * instead of five (begin, lock, insert, update, commit) while one process writes the chain. A
 * statement that waits for the head row's lock compares against the head that the lock holder committed.
 */
export async function appendAfterHead(db: Kysely<Database>, expected: ChainHead, entries: ReadonlyArray<AuditEntry>): Promise<boolean> {
  if (entries.length === 0) return true;
  if (entries.length > insertBatchRows) return false;
  const last = entries[entries.length - 1]!;
  const rows = entries.map(auditRow);
  const column = <K extends keyof (typeof rows)[number]>(key: K) => rows.map((row) => row[key]);
  // One array per column keeps the statement short for any number of entries. In a probe of 16-entry
  // groups, PostgreSQL's CPU time per entry fell from about 46 to 40 us against a VALUES list.
  const result = await sql`
    with moved as (
      update aegis_audit_head set seq = ${last.seq}, entry_hash = ${last.entryHash}
      where id = 1 and seq = ${expected.seq} and entry_hash = ${expected.entryHash}
      returning id
    )
    insert into aegis_audit_log (id, seq, timestamp, credential_id, credential_name, action, actor, target, details, ip_address, success, error_message, prev_hash, entry_hash)
    select * from unnest(
      ${column('id')}::uuid[], ${column('seq')}::bigint[], ${column('timestamp')}::timestamptz[], ${column('credential_id')}::uuid[],
      ${column('credential_name')}::text[], ${column('action')}::text[], ${column('actor')}::text[], ${column('target')}::text[],
      ${column('details')}::jsonb[], ${column('ip_address')}::text[], ${column('success')}::boolean[], ${column('error_message')}::text[],
      ${column('prev_hash')}::text[], ${column('entry_hash')}::text[]
    )
    where exists (select 1 from moved)`.execute(db);
  return Number(result.numAffectedRows ?? 0) === entries.length;
}

type AuditRow = Awaited<ReturnType<typeof selectPage>>[number];

/**
 * Returns an entry's timestamp as stored: PostgreSQL's timestamptz in ISO form, SQLite's text unchanged.
 * Normalizing the text would hide an edit that keeps the instant but changes its form. Such an edit moves
 * the entry out of the date filters, reports and prunes, which compare the text, so it must fail verification.
 */
function storedTimestamp(value: Date | string): string {
  return typeof value === 'string' ? value : value.toISOString();
}

/**
 * Returns an entry's details object. A value that is not a JSON object can only come from a row changed
 * in the database, so its text is kept as read. The row can then still be listed and exported, and it
 * fails verification at its sequence number instead of failing the whole read.
 */
function storedDetails(value: unknown): Record<string, unknown> | string {
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      return value;
    }
  }
  if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function fromRow(row: AuditRow): StoredAuditEntry {
  return {
    id: row.id,
    seq: toNumber(row.seq),
    timestamp: storedTimestamp(row.timestamp),
    credentialId: row.credential_id,
    credentialName: row.credential_name,
    action: row.action,
    actor: row.actor,
    target: row.target,
    details: storedDetails(row.details),
    ipAddress: row.ip_address,
    success: toBool(row.success),
    errorMessage: row.error_message,
    prevHash: row.prev_hash,
    entryHash: row.entry_hash,
  };
}

function selectPage(db: Executor, afterSeq: number, throughSeq: number, limit: number) {
  return db
    .selectFrom('aegis_audit_log')
    .selectAll()
    .where('seq', '>', afterSeq)
    .where('seq', '<=', throughSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
}

/** Reads entries in chain order, `limit` at a time, with sequence numbers after `afterSeq` and up to `throughSeq`. */
export async function readChainPage(db: Executor, afterSeq: number, throughSeq: number, limit: number): Promise<StoredAuditEntry[]> {
  return (await selectPage(db, afterSeq, throughSeq, limit)).map(fromRow);
}

/** Reads the entries with these ids in chain order; ids not stored, and rows whose details are not a JSON object, are left out. */
export async function readEntriesById(db: Executor, ids: ReadonlyArray<string>): Promise<AuditEntry[]> {
  if (ids.length === 0) return [];
  const rows = await db.selectFrom('aegis_audit_log').selectAll().where('id', 'in', [...ids]).orderBy('seq').execute();
  return rows.map(fromRow).filter((entry): entry is AuditEntry => typeof entry.details !== 'string');
}

/** Reads the entry with the highest sequence number, or undefined when the log is empty. */
export async function readLastEntry(db: Executor): Promise<StoredAuditEntry | undefined> {
  const row = await db.selectFrom('aegis_audit_log').selectAll().orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return row ? fromRow(row) : undefined;
}

/** Reads the chain head, or undefined when its row was removed. */
export async function findHead(db: Executor): Promise<ChainHead | undefined> {
  const row = await db.selectFrom('aegis_audit_head').select(['seq', 'entry_hash']).where('id', '=', 1).executeTakeFirst();
  return row ? { seq: toNumber(row.seq), entryHash: row.entry_hash } : undefined;
}

/** Reads the chain head; throws when its row was removed. */
export async function readHead(db: Executor): Promise<ChainHead> {
  const head = await findHead(db);
  if (!head) throw missingHeadError();
  return head;
}

/** Builds the error for a chain head row that was removed, which stops every append, export and prune. */
export function missingHeadError(): Error {
  return new Error('The audit chain head row (aegis_audit_head, id 1) is missing, so nothing can be appended to the audit log. Run `aegis audit verify`.');
}

export interface AuditQuery {
  credentialName?: string | undefined;
  action?: string | undefined;
  actor?: string | undefined;
  startDate?: string | undefined;
  endDate?: string | undefined;
  success?: boolean | undefined;
  /** The entries a limited token may read, from `auditReach`; the query keeps only those. */
  reach?: AuditReach | undefined;
  limit: number;
  offset: number;
}

/**
 * Reads a limited token's page in two steps: the sequence numbers of the page, then its rows. Where an
 * index contains the filter's and the condition's columns, the first step reads only that index, so
 * rows that fail the condition are never read. PostgreSQL reads a row before it checks a condition that
 * is not part of the index lookup, which took 0.2 s for `success=false` over 1,000,000 entries when the
 * token reached few failures.
 *
 * With `sortMatches`, the database looks up the matching entries in the index and sorts their sequence
 * numbers, instead of walking the filter's entries in `seq` order until the page is full. For an actor's
 * entries about the reached names, that walk read all 50,000 of the actor's entries when the token
 * reached none of them: 0.1 to 0.3 s on SQLite, about 1 s on PostgreSQL (on a loaded machine). The unary
 * plus keeps the database from taking `seq` order from an index.
 */
async function readPageBySeq(db: Executor, filtered: SelectQueryBuilder<Database, 'aegis_audit_log', {}>, sortMatches: boolean, page: { limit: number; offset: number }) {
  const seqs = filtered
    .select('seq')
    .orderBy(sortMatches ? sql`+seq` : sql.ref('seq'), 'desc')
    .limit(page.limit)
    .offset(page.offset);
  return db.selectFrom('aegis_audit_log').selectAll().where('seq', 'in', seqs).orderBy('seq', 'desc').execute();
}

/**
 * Lists the entries of a condition split into two disjoint parts. The page is the newest entries of
 * both parts together, so each part gives its newest `offset + limit`, and the total is the sum of the
 * parts' counts.
 */
async function queryParts(
  db: Executor,
  filtered: SelectQueryBuilder<Database, 'aegis_audit_log', {}>,
  parts: { names: RawBuilder<boolean>; ownOthers: RawBuilder<boolean> },
  page: { limit: number; offset: number },
): Promise<{ entries: StoredAuditEntry[]; total: number }> {
  const named = filtered.where(parts.names);
  const own = filtered.where(parts.ownOthers);
  const newest = page.offset + page.limit;
  // As in readPageBySeq, the unary plus makes the database look up each reached name and sort the matches.
  const namedSeqs = db.selectFrom(named.select('seq').orderBy(sql`+seq`, 'desc').limit(newest).as('named')).select('seq');
  const ownSeqs = db.selectFrom(own.select('seq').orderBy('seq', 'desc').limit(newest).as('own')).select('seq');
  const seqs = db.selectFrom(namedSeqs.unionAll(ownSeqs).as('parts')).select('seq').orderBy('seq', 'desc').limit(page.limit).offset(page.offset);
  const rows = await db.selectFrom('aegis_audit_log').selectAll().where('seq', 'in', seqs).orderBy('seq', 'desc').execute();

  const count = sql<string | number>`count(*)`.as('count');
  const counts = await db.selectNoFrom([named.select(count).as('named'), own.select(count).as('own')]).executeTakeFirstOrThrow();
  return { entries: rows.map(fromRow), total: Number(counts.named) + Number(counts.own) };
}

function successLiteral(dialect: DialectName, success: boolean): string {
  if (dialect === 'sqlite') return success ? 'success = 1' : 'success = 0';
  return success ? 'success = true' : 'success = false';
}

/**
 * Lists entries newest first, with the total that matches the filters. The filters by actor, by
 * credential, by action with actor and by failure have indexes with `seq` right after the filter's
 * columns (migrations 0006, 0007 and 0014), so their pages are read in order without sorting every match.
 */
export async function queryEntries(db: Executor, dialect: DialectName, query: AuditQuery): Promise<{ entries: StoredAuditEntry[]; total: number }> {
  if (choosesActionLookup(dialect, query)) return queryCountedFirst(db, dialect, query, undefined);
  const filtered = filterEntries(db, dialect, query, 'indexed');
  const reach = query.reach === undefined ? undefined : await narrowAuditReach(db, query.reach, query);
  if (reach?.kind === 'split') return queryParts(db, filtered, reach, query);
  if (reach?.kind === 'either' && dialect === 'sqlite') return queryCountedFirst(db, dialect, query, reach);
  if (dialect === 'postgres' && (reach === undefined ? choosesPostgresLookup(query) : reach.kind === 'either')) {
    return queryPostgresCountedFirst(db, query, reach?.kind === 'either' ? reach : undefined);
  }
  const narrowed = reach !== undefined && reach.kind !== 'all' ? filtered.where(reach.condition) : filtered;

  let rows;
  if (reach === undefined || reach.kind === 'all') {
    rows = await narrowed.selectAll().orderBy('seq', 'desc').limit(query.limit).offset(query.offset).execute();
  } else {
    rows = await readPageBySeq(db, narrowed, reach.kind === 'names', query);
  }
  return { entries: rows.map(fromRow), total: await countEntries(db, dialect, narrowed, query) };
}

/** Applies the request's filters, written for `lookup` (see EntryLookup). */
function filterEntries(db: Executor, dialect: DialectName, query: AuditQuery, lookup: EntryLookup) {
  let filtered = db.selectFrom('aegis_audit_log');
  const action = lookup === 'indexed' ? sql.ref('action') : sql`+action`;
  const timestamp = lookup === 'newest-first' ? sql`+"timestamp"` : sql.ref('timestamp');
  if (query.credentialName !== undefined) filtered = filtered.where('credential_name', '=', query.credentialName);
  if (query.action !== undefined) filtered = filtered.where(action, '=', query.action);
  if (query.actor !== undefined) filtered = filtered.where('actor', '=', query.actor);
  if (query.startDate !== undefined) filtered = filtered.where(timestamp, '>=', query.startDate);
  if (query.endDate !== undefined) filtered = filtered.where(timestamp, '<=', query.endDate);
  // Written as a literal: SQLite uses the partial indexes on failed entries only for this exact text.
  if (query.success !== undefined) filtered = filtered.where(sql.raw<boolean>(successLiteral(dialect, query.success)));
  return filtered;
}

/**
 * Lists entries on SQLite by counting them first, to choose how to read the page (see pageLookup): one
 * action's entries without a limited token, or a limited token's entries when its reach is checked
 * in each entry.
 */
async function queryCountedFirst(db: Executor, dialect: DialectName, query: AuditQuery, reach: Extract<NarrowedReach, { kind: 'either' }> | undefined): Promise<{ entries: StoredAuditEntry[]; total: number }> {
  const within = (lookup: EntryLookup, narrowed: AuditQuery) => {
    const filtered = filterEntries(db, dialect, narrowed, lookup);
    if (reach === undefined) return filtered;
    return filtered.where(lookup === 'newest-first' ? reach.checkedInEntry : reach.condition);
  };
  const total = await countEntries(db, dialect, within(countLookup(query), query), query, (changed) => within(countLookup(changed), changed));
  const lookup = pageLookup(query, total, (await readHead(db)).seq);
  let rows;
  if (reach === undefined || lookup === 'newest-first') {
    rows = await within(lookup, query).selectAll().orderBy('seq', 'desc').limit(query.limit).offset(query.offset).execute();
  } else {
    rows = await readPageBySeq(db, within(lookup, query), false, query);
  }
  return { entries: rows.map(fromRow), total };
}

/**
 * Lists entries on PostgreSQL by counting them first, to choose how to read the page (see pageLookup):
 * a request with an end date and without an actor or a credential, or a limited token's request that
 * narrowAuditReach leaves `either`. With statistics PostgreSQL reads a common action's entries newest
 * first, but it expects a time range's entries to be spread over the whole log. For one day of a common
 * action, 30 days back, it read 960,000 newest entries before the first match: p95 0.22 to 0.44 s
 * over 1,000,000 entries, depending on the machine's load. Ordered by `+seq`, it looks the filters up
 * in an index and sorts the matches instead.
 */
async function queryPostgresCountedFirst(db: Executor, query: AuditQuery, reach: Extract<NarrowedReach, { kind: 'either' }> | undefined): Promise<{ entries: StoredAuditEntry[]; total: number }> {
  const filtered = filterEntries(db, 'postgres', query, 'indexed');
  const total = reach === undefined ? await countEntries(db, 'postgres', filtered, query) : await countParts(db, query, reach.parts);
  const laterEntries = query.endDate === undefined ? undefined : await countLater(db, query.endDate, total);
  const lookup = pageLookup(query, total, (await readHead(db)).seq, laterEntries);

  let rows;
  if (reach === undefined && lookup === 'newest-first') {
    rows = await filtered.selectAll().orderBy('seq', 'desc').limit(query.limit).offset(query.offset).execute();
  } else {
    rows = await readPageBySeq(db, reach === undefined ? filtered : filtered.where(reach.condition), lookup !== 'newest-first', query);
  }
  return { entries: rows.map(fromRow), total };
}

/** Tells whether an unlimited query on PostgreSQL counts first: an end date, without an actor or a credential. */
function choosesPostgresLookup(query: AuditQuery): boolean {
  return query.endDate !== undefined && query.actor === undefined && query.credentialName === undefined;
}

/** Counts a limited token's matches as the sum of its condition's two disjoint parts (see ReachParts). */
async function countParts(db: Executor, query: AuditQuery, parts: ReachParts): Promise<number> {
  let total = 0;
  for (const part of [parts.names, parts.ownOthers]) {
    const filter = (changed: AuditQuery) => filterEntries(db, 'postgres', changed, 'indexed').where(part);
    total += await countEntries(db, 'postgres', filter(query), query, filter);
  }
  return total;
}

/**
 * Counts the entries later than `endDate`, stopping at `atMost`. The order by time makes PostgreSQL read
 * the time index from the end date. Otherwise it may scan the table from its oldest rows, which are all
 * earlier, expecting to meet `atMost` later ones soon.
 */
async function countLater(db: Executor, endDate: string, atMost: number): Promise<number> {
  const later = db.selectFrom('aegis_audit_log').select(sql.lit(1).as('later')).where('timestamp', '>', endDate).orderBy('timestamp').limit(atMost).as('later');
  const row = await db.selectFrom(later).select(sql<string | number>`count(*)`.as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Tells whether the query filters by nothing but `success` (a limited token's reach aside). */
function filtersOnlySuccess(query: AuditQuery): boolean {
  const { credentialName, action, actor, startDate, endDate } = query;
  return [credentialName, action, actor, startDate, endDate].every((value) => value === undefined);
}

/**
 * Counts the entries that match. With `success=true` and no other filter, the count is all entries
 * less the failed ones, which a partial index of migration 0007 or 0014 contains. Otherwise SQLite checks
 * `success` in every entry of an index: 95 ms instead of 8 ms over 1,000,000 entries for an unlimited
 * token. `filter` builds the query of a changed request as `filtered` was built, and a limited token needs it.
 * NOTE: the total is an exact count, so other filters that match most of the log count most of it:
 * 40 ms for an action with 400,000 of 1,000,000 entries on SQLite (one measurement). PostgreSQL counts
 * more slowly: requests that counted all 1,000,000 entries took 45 to 75 ms at p50, and 833,000 after a
 * start date 75 to 150 ms, on a 2-core machine at load 1 to 7 (bench/audit-shapes.measure.ts).
 */
async function countEntries(
  db: Executor,
  dialect: DialectName,
  filtered: SelectQueryBuilder<Database, 'aegis_audit_log', {}>,
  query: AuditQuery,
  filter?: (changed: AuditQuery) => SelectQueryBuilder<Database, 'aegis_audit_log', {}>,
): Promise<number> {
  const count = sql<string | number>`count(*)`.as('count');
  if (filter === undefined && query.reach === undefined) filter = (changed) => filterEntries(db, dialect, changed, 'indexed');
  if (query.success === true && filtersOnlySuccess(query) && filter !== undefined) {
    // One statement reads both counts from one snapshot, so a failure appended meanwhile is not
    // subtracted from a count that does not contain it.
    const counts = await db
      .selectNoFrom([filter({ ...query, success: undefined }).select(count).as('all'), filter({ ...query, success: false }).select(count).as('failed')])
      .executeTakeFirstOrThrow();
    return Number(counts.all) - Number(counts.failed);
  }
  return Number((await filtered.select(count).executeTakeFirstOrThrow()).count);
}
