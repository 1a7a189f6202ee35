import { sql, type RawBuilder } from 'kysely';
import type { Db, DialectName } from '../db/database.js';
import { toBool, toIso, toNumber } from '../db/values.js';
import type { AnomalySettings } from './audit-settings.js';
import { AuditAction } from './audit.types.js';

export type AnomalyType =
  | 'new_credential_for_actor'
  | 'unusual_hour'
  | 'failure_burst'
  | 'read_rate'
  | 'value_revealed'
  | 'retired_or_expired_use'
  | 'emergency_rotation';

/** One finding of an anomaly rule, with the entries behind it. */
export interface Anomaly {
  type: AnomalyType;
  /** A sentence naming the actor, credential or address and what was unusual. It never contains a value. */
  reason: string;
  actor: string | null;
  credentialName: string | null;
  ipAddress: string | null;
  firstAt: string;
  lastAt: string;
  /** How many entries are behind the finding; `entrySeqs` and `entryIds` list the first of them. */
  entryCount: number;
  entrySeqs: number[];
  entryIds: string[];
}

/** A half-open period of UTC instants, ISO-8601: entries at or after `start` and before `end`. */
export interface AuditPeriod {
  start: string;
  end: string;
}

/** Entries listed per anomaly; `entryCount` still counts them all. */
export const MAX_LISTED_ENTRIES = 20;
/** Findings kept per rule in one report, so a flood of entries cannot make a report unbounded. */
export const MAX_ANOMALIES_PER_RULE = 100;
/** Bursts reported per actor or address in one report. */
const maxBurstsPerKey = 20;

/** Actions that read a credential, for the read-rate rule. */
const readActions = ['read', 'revealed', 'versions_read'];
/** Actions that use a credential, for the retired-or-expired rule; creating or retiring it is not use. */
const useActions = ['read', 'revealed', 'versions_read', 'rotated', 'rolled_back', 'updated'];
/**
 * The actor AEGIS records for its own jobs. Its schedule is fixed, so the rules that learn an actor's
 * habits skip it, and so does the retired-or-expired rule, because rotating an expired credential is its job.
 */
const systemActor = 'system';

const hourMs = 3_600_000;

type Row = Record<string, unknown>;

/**
 * The period's entries grouped by actor, credential name, action and outcome. The report's figures and
 * several anomaly rules are sums over these groups, so the period is scanned once for all of them.
 */
export interface PeriodGroup {
  actor: string;
  credentialName: string;
  action: string;
  success: boolean;
  entryCount: number;
  firstSeq: number;
  firstAt: string;
  lastAt: string;
}

/**
 * Reads the period's groups with one aggregate query. On SQLite it names the covering index
 * `idx_audit_report`, because without table statistics the planner picks a one-column index and reads
 * the table for every entry.
 */
export async function readPeriodGroups(db: Db, period: AuditPeriod): Promise<PeriodGroup[]> {
  const groups = await rows(
    db,
    sql`select actor, credential_name, action, success, count(*) as n, min(seq) as first_seq, min("timestamp") as first_at, max("timestamp") as last_at
        from aegis_audit_log ${indexedBy(db.dialect, 'idx_audit_report')}
        where ${inPeriod(period)}
        group by actor, credential_name, action, success`,
  );
  return groups.map((row) => ({
    actor: String(row.actor),
    credentialName: String(row.credential_name),
    action: String(row.action),
    success: toBool(row.success as boolean | number),
    ...groupFigures(row),
  }));
}

/**
 * Runs every anomaly rule over the period and returns the findings, oldest first entry first. `groups`
 * are the period's groups when the caller has already read them.
 */
export async function detectAnomalies(db: Db, period: AuditPeriod, settings: AnomalySettings, groups?: PeriodGroup[]): Promise<Anomaly[]> {
  const periodGroups = groups ?? (await readPeriodGroups(db, period));
  const found = [
    ...(await newCredentialForActor(db, period, periodGroups)),
    ...(await unusualHours(db, period, settings)),
    ...(await failureBursts(db, period, settings)),
    ...(await readRates(db, period, settings, periodGroups)),
    ...(await valueReveals(db, period, periodGroups)),
    ...(await retiredOrExpiredUse(db, period)),
    ...(await emergencyRotations(db, period)),
  ];
  return found.sort((a, b) => (a.entrySeqs[0] ?? 0) - (b.entrySeqs[0] ?? 0) || a.type.localeCompare(b.type));
}

