import type { ColumnType } from 'kysely';

/**
 * Table types. Instants are written as ISO-8601 UTC strings; PostgreSQL reads them back as `Date`
 * (timestamptz) and SQLite as strings, so reads go through `toIso`. JSON columns are written as
 * JSON text and read back parsed (PostgreSQL jsonb) or as text (SQLite), so reads go through
 * `fromJson`. Booleans read back as `boolean` (PostgreSQL) or 0/1 (SQLite).
 */
type Instant = ColumnType<Date | string, string, string>;
type NullableInstant = ColumnType<Date | string | null, string | null | undefined, string | null>;
type Json = ColumnType<unknown, string, string>;
type Bool = ColumnType<boolean | number, boolean, boolean>;
type BigCount = ColumnType<string | number | bigint, number, number>;

export interface CredentialsTable {
  id: string;
  name: string;
  credential_type: string;
  provider: string;
  description: string | null;
  encrypted_value: string | null;
  encryption_key_id: string | null;
  provider_credential_id: string | null;
  provider_config: Json;
  status: string;
  created_at: Instant;
  updated_at: Instant;
  expires_at: NullableInstant;
  last_rotated_at: NullableInstant;
  last_used_at: NullableInstant;
  last_health_check: NullableInstant;
  rotation_enabled: Bool;
  rotation_interval_hours: number;
  rotation_strategy: string;
  next_rotation_at: NullableInstant;
  alert_threshold_hours: number;
  alert_sent: Bool;
  tags: Json;
  metadata: Json;
  rotation_cron: string | null;
  rotation_timezone: string | null;
  value_policy: ColumnType<unknown, string | null, string | null>;
}

export interface CredentialVersionsTable {
  id: string;
  credential_id: string;
  version: number;
  encrypted_value: string | null;
  encryption_key_id: string | null;
  provider_credential_id: string | null;
  created_at: Instant;
  created_by: string | null;
  reason: string | null;
  is_current: Bool;
  state: string;
}

export interface AuditLogTable {
  id: string;
  seq: BigCount;
  timestamp: Instant;
  credential_id: string | null;
  credential_name: string;
  action: string;
  actor: string;
  target: string | null;
  details: Json;
  ip_address: string | null;
  success: Bool;
  error_message: string | null;
  prev_hash: string;
  entry_hash: string;
}

export interface AuditHeadTable {
  id: number;
  seq: BigCount;
  entry_hash: string;
}

export interface RotationHistoryTable {
  id: string;
  credential_id: string;
  rotated_at: Instant;
  previous_version: number | null;
  new_version: number | null;
  trigger: string;
  duration_ms: number | null;
  success: Bool;
  error_message: string | null;
  rolled_back: Bool;
  rollback_at: NullableInstant;
  actor: string | null;
  reason: string | null;
  attempts: ColumnType<number, number | undefined, number>;
}

export interface HealthChecksTable {
  id: string;
  credential_id: string;
  checked_at: Instant;
  status: string;
  response_time_ms: number | null;
  details: Json;
  error_message: string | null;
}

export interface TemplatesTable {
  id: string;
  name: string;
  credential_type: string;
  provider: string;
  description: string | null;
  schema: Json;
  rotation_defaults: Json | null;
  created_at: Instant;
}

export interface TokensTable {
  id: string;
  actor: string;
  description: string | null;
  scopes: Json;
  name_patterns: Json;
  tags: Json;
  secret_hash: string;
  created_at: Instant;
  created_by: string;
  expires_at: NullableInstant;
  last_used_at: NullableInstant;
  revoked_at: NullableInstant;
}

export interface MasterKeysTable {
  key_id: string;
  state: string;
  check_value: string;
  source: string;
  kdf_salt: string | null;
  created_at: Instant;
  retired_at: NullableInstant;
}

export interface AlertOutboxTable {
  id: string;
  alert_type: string;
  condition_key: string;
  credential_id: string | null;
  credential_name: string;
  message: string;
  priority: string;
  channel: string;
  details: Json;
  created_at: Instant;
  state: string;
  attempts: number;
  next_attempt_at: Instant;
  delivered_at: NullableInstant;
  last_error: string | null;
}

/** One alert's delivery to one sink; see migration 0003_alert_deliveries. */
export interface AlertDeliveriesTable {
  alert_id: string;
  sink: string;
  state: string;
  attempts: number;
  next_attempt_at: Instant;
  last_error: string | null;
  delivered_at: NullableInstant;
}

export interface LeasesTable {
  name: string;
  owner: string;
  fencing_token: BigCount;
  acquired_at: Instant;
  expires_at: Instant;
  heartbeat_at: Instant;
}

export interface SchedulerJobsTable {
  name: string;
  last_scheduled_at: Instant;
  last_run_at: NullableInstant;
  /** `running`, `succeeded`, `failed`, or `interrupted` (its leader stopped before the job ended); null before the first run. */
  last_status: string | null;
  last_error: string | null;
  last_duration_ms: number | null;
}

/** An n8n apply under way, or left by a process that stopped during one; see migration 0013_apply_intents. */
export interface ApplyIntentsTable {
  audit_entry_id: string;
  credential_id: string;
  credential_name: string;
  credential_type: string;
  n8n_credential_id: string;
  workflow_id: string;
  node_name: string;
  requested_by: string | null;
  actor: string;
  ip_address: string | null;
  owner: string;
  started_at: Instant;
}

/** A signed record of one audit prune; see migration 0005_audit_checkpoints. */
export interface AuditCheckpointsTable {
  /** Sequence number of the last entry the prune removed. */
  seq: BigCount;
  entry_hash: string;
  first_seq: BigCount;
  removed_count: BigCount;
  pruned_before: Instant;
  created_at: Instant;
  key_id: string;
  signature: string;
}

export interface Database {
  aegis_credentials: CredentialsTable;
  aegis_credential_versions: CredentialVersionsTable;
  aegis_audit_log: AuditLogTable;
  aegis_audit_head: AuditHeadTable;
  aegis_audit_checkpoints: AuditCheckpointsTable;
  aegis_rotation_history: RotationHistoryTable;
  aegis_health_checks: HealthChecksTable;
  aegis_templates: TemplatesTable;
  aegis_tokens: TokensTable;
  aegis_master_keys: MasterKeysTable;
  aegis_alert_outbox: AlertOutboxTable;
  aegis_alert_deliveries: AlertDeliveriesTable;
  aegis_leases: LeasesTable;
  aegis_scheduler_jobs: SchedulerJobsTable;
  aegis_apply_intents: ApplyIntentsTable;
}

