import crypto from 'node:crypto';
import pg from 'pg';
import { testPostgresUrl } from './databases.js';
import { fernetEncrypt } from './fernet.js';

/**
 * Builds an earlier AEGIS deployment's database for import tests: the product request's tables in a
 * PostgreSQL schema of their own, with values encrypted as the Python service encrypted them.
 */

/** The legacy tables, as the product request defines them (gen_random_uuid is built into PostgreSQL 13+). */
const legacyDdl = `
CREATE TABLE aegis_credentials (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT UNIQUE NOT NULL,
    credential_type TEXT NOT NULL,
    provider TEXT NOT NULL DEFAULT 'n8n',
    description TEXT,
    encrypted_value TEXT,
    encryption_key_id TEXT,
    provider_credential_id TEXT,
    status TEXT DEFAULT 'active' CHECK (status IN ('active', 'expiring', 'expired', 'rotating', 'failed', 'retired')),
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    expires_at TIMESTAMPTZ,
    last_rotated_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    last_health_check TIMESTAMPTZ,
    rotation_enabled BOOLEAN DEFAULT FALSE,
    rotation_interval_hours INT DEFAULT 720,
    rotation_strategy TEXT DEFAULT 'manual',
    next_rotation_at TIMESTAMPTZ,
    alert_threshold_hours INT DEFAULT 168,
    alert_sent BOOLEAN DEFAULT FALSE,
    tags JSONB DEFAULT '[]',
    metadata JSONB DEFAULT '{}'
);
CREATE TABLE aegis_credential_versions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    credential_id UUID REFERENCES aegis_credentials(id) ON DELETE CASCADE,
    version INT NOT NULL,
    encrypted_value TEXT,
    provider_credential_id TEXT,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    created_by TEXT,
    reason TEXT,
    is_current BOOLEAN DEFAULT TRUE,
    UNIQUE(credential_id, version)
);
CREATE TABLE aegis_audit_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    timestamp TIMESTAMPTZ DEFAULT NOW(),
    credential_id UUID REFERENCES aegis_credentials(id),
    credential_name TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    target TEXT,
    details JSONB DEFAULT '{}',
    ip_address TEXT,
    success BOOLEAN DEFAULT TRUE,
    error_message TEXT
);
CREATE TABLE aegis_rotation_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    credential_id UUID REFERENCES aegis_credentials(id) ON DELETE CASCADE,
    rotated_at TIMESTAMPTZ DEFAULT NOW(),
    previous_version INT,
    new_version INT,
    trigger TEXT NOT NULL,
    duration_ms INT,
    success BOOLEAN DEFAULT TRUE,
    error_message TEXT,
    rolled_back BOOLEAN DEFAULT FALSE,
    rollback_at TIMESTAMPTZ
);
CREATE TABLE aegis_health_checks (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    credential_id UUID REFERENCES aegis_credentials(id) ON DELETE CASCADE,
    checked_at TIMESTAMPTZ DEFAULT NOW(),
    status TEXT NOT NULL,
    response_time_ms INT,
    details JSONB DEFAULT '{}',
    error_message TEXT
);
CREATE TABLE aegis_templates (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT UNIQUE NOT NULL,
    credential_type TEXT NOT NULL,
    provider TEXT NOT NULL,
    description TEXT,
    schema JSONB NOT NULL,
    rotation_defaults JSONB,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_credentials_status ON aegis_credentials(status);
CREATE INDEX idx_credentials_expires ON aegis_credentials(expires_at);
CREATE INDEX idx_credentials_next_rotation ON aegis_credentials(next_rotation_at);
CREATE INDEX idx_audit_credential ON aegis_audit_log(credential_id);
CREATE INDEX idx_audit_timestamp ON aegis_audit_log(timestamp);
CREATE INDEX idx_audit_action ON aegis_audit_log(action);
`;

/** One version of a legacy credential. `value` is encrypted on insert; `token` stores a given token as is. */
export interface LegacyVersionFixture {
  version: number;
  value?: string | null;
  token?: string;
  providerCredentialId?: string | null;
  reason?: string;
  isCurrent: boolean;
  createdAt?: string;
}

export interface LegacyRotationFixture {
  rotatedAt: string;
  previousVersion: number;
  newVersion: number;
  trigger: string;
  durationMs?: number;
  success?: boolean;
  errorMessage?: string | null;
  rolledBack?: boolean;
}

export interface LegacyHealthCheckFixture {
  checkedAt: string;
  status: string;
  responseTimeMs?: number;
  details?: Record<string, unknown>;
  errorMessage?: string | null;
}

