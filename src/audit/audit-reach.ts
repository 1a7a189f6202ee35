import { sql, type RawBuilder } from 'kysely';
import type { DialectName, Executor } from '../db/database.js';
import { reachCondition } from '../registry/credentials.repository.js';
import type { Caller } from '../tokens/caller.js';

/**
 * The audit entries a token with name or tag limits may read: its own actor's, and those whose
 * `credential_name` names a stored credential it reaches (see docs/audit.md). Names are unique and never
 * change, and credentials are never deleted, so the name finds the same credential as the entry's
 * `credential_id`.
 */
export interface AuditReach {
  dialect: DialectName;
  /** The token's actor, whose entries the token reads whatever they are about. */
  actor: string;
  /** Matches the rows of `aegis_credentials as reached` that the token reaches. */
  reached: RawBuilder<boolean>;
}

/** Returns the reach of a token with limits, or undefined for a token without limits, so their queries stay unchanged. */
export function auditReach(dialect: DialectName, caller: Pick<Caller, 'actor' | 'namePatterns' | 'tags'>): AuditReach | undefined {
  const reached = reachCondition(dialect, caller, 'reached');
  return reached === undefined ? undefined : { dialect, actor: caller.actor, reached };
}

/** Matches every entry the token reads. */
export function auditReachCondition(reach: AuditReach): RawBuilder<boolean> {
  return sql<boolean>`(${sql.ref('aegis_audit_log.actor')} = ${reach.actor} or ${namesReached(reach)})`;
}

/** Matches the entries that name a stored credential the token reaches. */
function namesReached(reach: AuditReach): RawBuilder<boolean> {
  return sql<boolean>`${sql.ref('aegis_audit_log.credential_name')} in (${reachedNames(reach)})`;
}

/**
 * Selects the names of the reached credentials, anew in each statement.
 * NOTE: with a tag limit this reads every stored credential and its JSON tags: about 0.5 ms of CPU per
 * statement for 2,000 credentials on SQLite, so roughly 25 ms for 100,000 (an estimate from that rate).
 */
function reachedNames(reach: AuditReach): RawBuilder<unknown> {
  return sql`select reached.name from aegis_credentials as reached where ${reach.reached}`;
}

/**
 * A limited token's condition for one query, narrowed by the query's filters:
 * - `all`: the filters keep only entries the token reads, so no condition is needed;
 * - `names`: the filters exclude the token's own actor, so only the names count;
 * - `own`: the filters name a credential the token does not reach, so only its own actor's entries count;
 * - `split`: the full condition as two disjoint parts, each served by its own index: the entries about
 *   reached names, and the own actor's entries about other names;
 * - `either`: the full condition, and the same written so that SQLite checks it in each entry instead of
 *   looking it up in indexes (see EntryLookup). `parts` splits it as `split` does, for PostgreSQL to
 *   count the matches.
 */
export type NarrowedReach =
  | { kind: 'all' }
  | { kind: 'names' | 'own'; condition: RawBuilder<boolean> }
  | { kind: 'either'; condition: RawBuilder<boolean>; checkedInEntry: RawBuilder<boolean>; parts: ReachParts }
  | ({ kind: 'split' } & ReachParts);

/** The full condition as two disjoint parts: the entries about reached names, and the own actor's entries about other names. */
export interface ReachParts {
  names: RawBuilder<boolean>;
  ownOthers: RawBuilder<boolean>;
}

/**
 * Narrows the condition by the query's `actor`, `credentialName` and `success` filters. Each narrowed
 * form matches exactly the entries the full condition matches within those filters, and lets the
 * database serve the filter and the condition from one index instead of combining two. `action` only
 * chooses how PostgreSQL counts the `either` parts.
 */
export async function narrowAuditReach(
  db: Executor,
  reach: AuditReach,
  filter: { action?: string | undefined; actor?: string | undefined; credentialName?: string | undefined; success?: boolean | undefined },
): Promise<NarrowedReach> {
  if (filter.actor === reach.actor) return { kind: 'all' };
  if (filter.actor !== undefined) return { kind: 'names', condition: namesLookedUp(reach) };
  if (filter.credentialName !== undefined) {
    const named = await sql`select 1 as found from aegis_credentials as reached where reached.name = ${filter.credentialName} and ${reach.reached}`.execute(db);
    if (named.rows.length > 0) return { kind: 'all' };
    return { kind: 'own', condition: ownActor(reach) };
  }
  // With `success=false` and the full condition, SQLite looked up each reached name in an index of all
  // entries and read every row after the start date to check `success`: 0.3 to 1.5 s over 1,000,000
  // entries on a loaded machine. Split, the names go to the index of migration 0014 on failed entries.
  if (filter.success === false) {
    return { kind: 'split', names: namesLookedUp(reach), ownOthers: ownActorOtherNames(reach) };
  }
  // Without such a filter, SQLite looks the condition up in two indexes and sorts every match for the
  // page: 1.3 s for a start date and 2.1 s for `success=true` over 1,000,000 entries on a loaded machine.
  // On SQLite, queryEntries counts first and reads newest first with `checkedInEntry` when matches are common.
  const checkedInEntry = sql<boolean>`(+${sql.ref('aegis_audit_log.actor')} = ${reach.actor} or +${sql.ref('aegis_audit_log.credential_name')} in (${reachedNames(reach)}))`;
  // PostgreSQL counted the full condition in a scan of the whole table (0.2 s over 1,000,000 entries).
  // Split, it looks the reached names up in an index on `credential_name`. With an action, though, it
  // preferred the action's index and searched the names' array in each entry (1.6 s), so `in` stays.
  const names = filter.action === undefined ? namesLookedUp(reach) : namesReached(reach);
  return { kind: 'either', condition: auditReachCondition(reach), checkedInEntry, parts: { names, ownOthers: ownActorOtherNames(reach) } };
}

function ownActor(reach: AuditReach): RawBuilder<boolean> {
  return sql<boolean>`${sql.ref('aegis_audit_log.actor')} = ${reach.actor}`;
}

function ownActorOtherNames(reach: AuditReach): RawBuilder<boolean> {
  return sql<boolean>`(${ownActor(reach)} and not ${namesReached(reach)})`;
}

/**
 * Matches the entries that name a reached credential, written so that the database looks each name up
 * in an index that starts with, or follows the filter's columns with, `credential_name`. PostgreSQL does
 * so for `= any(array)`, but for `in (select ...)` it reads all the filter's entries and joins them
 * with the names.
 */
function namesLookedUp(reach: AuditReach): RawBuilder<boolean> {
  if (reach.dialect === 'sqlite') return namesReached(reach);
  return sql<boolean>`${sql.ref('aegis_audit_log.credential_name')} = any(array(${reachedNames(reach)}))`;
}