/** Sums groups by `key`, keeping the lowest first sequence number and the earliest and latest times. */
function mergeGroups(groups: PeriodGroup[], key: (group: PeriodGroup) => string): Map<string, PeriodGroup> {
  const merged = new Map<string, PeriodGroup>();
  for (const group of groups) {
    const name = key(group);
    const seen = merged.get(name);
    if (!seen) {
      merged.set(name, { ...group });
      continue;
    }
    seen.entryCount += group.entryCount;
    seen.firstSeq = Math.min(seen.firstSeq, group.firstSeq);
    if (group.firstAt < seen.firstAt) seen.firstAt = group.firstAt;
    if (group.lastAt > seen.lastAt) seen.lastAt = group.lastAt;
  }
  return merged;
}

/** Orders merged groups by first sequence number, the order in which each rule keeps its first findings. */
function byFirstSeq(groups: Iterable<PeriodGroup>): PeriodGroup[] {
  return [...groups].sort((a, b) => a.firstSeq - b.firstSeq);
}

/** `indexed by NAME` on SQLite, nothing on PostgreSQL, whose planner has table statistics from autovacuum. */
function indexedBy(dialect: DialectName, index: string): RawBuilder<unknown> {
  return dialect === 'sqlite' ? sql.raw(`indexed by ${index}`) : sql``;
}

/**
 * Builds the failed-entry condition as the partial indexes of migration 0006 write it. SQLite matches a
 * query to a partial index only by this text, and a bound parameter would not match.
 */
function failedOnly(dialect: DialectName): RawBuilder<unknown> {
  return sql.raw(dialect === 'sqlite' ? 'success = 0' : 'success = false');
}

async function rows(db: Db, query: RawBuilder<unknown>): Promise<Row[]> {
  return (await query.execute(db.kysely)).rows as Row[];
}

/** Builds the UTC hour (0 to 23) of an entry's timestamp. SQLite stores ISO-8601 text in UTC; PostgreSQL converts explicitly, whatever the session's time zone. */
function hourOf(dialect: DialectName): RawBuilder<number> {
  return dialect === 'postgres' ? sql<number>`cast(extract(hour from "timestamp" at time zone 'UTC') as integer)` : sql<number>`cast(substr("timestamp", 12, 2) as integer)`;
}

function jsonText(dialect: DialectName, field: string): RawBuilder<string> {
  return dialect === 'postgres' ? sql<string>`details ->> ${field}` : sql<string>`json_extract(details, ${`$.${field}`})`;
}

/** Milliseconds from `from` to `to`, two timestamp expressions. */
function millisBetween(dialect: DialectName, from: RawBuilder<unknown>, to: RawBuilder<unknown>): RawBuilder<number> {
  return dialect === 'postgres'
    ? sql<number>`(extract(epoch from (${to} - ${from})) * 1000)`
    : // julianday returns a double, so 10 minutes come out as 600000.004 ms. Rounding keeps a window's end inside it.
      sql<number>`round((julianday(${to}) - julianday(${from})) * 86400000.0)`;
}

function inPeriod(period: AuditPeriod): RawBuilder<unknown> {
  return sql`"timestamp" >= ${period.start} and "timestamp" < ${period.end}`;
}

function list(values: string[]): RawBuilder<unknown> {
  return sql.join(values.map((value) => sql`${value}`));
}

/**
 * Counts the entries matching `where` and lists the first MAX_LISTED_ENTRIES of them, so an anomaly
 * names its entries without loading them all. `index` is an `indexed by` clause or empty.
 */
