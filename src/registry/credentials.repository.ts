import { sql, type Selectable } from 'kysely';
import type { DialectName, Executor } from '../db/database.js';
import type { CredentialsTable } from '../db/schema.js';
import { fromJson, toBool, toIso, toJson, toNumber } from '../db/values.js';
import type { Credential, CredentialStatus, HealthCheckSummary } from './credential.types.js';
import { effectiveStatusSql } from './status.js';

export function credentialFromRow(row: Selectable<CredentialsTable>): Credential {
  return {
    id: row.id,
    name: row.name,
    credentialType: row.credential_type,
    provider: row.provider as Credential['provider'],
    description: row.description,
    encryptedValue: row.encrypted_value,
    encryptionKeyId: row.encryption_key_id,
    providerCredentialId: row.provider_credential_id,
    providerConfig: fromJson<Record<string, unknown>>(row.provider_config),
    status: row.status as CredentialStatus,
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
    expiresAt: toIso(row.expires_at),
    lastRotatedAt: toIso(row.last_rotated_at),
    lastUsedAt: toIso(row.last_used_at),
    lastHealthCheck: toIso(row.last_health_check),
    rotationEnabled: toBool(row.rotation_enabled),
    rotationIntervalHours: row.rotation_interval_hours,
    rotationStrategy: row.rotation_strategy as Credential['rotationStrategy'],
    nextRotationAt: toIso(row.next_rotation_at),
    alertThresholdHours: row.alert_threshold_hours,
    alertSent: toBool(row.alert_sent),
    tags: fromJson<string[]>(row.tags),
    metadata: fromJson<Record<string, unknown>>(row.metadata),
    rotationCron: row.rotation_cron,
    rotationTimezone: row.rotation_timezone,
    valuePolicy: row.value_policy === null || row.value_policy === undefined ? null : fromJson<Credential['valuePolicy']>(row.value_policy),
  };
}

function toRow(credential: Credential) {
  return {
    id: credential.id,
    name: credential.name,
    credential_type: credential.credentialType,
    provider: credential.provider,
    description: credential.description,
    encrypted_value: credential.encryptedValue,
    encryption_key_id: credential.encryptionKeyId,
    provider_credential_id: credential.providerCredentialId,
    provider_config: toJson(credential.providerConfig),
    status: credential.status,
    created_at: credential.createdAt,
    updated_at: credential.updatedAt,
    expires_at: credential.expiresAt,
    last_rotated_at: credential.lastRotatedAt,
    last_used_at: credential.lastUsedAt,
    last_health_check: credential.lastHealthCheck,
    rotation_enabled: credential.rotationEnabled,
    rotation_interval_hours: credential.rotationIntervalHours,
    rotation_strategy: credential.rotationStrategy,
    next_rotation_at: credential.nextRotationAt,
    alert_threshold_hours: credential.alertThresholdHours,
    alert_sent: credential.alertSent,
    tags: toJson(credential.tags),
    metadata: toJson(credential.metadata),
    rotation_cron: credential.rotationCron,
    rotation_timezone: credential.rotationTimezone,
    value_policy: credential.valuePolicy === null ? null : toJson(credential.valuePolicy),
  };
}

export async function insertCredential(db: Executor, credential: Credential): Promise<void> {
  await db.insertInto('aegis_credentials').values(toRow(credential)).execute();
}

/** Writes every column of the credential but its id, name and creation time. */
export async function saveCredential(db: Executor, credential: Credential): Promise<void> {
  const { id: _id, name: _name, created_at: _createdAt, ...columns } = toRow(credential);
  await db.updateTable('aegis_credentials').set(columns).where('id', '=', credential.id).execute();
}

/**
 * Reads a credential by name or id in a transaction that is about to change it. On PostgreSQL the row
 * stays locked until the transaction ends, so a concurrent change waits, then reads what this one wrote
 * instead of overwriting it. The lock is FOR NO KEY UPDATE, the one an UPDATE takes. FOR UPDATE would
 * also block the foreign key checks of audit entries that name the credential. An audit group commit
 * that held the chain head while waiting there deadlocked with a rotation waiting for the head. A
 * SQLite transaction holds the write lock from its start (BEGIN IMMEDIATE), which orders changes already.
 */
export async function findCredentialForChange(trx: Executor, dialect: DialectName, where: { name: string } | { id: string }): Promise<Credential | undefined> {
  let query = trx.selectFrom('aegis_credentials').selectAll();
  query = 'name' in where ? query.where('name', '=', where.name) : query.where('id', '=', where.id);
  if (dialect === 'postgres') query = query.forNoKeyUpdate();
  const row = await query.executeTakeFirst();
  return row ? credentialFromRow(row) : undefined;
}