/** One legacy credential. Without `versions`, the row's own value is its only copy (a deployment before versions). */
export interface LegacyCredentialFixture {
  name: string;
  credentialType?: string;
  provider: string;
  description?: string;
  /** The credential row's value; by default the current version's. */
  value?: string | null;
  providerCredentialId?: string | null;
  status?: string;
  expiresAt?: string | null;
  lastRotatedAt?: string | null;
  rotationEnabled?: boolean;
  rotationIntervalHours?: number;
  rotationStrategy?: string;
  alertThresholdHours?: number;
  tags?: string[];
  metadata?: Record<string, unknown>;
  versions?: LegacyVersionFixture[];
  rotations?: LegacyRotationFixture[];
  healthChecks?: LegacyHealthCheckFixture[];
}

export interface LegacyDatabase {
  schema: string;
  /** Runs one statement on the legacy schema, e.g. to change a row between imports. */
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
  /** Every row of the legacy tables, to show the import changed none of them. */
  snapshot(): Promise<Record<string, unknown[]>>;
  drop(): Promise<void>;
}

/** Creates a schema with the legacy tables and inserts the fixtures, encrypting values under `key` (32 Fernet key bytes). */
export async function buildLegacyDatabase(key: Buffer, fixtures: LegacyCredentialFixture[]): Promise<LegacyDatabase> {
  const schema = `legacy_t_${crypto.randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: testPostgresUrl });
  await client.connect();
  await client.query(`create schema "${schema}"`);
  await client.query(`set search_path = "${schema}"`);
  await client.query(legacyDdl);
  for (const fixture of fixtures) await insertFixture(client, key, fixture);

  return {
    schema,
    query: (text, values) => client.query(text, values),
    async snapshot() {
      const tables: Record<string, unknown[]> = {};
      for (const table of ['aegis_credentials', 'aegis_credential_versions', 'aegis_audit_log', 'aegis_rotation_history', 'aegis_health_checks', 'aegis_templates']) {
        tables[table] = (await client.query(`select * from ${table} order by id`)).rows;
      }
      return tables;
    },
    async drop() {
      await client.query(`drop schema if exists "${schema}" cascade`);
      await client.end();
    },
  };
}

async function insertFixture(client: pg.Client, key: Buffer, fixture: LegacyCredentialFixture): Promise<void> {
  const encrypt = (value: string | null | undefined) => (value === null || value === undefined ? null : fernetEncrypt(key, value));
  const versions = (fixture.versions ?? []).map((version) => ({ ...version, stored: version.token ?? encrypt(version.value) }));
  const current = versions.find((version) => version.isCurrent);
  const rowValue = fixture.value !== undefined ? encrypt(fixture.value) : (current?.stored ?? null);
  const inserted = await client.query<{ id: string }>(
    `insert into aegis_credentials (name, credential_type, provider, description, encrypted_value, encryption_key_id, provider_credential_id,
       status, expires_at, last_rotated_at, rotation_enabled, rotation_interval_hours, rotation_strategy, alert_threshold_hours, tags, metadata)
     values ($1, $2, $3, $4, $5, 'aegis_master', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) returning id`,
    [
      fixture.name,
      fixture.credentialType ?? 'api_key',
      fixture.provider,
      fixture.description ?? null,
      rowValue,
      fixture.providerCredentialId ?? null,
      fixture.status ?? 'active',
      fixture.expiresAt ?? null,
      fixture.lastRotatedAt ?? null,
      fixture.rotationEnabled ?? false,
      fixture.rotationIntervalHours ?? 720,
      fixture.rotationStrategy ?? 'manual',
      fixture.alertThresholdHours ?? 168,
      JSON.stringify(fixture.tags ?? []),
      JSON.stringify(fixture.metadata ?? {}),
    ],
  );
  const id = inserted.rows[0]!.id;
  for (const version of versions) {
    await client.query(
      `insert into aegis_credential_versions (credential_id, version, encrypted_value, provider_credential_id, created_at, created_by, reason, is_current)
       values ($1, $2, $3, $4, $5, 'HEPHAESTUS', $6, $7)`,
      [id, version.version, version.stored, version.providerCredentialId ?? null, version.createdAt ?? '2025-01-01T00:00:00Z', version.reason ?? 'rotation', version.isCurrent],
    );
  }
  for (const rotation of fixture.rotations ?? []) {
    await client.query(
      `insert into aegis_rotation_history (credential_id, rotated_at, previous_version, new_version, trigger, duration_ms, success, error_message, rolled_back)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [id, rotation.rotatedAt, rotation.previousVersion, rotation.newVersion, rotation.trigger, rotation.durationMs ?? 120, rotation.success ?? true, rotation.errorMessage ?? null, rotation.rolledBack ?? false],
    );
  }
  for (const check of fixture.healthChecks ?? []) {
    await client.query(
      `insert into aegis_health_checks (credential_id, checked_at, status, response_time_ms, details, error_message) values ($1, $2, $3, $4, $5, $6)`,
      [id, check.checkedAt, check.status, check.responseTimeMs ?? 40, JSON.stringify(check.details ?? {}), check.errorMessage ?? null],
    );
  }
}