async function entriesBehind(
  db: Db,
  index: RawBuilder<unknown>,
  where: RawBuilder<unknown>,
): Promise<Pick<Anomaly, 'entryCount' | 'entrySeqs' | 'entryIds' | 'firstAt' | 'lastAt'>> {
  const [summary] = await rows(db, sql`select count(*) as n, min("timestamp") as first_at, max("timestamp") as last_at from aegis_audit_log ${index} where ${where}`);
  const listed = await rows(db, sql`select seq, id from aegis_audit_log ${index} where ${where} order by seq limit ${MAX_LISTED_ENTRIES}`);
  return {
    entryCount: toNumber(summary!.n as number),
    firstAt: toIso(summary!.first_at as string),
    lastAt: toIso(summary!.last_at as string),
    entrySeqs: listed.map((row) => toNumber(row.seq as number)),
    entryIds: listed.map((row) => String(row.id)),
  };
}

/**
 * Lists the first MAX_LISTED_ENTRIES entries matching `where`, starting at `firstSeq`, the lowest sequence
 * number among them, which the rule's aggregate query already found. `index` (named on SQLite) starts with
 * the equality columns of `where` and ends with `seq`, so the query reads from `firstSeq` onwards only.
 */
async function listEntries(db: Db, index: string, where: RawBuilder<unknown>, firstSeq: number): Promise<Pick<Anomaly, 'entrySeqs' | 'entryIds'>> {
  const listed = await rows(
    db,
    sql`select seq, id from aegis_audit_log ${indexedBy(db.dialect, index)}
        where ${where} and seq >= ${firstSeq} order by seq limit ${MAX_LISTED_ENTRIES}`,
  );
  return { entrySeqs: listed.map((row) => toNumber(row.seq as number)), entryIds: listed.map((row) => String(row.id)) };
}

/** Reads the count, first and last time and first sequence number of a group from an aggregate row. */
function groupFigures(row: Row): { entryCount: number; firstAt: string; lastAt: string; firstSeq: number } {
  return {
    entryCount: toNumber(row.n as number),
    firstAt: toIso(row.first_at as string),
    lastAt: toIso(row.last_at as string),
    firstSeq: toNumber(row.first_seq as number),
  };
}

/** Actions whose credential name is a search filter (of the audit log, rotation history or alerts), not a credential that was used. */
const filterActions = [AuditAction.auditRead, AuditAction.auditExported, AuditAction.auditReported, 'history_read', 'alerts_read'];
const filterActionSet = new Set<string>(filterActions);

/**
 * Reports an actor that used a credential it had no entry for before the period. Only successful entries count, and
 * an actor that created the credential itself is not reported for using it.
 */
async function newCredentialForActor(db: Db, period: AuditPeriod, groups: PeriodGroup[]): Promise<Anomaly[]> {
  // A pair with a successful `created` entry in the period is never reported, so each candidate's count
  // is the pair's successful entries in the period, as listed below.
  const candidates = mergeGroups(
    groups.filter((group) => group.success && group.credentialName !== '*' && group.action !== 'created' && !filterActionSet.has(group.action) && group.actor !== systemActor),
    (group) => JSON.stringify([group.actor, group.credentialName]),
  );
  const found: Anomaly[] = [];
  for (const pair of byFirstSeq(candidates.values())) {
    if (found.length >= MAX_ANOMALIES_PER_RULE) break;
    const { actor, credentialName: name } = pair;
    // Two index probes on (actor, credential_name, ...) per pair: any entry before the period, or a successful creation.
    const [history] = await rows(
      db,
      sql`select
            exists (select 1 from aegis_audit_log p where p.actor = ${actor} and p.credential_name = ${name} and p."timestamp" < ${period.start} and p.action not in (${sql.join(filterActions)})) as used_before,
            exists (select 1 from aegis_audit_log c ${indexedBy(db.dialect, 'idx_audit_action_actor_seq')} where c.actor = ${actor} and c.credential_name = ${name} and c.action = 'created' and c.success = ${true} and c."timestamp" < ${period.end}) as created`,
    );
    if (toBool(history!.used_before as boolean | number) || toBool(history!.created as boolean | number)) continue;
    const listed = await listEntries(db, 'idx_audit_actor_name_seq', sql`actor = ${actor} and credential_name = ${name} and success = ${true} and action not in (${sql.join(filterActions)}) and ${inPeriod(period)}`, pair.firstSeq);
    found.push({
      type: 'new_credential_for_actor',
      reason: `${actor} used credential '${name}' for the first time: it has no earlier entry for it.`,
      actor,
      credentialName: name,
      ipAddress: null,
      entryCount: pair.entryCount,
      firstAt: pair.firstAt,
      lastAt: pair.lastAt,
      ...listed,
    });
  }
  return found;
}