/**
 * Locks the rows of several credentials for a change, in the order of their ids, on PostgreSQL. A
 * statement that updates many rows at once locks them in the order it finds them, so two such
 * transactions (health checks and expiry in two processes, say) could each wait for the other.
 * Taking the locks in one order first rules that out.
 */
export async function lockCredentials(trx: Executor, dialect: DialectName, ids: ReadonlyArray<string>): Promise<void> {
  if (dialect !== 'postgres' || ids.length === 0) return;
  await trx.selectFrom('aegis_credentials').select('id').where('id', 'in', [...ids]).orderBy('id').forNoKeyUpdate().execute();
}

export async function findCredentialByName(db: Executor, name: string): Promise<Credential | undefined> {
  const row = await db.selectFrom('aegis_credentials').selectAll().where('name', '=', name).executeTakeFirst();
  return row ? credentialFromRow(row) : undefined;
}

/** Lists the credentials of a provider that are not retired, for checks that compare their provider settings. */
export async function listUnretiredOfProvider(db: Executor, provider: string): Promise<Credential[]> {
  const rows = await db.selectFrom('aegis_credentials').selectAll().where('provider', '=', provider).where('status', '!=', 'retired').execute();
  return rows.map(credentialFromRow);
}

/** A credential with what `GET /credentials/{name}` shows beside it. */
export interface CredentialDetailRow {
  credential: Credential;
  health: HealthCheckSummary;
  currentVersion: number | null;
  versionCount: number;
}

/**
 * Reads a credential, its version count, its current version and its latest health check in one
 * statement: one round trip on PostgreSQL instead of three, on the path agents call most.
 */
export async function findCredentialDetail(db: Executor, name: string): Promise<CredentialDetailRow | undefined> {
  const row = await db
    .selectFrom('aegis_credentials as c')
    .selectAll('c')
    .select((eb) => {
      // The id breaks ties between checks stored in the same millisecond, so all four columns come from one row.
      const latestCheck = () =>
        eb.selectFrom('aegis_health_checks as h').whereRef('h.credential_id', '=', 'c.id').orderBy('h.checked_at', 'desc').orderBy('h.id', 'desc').limit(1);
      const versions = () => eb.selectFrom('aegis_credential_versions as v').whereRef('v.credential_id', '=', 'c.id');
      return [
        versions().select(eb.fn.countAll().as('count')).as('version_count'),
        versions().select('v.version').where('v.is_current', '=', true).limit(1).as('current_version'),
        latestCheck().select('h.status').as('health_status'),
        latestCheck().select('h.checked_at').as('health_checked_at'),
        latestCheck().select('h.response_time_ms').as('health_response_time_ms'),
        latestCheck().select('h.error_message').as('health_error_message'),
      ];
    })
    .where('c.name', '=', name)
    .executeTakeFirst();
  if (!row) return undefined;
  const { version_count, current_version, health_status, health_checked_at, health_response_time_ms, health_error_message, ...credentialRow } = row;
  return {
    credential: credentialFromRow(credentialRow),
    versionCount: toNumber(version_count ?? 0),
    currentVersion: current_version === null || current_version === undefined ? null : toNumber(current_version),
    health:
      health_status === null || health_status === undefined
        ? { status: 'unknown', checkedAt: null, responseTimeMs: null, errorMessage: null }
        : {
            status: health_status as HealthCheckSummary['status'],
            checkedAt: toIso(health_checked_at ?? null),
            responseTimeMs: health_response_time_ms ?? null,
            errorMessage: health_error_message ?? null,
          },
  };
}

export async function touchCredential(db: Executor, id: string, at: string): Promise<void> {
  await db.updateTable('aegis_credentials').set({ last_used_at: at }).where('id', '=', id).execute();
}

export interface CredentialFilter {
  status?: CredentialStatus | undefined;
  provider?: string | undefined;
  credentialType?: string | undefined;
  tag?: string | undefined;
  /** Case-insensitive substring of the name, in which `%`, `_` and the backslash match themselves. */
  search?: string | undefined;
  /** Token limits: when either list is set, only credentials matching a pattern or carrying a tag. */
  reach?: { namePatterns: string[]; tags: string[] } | undefined;
}

export interface CredentialPage {
  credentials: Credential[];
  total: number;
  /** Counts by status as of `now` over every credential that matches the filter apart from `status`. */
  byStatus: Record<CredentialStatus, number>;
}

/** The columns a credential list can be sorted by. */
export const CREDENTIAL_SORT_COLUMNS = [
  'name',
  'expires_at',
  'last_used_at',
  'last_rotated_at',
  'next_rotation_at',
  'last_health_check',
  'provider',
  'credential_type',
] as const;

