import pg from 'pg';
import { ValidationError } from '../../lib/errors.js';

/** One row of the earlier AEGIS's `aegis_credentials`, as pg returns it. */
export interface LegacyCredentialRow {
  id: string;
  name: string;
  credential_type: string;
  provider: string | null;
  description: string | null;
  encrypted_value: string | null;
  encryption_key_id: string | null;
  provider_credential_id: string | null;
  status: string | null;
  created_at: Date | null;
  updated_at: Date | null;
  expires_at: Date | null;
  last_rotated_at: Date | null;
  last_used_at: Date | null;
  last_health_check: Date | null;
  rotation_enabled: boolean | null;
  rotation_interval_hours: number | null;
  rotation_strategy: string | null;
  next_rotation_at: Date | null;
  alert_threshold_hours: number | null;
  alert_sent: boolean | null;
  tags: unknown;
  metadata: unknown;
}

/** One row of `aegis_credential_versions`. */
export interface LegacyVersionRow {
  id: string;
  credential_id: string;
  version: number;
  encrypted_value: string | null;
  provider_credential_id: string | null;
  created_at: Date | null;
  created_by: string | null;
  reason: string | null;
  is_current: boolean | null;
}

/** One row of `aegis_rotation_history`. */
export interface LegacyRotationRow {
  id: string;
  credential_id: string;
  rotated_at: Date | null;
  previous_version: number | null;
  new_version: number | null;
  trigger: string;
  duration_ms: number | null;
  success: boolean | null;
  error_message: string | null;
  rolled_back: boolean | null;
  rollback_at: Date | null;
}

/** One row of `aegis_health_checks`. */
export interface LegacyHealthCheckRow {
  id: string;
  credential_id: string;
  checked_at: Date | null;
  status: string;
  response_time_ms: number | null;
  details: unknown;
  error_message: string | null;
}

/** Everything the import reads from the legacy database, grouped by credential id. */
export interface LegacyData {
  credentials: LegacyCredentialRow[];
  versions: Map<string, LegacyVersionRow[]>;
  rotations: Map<string, LegacyRotationRow[]>;
  healthChecks: Map<string, LegacyHealthCheckRow[]>;
  /** Tables of the spec that the schema lacks; an older deployment may have only `aegis_credentials`. */
  missingTables: string[];
}

/** Health checks carried over per credential, newest first; older ones are history that AEGIS's own checks replace. */
export const HEALTH_CHECKS_PER_CREDENTIAL = 100;

const identifierPattern = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Describes a PostgreSQL URL by host and database only, so a password in it is never printed. */
export function describeSourceUrl(url: string, schema: string): string {
  try {
    const parsed = new URL(url);
    return `postgres://${parsed.host}${parsed.pathname} (schema ${schema})`;
  } catch {
    return `the legacy PostgreSQL database (schema ${schema})`;
  }
}

/**
 * Reads the legacy tables in one read-only, repeatable-read transaction, so the rows form one consistent
 * picture and the import cannot change the source. The connection is closed before anything is written.
 */
export async function readLegacyDatabase(url: string, schema: string): Promise<LegacyData> {
  if (!identifierPattern.test(schema)) throw new ValidationError('--schema', 'must be a plain PostgreSQL schema name (letters, digits and _, not starting with a digit)');
  const where = describeSourceUrl(url, schema);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: 'aegis import legacy' });
  try {
    await client.connect();
  } catch (error) {
    throw new ValidationError('--from', `connecting to ${where} failed: ${withoutPassword((error as Error).message, url)}`);
  }
  try {
    await client.query('begin transaction isolation level repeatable read read only');
    const present = await presentTables(client, schema);
    if (!present.has('aegis_credentials')) {
      throw new ValidationError('--schema', `${where} has no aegis_credentials table. Name the schema that contains the legacy tables with --schema.`);
    }
    const table = (name: string) => `"${schema}".${name}`;
    const credentials = (await client.query<LegacyCredentialRow>(`select * from ${table('aegis_credentials')} order by name, id`)).rows;
    const versions = present.has('aegis_credential_versions')
      ? (await client.query<LegacyVersionRow>(`select * from ${table('aegis_credential_versions')} order by credential_id, version`)).rows
      : [];
    const rotations = present.has('aegis_rotation_history')
      ? (await client.query<LegacyRotationRow>(`select * from ${table('aegis_rotation_history')} order by credential_id, rotated_at, id`)).rows
      : [];
    const healthChecks = present.has('aegis_health_checks')
      ? (
          await client.query<LegacyHealthCheckRow>(
            `select * from (select h.*, row_number() over (partition by credential_id order by checked_at desc, id) as newest
               from ${table('aegis_health_checks')} h) ranked
             where newest <= $1 order by credential_id, checked_at, id`,
            [HEALTH_CHECKS_PER_CREDENTIAL],
          )
        ).rows
      : [];
    await client.query('commit');
    return {
      credentials,
      versions: groupBy(versions),
      rotations: groupBy(rotations),
      healthChecks: groupBy(healthChecks),
      missingTables: ['aegis_credential_versions', 'aegis_rotation_history', 'aegis_health_checks'].filter((name) => !present.has(name)),
    };
  } catch (error) {
    await client.query('rollback').catch(() => {});
    if (error instanceof ValidationError) throw error;
    throw new ValidationError('--from', `reading the legacy tables from ${where} failed: ${withoutPassword((error as Error).message, url)}`);
  } finally {
    await client.end().catch(() => {});
  }
}

async function presentTables(client: pg.Client, schema: string): Promise<Set<string>> {
  const result = await client.query<{ table_name: string }>(
    `select table_name from information_schema.tables where table_schema = $1 and table_name = any($2)`,
    [schema, ['aegis_credentials', 'aegis_credential_versions', 'aegis_rotation_history', 'aegis_health_checks']],
  );
  return new Set(result.rows.map((row) => row.table_name));
}

function groupBy<T extends { credential_id: string }>(rows: T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const group = groups.get(row.credential_id);
    if (group) group.push(row);
    else groups.set(row.credential_id, [row]);
  }
  return groups;
}

/** Removes the URL's password from a driver message, in case the driver ever repeats it. */
function withoutPassword(message: string, url: string): string {
  let password = '';
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    return message;
  }
  return password.length > 0 ? message.split(password).join('[REDACTED]') : message;
}