/**
 * Reports an actor that made calls in a UTC hour in which it made none during the baseline days before the period.
 * Actors with fewer than `hoursMinBaselineEntries` baseline entries have no usual hours yet and are skipped.
 */
async function unusualHours(db: Db, period: AuditPeriod, settings: AnomalySettings): Promise<Anomaly[]> {
  const hour = hourOf(db.dialect);
  const baselineStart = new Date(new Date(period.start).getTime() - settings.baselineDays * 24 * hourMs).toISOString();
  // NOTE: with a full baseline this rule scans the baseline days and then the period, which took 1.0 s
  // for 1,000,000 entries in each on SQLite: the slowest part of the report.
  const baseline = await rows(
    db,
    sql`select actor, ${hour} as hour, count(*) as n from aegis_audit_log ${indexedBy(db.dialect, 'idx_audit_report')}
        where "timestamp" >= ${baselineStart} and "timestamp" < ${period.start} and actor <> ${systemActor}
        group by actor, ${hour}`,
  );
  const usual = new Map<string, { total: number; hours: Set<number> }>();
  for (const row of baseline) {
    const actor = String(row.actor);
    const entry = usual.get(actor) ?? { total: 0, hours: new Set<number>() };
    entry.total += toNumber(row.n as number);
    entry.hours.add(toNumber(row.hour as number));
    usual.set(actor, entry);
  }
  // Only actors with enough baseline entries can be reported, so the period is scanned for them alone.
  const habitualActors = [...usual].filter(([, habits]) => habits.total >= settings.hoursMinBaselineEntries).map(([actor]) => actor);
  if (habitualActors.length === 0) return [];

  const current = await rows(
    db,
    sql`select actor, ${hour} as hour, count(*) as n, min(seq) as first_seq, min("timestamp") as first_at, max("timestamp") as last_at
        from aegis_audit_log ${indexedBy(db.dialect, 'idx_audit_report')}
        where ${inPeriod(period)} and actor in (${list(habitualActors)})
        group by actor, ${hour} order by first_seq`,
  );
  const found: Anomaly[] = [];
  for (const row of current) {
    const actor = String(row.actor);
    const hourValue = toNumber(row.hour as number);
    const habits = usual.get(actor);
    if (!habits || habits.total < settings.hoursMinBaselineEntries || habits.hours.has(hourValue)) continue;
    if (found.length >= MAX_ANOMALIES_PER_RULE) break;
    const { firstSeq, ...figures } = groupFigures(row);
    const behind = { ...figures, ...(await listEntries(db, 'idx_audit_actor_seq', sql`actor = ${actor} and ${hour} = ${hourValue} and ${inPeriod(period)}`, firstSeq)) };
    found.push({
      type: 'unusual_hour',
      reason: `${actor} made ${counted(behind.entryCount, 'call')} between ${formatHour(hourValue)} and ${formatHour(hourValue + 1)} UTC, an hour in which it made none of its ${counted(habits.total, 'call')} in the ${settings.baselineDays} days before; its usual hours are ${describeHours(habits.hours)} UTC.`,
      actor,
      credentialName: null,
      ipAddress: null,
      ...behind,
    });
  }
  return found;
}

function formatHour(hour: number): string {
  return `${String(hour % 24).padStart(2, '0')}:00`;
}

/** Describes a set of UTC hours as ranges, e.g. "09:00-12:00, 14:00-15:00". */
/** Writes a count with its noun, singular for 1: "1 call", "2 calls". */
function counted(total: number, noun: string): string {
  return `${total} ${noun}${total === 1 ? '' : 's'}`;
}