export type CredentialSortColumn = (typeof CREDENTIAL_SORT_COLUMNS)[number];

export interface CredentialListPage {
  limit: number;
  offset: number;
  /** `name` when unset. */
  sort?: CredentialSortColumn | undefined;
  /** `asc` when unset. */
  order?: 'asc' | 'desc' | undefined;
}

/**
 * Lists credentials, filtered and sorted by `page.sort` (name by default). Rows whose sort column is null
 * come last in either order, and rows that tie are ordered by name. Status filters and counts use the
 * status as of `now`.
 * NOTE: PostgreSQL orders text by the database's collation, so names that differ in case or punctuation
 * may come in another order than SQLite's byte order.
 */
export async function listCredentials(
  db: Executor,
  dialect: DialectName,
  filter: CredentialFilter,
  page: CredentialListPage,
  now: Date,
): Promise<CredentialPage> {
  const status = effectiveStatusSql(dialect, now);
  let base = db.selectFrom('aegis_credentials');
  if (filter.provider !== undefined) base = base.where('provider', '=', filter.provider);
  if (filter.credentialType !== undefined) base = base.where('credential_type', '=', filter.credentialType);
  if (filter.tag !== undefined) base = base.where(hasTag(dialect, filter.tag));
  if (filter.search !== undefined) base = base.where(nameContains(filter.search));
  const reach = filter.reach === undefined ? undefined : reachCondition(dialect, filter.reach);
  if (reach !== undefined) base = base.where(reach);

  const counts = await base.select([status.as('effective_status'), sql<string | number>`count(*)`.as('count')]).groupBy(sql`1`).execute();
  const byStatus = { active: 0, expiring: 0, expired: 0, rotating: 0, failed: 0, retired: 0 } as Record<CredentialStatus, number>;
  for (const row of counts) byStatus[row.effective_status] = Number(row.count);

  const filtered = filter.status === undefined ? base : base.where(status, '=', filter.status);
  const sort = page.sort ?? 'name';
  const order = page.order ?? 'asc';
  let sorted = filtered.selectAll();
  if (sort !== 'name') sorted = sorted.orderBy(sql`(${sql.ref(sort)} is null)`).orderBy(sort, order);
  const rows = await sorted.orderBy('name', sort === 'name' ? order : 'asc').limit(page.limit).offset(page.offset).execute();
  const total = filter.status === undefined ? Object.values(byStatus).reduce((sum, count) => sum + count, 0) : byStatus[filter.status];
  return { credentials: rows.map(credentialFromRow), total, byStatus };
}

/**
 * Matches the credentials a token's limits reach (see `callerReaches`), or returns undefined when the
 * token has no limits. `table` is the name or alias of aegis_credentials in the query.
 */
export function reachCondition(dialect: DialectName, reach: { namePatterns: string[]; tags: string[] }, table = 'aegis_credentials') {
  if (reach.namePatterns.length === 0 && reach.tags.length === 0) return undefined;
  const conditions = [...reach.namePatterns.map((pattern) => nameMatches(dialect, pattern, table)), ...reach.tags.map((tag) => hasTag(dialect, tag, table))];
  return sql<boolean>`(${sql.join(conditions, sql` or `)})`;
}

function hasTag(dialect: DialectName, tag: string, table = 'aegis_credentials') {
  const tags = sql.ref(`${table}.tags`);
  return dialect === 'postgres'
    ? sql<boolean>`(${tags} @> ${JSON.stringify([tag])}::jsonb)`
    : sql<boolean>`(exists (select 1 from json_each(${tags}) where json_each.value = ${tag}))`;
}

/**
 * Matches names that contain `text`, ignoring ASCII case on both databases (names are ASCII). LIKE's
 * wildcards and its escape character are escaped, so every character of `text` matches itself.
 */
function nameContains(text: string) {
  const pattern = `%${text.toLowerCase().replace(/[\\%_]/g, '\\$&')}%`;
  return sql<boolean>`(lower(name) like ${pattern} escape '\\')`;
}

/**
 * Matches a token's name glob in SQL, case-sensitively like `matchesNamePattern`. Patterns hold only name
 * characters and `*`, so SQLite's GLOB needs no escaping; for PostgreSQL's LIKE, `_` and `%` are escaped.
 */
function nameMatches(dialect: DialectName, pattern: string, table = 'aegis_credentials') {
  const name = sql.ref(`${table}.name`);
  if (dialect === 'sqlite') return sql<boolean>`(${name} glob ${pattern})`;
  const like = pattern.replace(/[\\%_]/g, '\\$&').replace(/\*/g, '%');
  return sql<boolean>`(${name} like ${like} escape '\\')`;
}

