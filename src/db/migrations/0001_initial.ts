import { sql, type Kysely } from 'kysely';

/**
 * Creates the six tables of the product request with its names and meanings, and the tables AEGIS
 * needs beyond them: tokens, master keys, the alert outbox and leases.
 *
 * Migrations take an untyped Kysely on purpose, so they keep compiling when the table types change.
 * Column types branch on the dialect: PostgreSQL gets uuid, timestamptz, jsonb and boolean;
 * SQLite gets text for ids, instants (ISO-8601 UTC) and JSON, and integer 0/1 for booleans.
 */
export async function up(db: Kysely<any>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const pg = dialect === 'postgres';
  const id = pg ? 'uuid' : 'text';
  const instant = pg ? 'timestamptz' : 'text';
  const json = pg ? 'jsonb' : 'text';
  const bool = pg ? 'boolean' : 'integer';
  const now = pg ? sql`now()` : sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`;
  const falseValue = pg ? sql`false` : sql`0`;
  const trueValue = pg ? sql`true` : sql`1`;

  await db.schema
    .createTable('aegis_credentials')
    .addColumn('id', id, (col) => col.primaryKey())
    .addColumn('name', 'text', (col) => col.notNull().unique())
    .addColumn('credential_type', 'text', (col) => col.notNull())
    .addColumn('provider', 'text', (col) => col.notNull().defaultTo('n8n'))
    .addColumn('description', 'text')
    .addColumn('encrypted_value', 'text')
    .addColumn('encryption_key_id', 'text')
    .addColumn('provider_credential_id', 'text')
    .addColumn('provider_config', json, (col) => col.notNull().defaultTo(sql`'{}'`))
    .addColumn('status', 'text', (col) =>
      col.notNull().defaultTo('active').check(sql`status in ('active', 'expiring', 'expired', 'rotating', 'failed', 'retired')`),
    )
    .addColumn('created_at', instant, (col) => col.notNull().defaultTo(now))
    .addColumn('updated_at', instant, (col) => col.notNull().defaultTo(now))
    .addColumn('expires_at', instant)
    .addColumn('last_rotated_at', instant)
    .addColumn('last_used_at', instant)
    .addColumn('last_health_check', instant)
    .addColumn('rotation_enabled', bool, (col) => col.notNull().defaultTo(falseValue))
    .addColumn('rotation_interval_hours', 'integer', (col) => col.notNull().defaultTo(720))
    .addColumn('rotation_strategy', 'text', (col) =>
      col.notNull().defaultTo('manual').check(sql`rotation_strategy in ('manual', 'scheduled', 'on_expiry')`),
    )
    .addColumn('next_rotation_at', instant)
    .addColumn('alert_threshold_hours', 'integer', (col) => col.notNull().defaultTo(168))
    .addColumn('alert_sent', bool, (col) => col.notNull().defaultTo(falseValue))
    .addColumn('tags', json, (col) => col.notNull().defaultTo(sql`'[]'`))
    .addColumn('metadata', json, (col) => col.notNull().defaultTo(sql`'{}'`))
    .execute();
  await db.schema.createIndex('idx_credentials_status').on('aegis_credentials').column('status').execute();
  await db.schema.createIndex('idx_credentials_expires').on('aegis_credentials').column('expires_at').execute();
  await db.schema.createIndex('idx_credentials_next_rotation').on('aegis_credentials').column('next_rotation_at').execute();

  // `is_current` defaults to false, unlike the request's sample, so that an insert that forgets it
  // cannot collide with the one-current-version index below.
  await db.schema
    .createTable('aegis_credential_versions')
    .addColumn('id', id, (col) => col.primaryKey())
    .addColumn('credential_id', id, (col) => col.notNull().references('aegis_credentials.id').onDelete('cascade'))
    .addColumn('version', 'integer', (col) => col.notNull())
    .addColumn('encrypted_value', 'text')
    .addColumn('encryption_key_id', 'text')
    .addColumn('provider_credential_id', 'text')
    .addColumn('created_at', instant, (col) => col.notNull().defaultTo(now))
    .addColumn('created_by', 'text')
    .addColumn('reason', 'text')
    .addColumn('is_current', bool, (col) => col.notNull().defaultTo(falseValue))
    .addColumn('state', 'text', (col) =>
      col.notNull().defaultTo('committed').check(sql`state in ('pending', 'committed', 'failed')`),
    )
    .addUniqueConstraint('aegis_credential_versions_credential_version_key', ['credential_id', 'version'])
    .execute();
  // The database, not the code, guarantees at most one current version per credential.
  await sql`create unique index idx_versions_one_current on aegis_credential_versions (credential_id) where is_current = ${trueValue}`.execute(db);
  await db.schema.createIndex('idx_versions_key').on('aegis_credential_versions').column('encryption_key_id').execute();

  await db.schema
    .createTable('aegis_audit_log')
    .addColumn('id', id, (col) => col.primaryKey())
    .addColumn('seq', 'bigint', (col) => col.notNull().unique())
    .addColumn('timestamp', instant, (col) => col.notNull().defaultTo(now))
    .addColumn('credential_id', id, (col) => col.references('aegis_credentials.id'))
    .addColumn('credential_name', 'text', (col) => col.notNull())
    .addColumn('action', 'text', (col) => col.notNull())
    .addColumn('actor', 'text', (col) => col.notNull())
    .addColumn('target', 'text')
    .addColumn('details', json, (col) => col.notNull().defaultTo(sql`'{}'`))
    .addColumn('ip_address', 'text')
    .addColumn('success', bool, (col) => col.notNull().defaultTo(trueValue))
    .addColumn('error_message', 'text')
    // Each entry stores the hash of the one before it. The unique constraint stops two writers from
    // forking the chain: a second entry claiming the same predecessor is rejected.
    .addColumn('prev_hash', 'text', (col) => col.notNull().unique())
    .addColumn('entry_hash', 'text', (col) => col.notNull())
    .execute();
  await db.schema.createIndex('idx_audit_credential').on('aegis_audit_log').column('credential_id').execute();
  await db.schema.createIndex('idx_audit_timestamp').on('aegis_audit_log').column('timestamp').execute();
  await db.schema.createIndex('idx_audit_action').on('aegis_audit_log').column('action').execute();
  await db.schema.createIndex('idx_audit_name').on('aegis_audit_log').columns(['credential_name', 'timestamp']).execute();
  await db.schema.createIndex('idx_audit_actor').on('aegis_audit_log').columns(['actor', 'timestamp']).execute();

  // The newest entry's sequence number and hash. Appends lock this row, which orders writers from any
  // number of processes, and verification compares the chain's end with it, so a removed tail shows.
  await db.schema
    .createTable('aegis_audit_head')
    .addColumn('id', 'integer', (col) => col.primaryKey().check(sql`id = 1`))
    .addColumn('seq', 'bigint', (col) => col.notNull())
    .addColumn('entry_hash', 'text', (col) => col.notNull())
    .execute();
  await db.insertInto('aegis_audit_head').values({ id: 1, seq: 0, entry_hash: '0'.repeat(64) }).execute();

  await db.schema
    .createTable('aegis_rotation_history')
    .addColumn('id', id, (col) => col.primaryKey())
    .addColumn('credential_id', id, (col) => col.notNull().references('aegis_credentials.id').onDelete('cascade'))
    .addColumn('rotated_at', instant, (col) => col.notNull().defaultTo(now))
    .addColumn('previous_version', 'integer')
    .addColumn('new_version', 'integer')
    .addColumn('trigger', 'text', (col) => col.notNull())
    .addColumn('duration_ms', 'integer')
    .addColumn('success', bool, (col) => col.notNull().defaultTo(trueValue))
    .addColumn('error_message', 'text')
    .addColumn('rolled_back', bool, (col) => col.notNull().defaultTo(falseValue))
    .addColumn('rollback_at', instant)
    .execute();
  await db.schema.createIndex('idx_rotation_history_credential').on('aegis_rotation_history').columns(['credential_id', 'rotated_at']).execute();

  await db.schema
    .createTable('aegis_health_checks')
    .addColumn('id', id, (col) => col.primaryKey())
    .addColumn('credential_id', id, (col) => col.notNull().references('aegis_credentials.id').onDelete('cascade'))
    .addColumn('checked_at', instant, (col) => col.notNull().defaultTo(now))
    .addColumn('status', 'text', (col) => col.notNull().check(sql`status in ('healthy', 'unhealthy', 'unknown')`))
    .addColumn('response_time_ms', 'integer')
    .addColumn('details', json, (col) => col.notNull().defaultTo(sql`'{}'`))
    .addColumn('error_message', 'text')
    .execute();
  await db.schema.createIndex('idx_health_checks_credential').on('aegis_health_checks').columns(['credential_id', 'checked_at']).execute();

  await db.schema
    .createTable('aegis_templates')
    .addColumn('id', id, (col) => col.primaryKey())
    .addColumn('name', 'text', (col) => col.notNull().unique())
    .addColumn('credential_type', 'text', (col) => col.notNull())
    .addColumn('provider', 'text', (col) => col.notNull())
    .addColumn('description', 'text')
    .addColumn('schema', json, (col) => col.notNull())
    .addColumn('rotation_defaults', json)
    .addColumn('created_at', instant, (col) => col.notNull().defaultTo(now))
    .execute();

  await db.schema
    .createTable('aegis_tokens')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('actor', 'text', (col) => col.notNull())
    .addColumn('description', 'text')
    .addColumn('scopes', json, (col) => col.notNull())
    .addColumn('name_patterns', json, (col) => col.notNull().defaultTo(sql`'[]'`))
    .addColumn('tags', json, (col) => col.notNull().defaultTo(sql`'[]'`))
    .addColumn('secret_hash', 'text', (col) => col.notNull())
    .addColumn('created_at', instant, (col) => col.notNull())
    .addColumn('created_by', 'text', (col) => col.notNull())
    .addColumn('expires_at', instant)
    .addColumn('last_used_at', instant)
    .addColumn('revoked_at', instant)
    .execute();

  await db.schema
    .createTable('aegis_master_keys')
    .addColumn('key_id', 'text', (col) => col.primaryKey())
    .addColumn('state', 'text', (col) => col.notNull().check(sql`state in ('current', 'active', 'retired')`))
    .addColumn('check_value', 'text', (col) => col.notNull().unique())
    .addColumn('source', 'text', (col) => col.notNull())
    .addColumn('kdf_salt', 'text')
    .addColumn('created_at', instant, (col) => col.notNull())
    .addColumn('retired_at', instant)
    .execute();
  await sql`create unique index idx_master_keys_one_current on aegis_master_keys (state) where state = 'current'`.execute(db);

  await db.schema
    .createTable('aegis_alert_outbox')
    .addColumn('id', id, (col) => col.primaryKey())
    .addColumn('alert_type', 'text', (col) => col.notNull())
    // One alert per condition: the key names the condition (type, credential, expiry date or failure).
    .addColumn('condition_key', 'text', (col) => col.notNull().unique())
    .addColumn('credential_id', id, (col) => col.references('aegis_credentials.id').onDelete('cascade'))
    .addColumn('credential_name', 'text', (col) => col.notNull())
    .addColumn('message', 'text', (col) => col.notNull())
    .addColumn('priority', 'text', (col) => col.notNull())
    .addColumn('channel', 'text', (col) => col.notNull())
    .addColumn('details', json, (col) => col.notNull().defaultTo(sql`'{}'`))
    .addColumn('created_at', instant, (col) => col.notNull())
    .addColumn('state', 'text', (col) => col.notNull().defaultTo('pending').check(sql`state in ('pending', 'delivered', 'dead')`))
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('next_attempt_at', instant, (col) => col.notNull())
    .addColumn('delivered_at', instant)
    .addColumn('last_error', 'text')
    .execute();
  await db.schema.createIndex('idx_alert_outbox_due').on('aegis_alert_outbox').columns(['state', 'next_attempt_at']).execute();

  await db.schema
    .createTable('aegis_leases')
    .addColumn('name', 'text', (col) => col.primaryKey())
    .addColumn('owner', 'text', (col) => col.notNull())
    // Grows by one on every takeover, so a holder whose lease was taken over cannot commit with its old token.
    .addColumn('fencing_token', 'bigint', (col) => col.notNull())
    .addColumn('acquired_at', instant, (col) => col.notNull())
    .addColumn('expires_at', instant, (col) => col.notNull())
    .addColumn('heartbeat_at', instant, (col) => col.notNull())
    .execute();
}