function describeHours(hours: Set<number>): string {
  const sorted = [...hours].sort((a, b) => a - b);
  const ranges: string[] = [];
  let start = sorted[0]!;
  let previous = start;
  for (const hour of [...sorted.slice(1), Number.NaN]) {
    if (hour === previous + 1) {
      previous = hour;
      continue;
    }
    ranges.push(`${formatHour(start)}-${formatHour(previous + 1)}`);
    start = hour;
    previous = hour;
  }
  return ranges.join(', ');
}

/**
 * `failureBurstCount` or more failed or denied calls within `failureBurstMinutes` from one actor or from
 * one address. A burst starts at the first failure whose (count - 1)th successor lies inside the window.
 * The next burst of the same actor or address is searched for after that window ends.
 */
async function failureBursts(db: Db, period: AuditPeriod, settings: AnomalySettings): Promise<Anomaly[]> {
  const windowMs = settings.failureBurstMinutes * 60_000;
  const found: Anomaly[] = [];
  const seenFirstSeqs = new Set<number>();
  for (const column of ['actor', 'ip_address'] as const) {
    const key = sql.ref(column);
    // Partial indexes on (actor, seq) and (ip_address, seq) contain failed entries only, so every query here reads failures alone.
    const failures = indexedBy(db.dialect, column === 'actor' ? 'idx_audit_actor_failed' : 'idx_audit_address_failed');
    const candidates = await rows(
      db,
      sql`select ${key} as key, min(seq) as first_seq from aegis_audit_log ${failures}
          where ${inPeriod(period)} and ${failedOnly(db.dialect)} and ${key} is not null
          group by ${key} having count(*) >= ${settings.failureBurstCount} order by first_seq limit ${MAX_ANOMALIES_PER_RULE}`,
    );
    for (const candidate of candidates) {
      const value = String(candidate.key);
      let from = period.start;
      for (let burst = 0; burst < maxBurstsPerKey && found.length < MAX_ANOMALIES_PER_RULE; burst += 1) {
        const [start] = await rows(
          db,
          sql`select seq, "timestamp" from (
                select seq, "timestamp", lead("timestamp", ${settings.failureBurstCount - 1}) over (order by seq) as later
                from aegis_audit_log ${failures}
                where ${key} = ${value} and ${failedOnly(db.dialect)} and "timestamp" >= ${from} and "timestamp" < ${period.end}
              ) failures
              where later is not null and ${millisBetween(db.dialect, sql`"timestamp"`, sql`later`)} <= ${windowMs}
              order by seq limit 1`,
        );
        if (!start) break;
        const startAt = toIso(start.timestamp as string);
        const windowEnd = new Date(new Date(startAt).getTime() + windowMs).toISOString();
        const behind = await entriesBehind(
          db,
          failures,
          sql`${key} = ${value} and ${failedOnly(db.dialect)} and seq >= ${toNumber(start.seq as number)} and "timestamp" <= ${windowEnd} and "timestamp" < ${period.end}`,
        );
        const firstSeq = behind.entrySeqs[0]!;
        if (!seenFirstSeqs.has(firstSeq)) {
          seenFirstSeqs.add(firstSeq);
          const who = column === 'actor' ? value : `address ${value}`;
          found.push({
            type: 'failure_burst',
            reason: `${who} made ${behind.entryCount} failed or denied calls within ${settings.failureBurstMinutes} minutes from ${startAt} (${settings.failureBurstCount} in ${settings.failureBurstMinutes} minutes is a burst).`,
            actor: column === 'actor' ? value : null,
            credentialName: null,
            ipAddress: column === 'ip_address' ? value : null,
            ...behind,
          });
        }
        from = new Date(new Date(windowEnd).getTime() + 1).toISOString();
      }
    }
  }
  return found;
}

/**
 * Reports an actor that read credentials (read, revealed, versions_read) at more than `readRateFactor` times its
 * hourly rate over the baseline days before the period, with at least `readRateMinReads` reads. An actor
 * with no baseline reads is counted as one read in the baseline, so a new actor's flood is reported too.
 */
async function readRates(db: Db, period: AuditPeriod, settings: AnomalySettings, groups: PeriodGroup[]): Promise<Anomaly[]> {
  const periodHours = (new Date(period.end).getTime() - new Date(period.start).getTime()) / hourMs;
  const baselineHours = settings.baselineDays * 24;
  const baselineStart = new Date(new Date(period.start).getTime() - baselineHours * hourMs).toISOString();
  const readers = mergeGroups(
    groups.filter((group) => readActions.includes(group.action) && group.actor !== systemActor),
    (group) => group.actor,
  );
  // The first MAX_ANOMALIES_PER_RULE candidates by first read are kept before the rate test.
  const candidates = byFirstSeq(readers.values())
    .filter((reader) => reader.entryCount >= settings.readRateMinReads)
    .slice(0, MAX_ANOMALIES_PER_RULE);
  if (candidates.length === 0) return [];

  const baseline = await rows(
    db,
    sql`select actor, count(*) as n from aegis_audit_log ${indexedBy(db.dialect, 'idx_audit_report')}
        where "timestamp" >= ${baselineStart} and "timestamp" < ${period.start} and action in (${list(readActions)})
          and actor in (${list(candidates.map((candidate) => candidate.actor))})
        group by actor`,
  );
  const baselineByActor = new Map(baseline.map((row) => [String(row.actor), toNumber(row.n as number)]));

  const found: Anomaly[] = [];
  for (const candidate of candidates) {
    const actor = candidate.actor;
    const reads = candidate.entryCount;
    const baselineReads = baselineByActor.get(actor) ?? 0;
    const rate = reads / periodHours;
    const baselineRate = Math.max(baselineReads, 1) / baselineHours;
    if (rate <= settings.readRateFactor * baselineRate) continue;
    const listed = await listEntries(db, 'idx_audit_actor_seq', sql`actor = ${actor} and action in (${list(readActions)}) and ${inPeriod(period)}`, candidate.firstSeq);
    found.push({
      type: 'read_rate',
      reason: `${actor} made ${counted(reads, 'read')} (${formatRate(rate)} per hour), more than ${settings.readRateFactor} times its rate of ${formatRate(baselineReads / baselineHours)} per hour (${counted(baselineReads, 'read')}) in the ${settings.baselineDays} days before.`,
      actor,
      credentialName: null,
      ipAddress: null,
      entryCount: reads,
      firstAt: candidate.firstAt,
      lastAt: candidate.lastAt,
      ...listed,
    });
  }
  return found;
}

function formatRate(perHour: number): string {
  if (perHour >= 10) return perHour.toFixed(0);
  if (perHour >= 0.1) return perHour.toFixed(2);
  return perHour.toFixed(4);
}

/** Reports each reveal of a value, with one finding per actor and credential. */
async function valueReveals(db: Db, period: AuditPeriod, groups: PeriodGroup[]): Promise<Anomaly[]> {
  const pairs = mergeGroups(
    groups.filter((group) => group.action === 'revealed' && group.success),
    (group) => JSON.stringify([group.actor, group.credentialName]),
  );
  const found: Anomaly[] = [];
  for (const pair of byFirstSeq(pairs.values()).slice(0, MAX_ANOMALIES_PER_RULE)) {
    const { actor, credentialName: name, entryCount } = pair;
    const listed = await listEntries(
      db,
      'idx_audit_actor_name_seq',
      sql`actor = ${actor} and credential_name = ${name} and action = 'revealed' and success = ${true} and ${inPeriod(period)}`,
      pair.firstSeq,
    );
    found.push({
      type: 'value_revealed',
      reason: `${actor} revealed the value of credential '${name}' ${entryCount === 1 ? 'once' : `${entryCount} times`}.`,
      actor,
      credentialName: name,
      ipAddress: null,
      entryCount,
      firstAt: pair.firstAt,
      lastAt: pair.lastAt,
      ...listed,
    });
  }
  return found;
}

/**
 * Reports a credential used, successfully or not, after it was retired (an earlier successful `retired`
 * entry) or after its expiry time. NOTE: the expiry time is the credential's current one, so an entry
 * made before a later change of `expires_at` is judged by the new time.
 */
async function retiredOrExpiredUse(db: Db, period: AuditPeriod): Promise<Anomaly[]> {
  const retiredBefore = sql`exists (select 1 from aegis_audit_log r where r.credential_name = a.credential_name and r.action = 'retired' and r.success = ${true} and r.seq < a.seq)`;
  const expiredBefore = sql`(c.expires_at is not null and a."timestamp" > c.expires_at)`;
  const state = sql<string>`case when c.status = 'retired' and ${retiredBefore} then 'retired' else 'expired' end`;
  const groups = await rows(
    db,
    sql`select actor, credential_name, state, min(seq) as first_seq, min(expires_at) as expires_at from (
          select a.actor, a.credential_name, a.seq, c.expires_at, ${state} as state
          from aegis_audit_log a ${indexedBy(db.dialect, 'idx_audit_name')} join aegis_credentials c on c.name = a.credential_name
          where a."timestamp" >= ${period.start} and a."timestamp" < ${period.end} and a.action in (${list(useActions)}) and a.actor <> ${systemActor}
            and a.credential_name in (select name from aegis_credentials where status = 'retired' or expires_at is not null)
            and ((c.status = 'retired' and ${retiredBefore}) or ${expiredBefore})
        ) uses
        group by actor, credential_name, state order by first_seq limit ${MAX_ANOMALIES_PER_RULE}`,
  );
  const found: Anomaly[] = [];
  for (const group of groups) {
    const actor = String(group.actor);
    const name = String(group.credential_name);
    const retired = group.state === 'retired';
    const condition = retired ? sql`c.status = 'retired' and ${retiredBefore}` : sql`${expiredBefore} and not (c.status = 'retired' and ${retiredBefore})`;
    const where = sql`a.actor = ${actor} and a.credential_name = ${name} and a.action in (${list(useActions)}) and a."timestamp" >= ${period.start} and a."timestamp" < ${period.end} and ${condition}`;
    const [summary] = await rows(
      db,
      sql`select count(*) as n, min(a."timestamp") as first_at, max(a."timestamp") as last_at from aegis_audit_log a join aegis_credentials c on c.name = a.credential_name where ${where}`,
    );
    const listed = await rows(db, sql`select a.seq, a.id from aegis_audit_log a join aegis_credentials c on c.name = a.credential_name where ${where} order by a.seq limit ${MAX_LISTED_ENTRIES}`);
    const count = toNumber(summary!.n as number);
    const times = count === 1 ? 'once' : `${count} times`;
    found.push({
      type: 'retired_or_expired_use',
      reason: retired
        ? `${actor} used credential '${name}' ${times} after it was retired.`
        : `${actor} used credential '${name}' ${times} after it expired at ${toIso(group.expires_at as string)}.`,
      actor,
      credentialName: name,
      ipAddress: null,
      entryCount: count,
      firstAt: toIso(summary!.first_at as string),
      lastAt: toIso(summary!.last_at as string),
      entrySeqs: listed.map((row) => toNumber(row.seq as number)),
      entryIds: listed.map((row) => String(row.id)),
    });
  }
  return found;
}

/** Reports each rotation with trigger `emergency`, successful or not, as its own finding. */
async function emergencyRotations(db: Db, period: AuditPeriod): Promise<Anomaly[]> {
  const entries = await rows(
    db,
    sql`select seq, id, "timestamp", actor, credential_name, success from aegis_audit_log
        where ${inPeriod(period)} and action = 'rotated' and ${jsonText(db.dialect, 'trigger')} = 'emergency'
        order by seq limit ${MAX_ANOMALIES_PER_RULE}`,
  );
  return entries.map((entry) => {
    const at = toIso(entry.timestamp as string);
    const succeeded = entry.success === true || entry.success === 1;
    return {
      type: 'emergency_rotation' as const,
      reason: `${String(entry.actor)} ran an emergency rotation of credential '${String(entry.credential_name)}' at ${at}, which ${succeeded ? 'succeeded' : 'failed'}.`,
      actor: String(entry.actor),
      credentialName: String(entry.credential_name),
      ipAddress: null,
      firstAt: at,
      lastAt: at,
      entryCount: 1,
      entrySeqs: [toNumber(entry.seq as number)],
      entryIds: [String(entry.id)],
    };
  });
}
