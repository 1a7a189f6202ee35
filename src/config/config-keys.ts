/**
 * The conversion of a file value into the text of its environment variable:
 * - `text`, `integer`: a scalar, written as is (the variable's reader checks it);
 * - `on-off`: `true`/`false` (or "on"/"off"), written as "on"/"off";
 * - `path`: a path, resolved against the configuration file's folder;
 * - `path-list`: a list of paths, resolved and joined with the platform's path delimiter;
 * - `integer-list`, `text-list`: a list (or one scalar), joined with commas;
 * - `string-map`, `path-string-map`: a mapping of strings, written as JSON; the second resolves its keys as paths;
 * - `webhook-list`: a list of `{url, secret}` mappings, written as JSON.
 */
export type FileValueKind =
  | 'text'
  | 'integer'
  | 'on-off'
  | 'path'
  | 'path-list'
  | 'integer-list'
  | 'text-list'
  | 'string-map'
  | 'path-string-map'
  | 'webhook-list';

/** One setting of the configuration file and the environment variable it maps to. */
export interface FileKey {
  /** Dotted key path in the file, e.g. `storage.pool_max`. */
  key: string;
  variable: string;
  kind: FileValueKind;
  /** Whether the value is a secret (a key, a password, a token), so `aegis doctor` expects the file to be private. */
  secret?: boolean;
}

/**
 * Every key the configuration file accepts. To add a setting, add its environment variable to
 * `loadConfig` and one row here (docs/configuration.md lists both).
 */
export const FILE_KEYS: ReadonlyArray<FileKey> = [
  { key: 'server.host', variable: 'AEGIS_HOST', kind: 'text' },
  { key: 'server.port', variable: 'AEGIS_PORT', kind: 'integer' },
  { key: 'server.tls.cert_file', variable: 'AEGIS_TLS_CERT_FILE', kind: 'path' },
  { key: 'server.tls.key_file', variable: 'AEGIS_TLS_KEY_FILE', kind: 'path' },
  { key: 'server.allow_insecure_listen', variable: 'AEGIS_ALLOW_INSECURE_LISTEN', kind: 'on-off' },
  { key: 'server.trusted_proxies', variable: 'AEGIS_TRUSTED_PROXIES', kind: 'text-list' },
  { key: 'server.body_limit_bytes', variable: 'AEGIS_BODY_LIMIT_BYTES', kind: 'integer' },
  { key: 'server.shutdown_timeout_seconds', variable: 'AEGIS_SHUTDOWN_TIMEOUT_SECONDS', kind: 'integer' },

  { key: 'storage.data_dir', variable: 'AEGIS_DATA_DIR', kind: 'path' },
  { key: 'storage.sqlite_path', variable: 'AEGIS_SQLITE_PATH', kind: 'path' },
  { key: 'storage.database_url', variable: 'DATABASE_URL', kind: 'text', secret: true },
  { key: 'storage.database_schema', variable: 'AEGIS_DATABASE_SCHEMA', kind: 'text' },
  { key: 'storage.connect_timeout_ms', variable: 'AEGIS_DATABASE_CONNECT_TIMEOUT_MS', kind: 'integer' },
  { key: 'storage.idle_timeout_ms', variable: 'AEGIS_DATABASE_IDLE_TIMEOUT_MS', kind: 'integer' },
  { key: 'storage.statement_timeout_ms', variable: 'AEGIS_DATABASE_STATEMENT_TIMEOUT_MS', kind: 'integer' },
  { key: 'storage.idle_in_transaction_timeout_ms', variable: 'AEGIS_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS', kind: 'integer' },
  { key: 'storage.pool_max', variable: 'AEGIS_DATABASE_POOL_MAX', kind: 'integer' },

  { key: 'keys.master_key_file', variable: 'AEGIS_MASTER_KEY_FILE', kind: 'path' },
  { key: 'keys.master_key', variable: 'AEGIS_MASTER_KEY', kind: 'text-list', secret: true },
  { key: 'keys.passphrase', variable: 'AEGIS_MASTER_PASSPHRASE', kind: 'text', secret: true },
  { key: 'keys.data_key_cache_seconds', variable: 'AEGIS_DATA_KEY_CACHE_SECONDS', kind: 'integer' },

  { key: 'tokens.auth_failure_limit', variable: 'AEGIS_AUTH_FAILURE_LIMIT', kind: 'integer' },
  { key: 'tokens.auth_failure_window_seconds', variable: 'AEGIS_AUTH_FAILURE_WINDOW_SECONDS', kind: 'integer' },

  { key: 'sinks.hermes_url', variable: 'HERMES_URL', kind: 'text' },
  { key: 'sinks.event_bus_url', variable: 'EVENT_BUS_URL', kind: 'text' },
  { key: 'sinks.webhooks', variable: 'AEGIS_WEBHOOKS', kind: 'webhook-list', secret: true },

  { key: 'providers.timeout_ms', variable: 'AEGIS_PROVIDER_TIMEOUT_MS', kind: 'integer' },
  { key: 'providers.env.allowed_dirs', variable: 'AEGIS_ENV_ALLOWED_DIRS', kind: 'path-list' },
  { key: 'providers.env.reload_commands', variable: 'AEGIS_ENV_RELOAD_COMMANDS', kind: 'path-string-map' },
  { key: 'providers.postgres.admin_url', variable: 'AEGIS_POSTGRES_ADMIN_URL', kind: 'text', secret: true },
  { key: 'providers.postgres.connections', variable: 'AEGIS_POSTGRES_CONNECTIONS', kind: 'string-map', secret: true },
  { key: 'providers.postgres.allowed_roles', variable: 'AEGIS_POSTGRES_ALLOWED_ROLES', kind: 'text-list' },
  { key: 'providers.n8n.url', variable: 'N8N_URL', kind: 'text' },
  { key: 'providers.n8n.api_key', variable: 'N8N_API_KEY', kind: 'text', secret: true },
  { key: 'providers.supabase.access_token', variable: 'SUPABASE_ACCESS_TOKEN', kind: 'text', secret: true },
  { key: 'providers.supabase.api_url', variable: 'SUPABASE_API_URL', kind: 'text' },

  { key: 'rotation.lease_seconds', variable: 'AEGIS_ROTATION_LEASE_SECONDS', kind: 'integer' },
  { key: 'rotation.attempts', variable: 'AEGIS_ROTATION_ATTEMPTS', kind: 'integer' },
  { key: 'rotation.concurrency', variable: 'AEGIS_ROTATION_CONCURRENCY', kind: 'integer' },
  { key: 'rotation.version_retention_days', variable: 'AEGIS_VERSION_RETENTION_DAYS', kind: 'integer' },
  { key: 'rotation.history_retention_days', variable: 'AEGIS_HISTORY_RETENTION_DAYS', kind: 'integer' },

  { key: 'alerts.lead_hours', variable: 'AEGIS_ALERT_LEAD_HOURS', kind: 'integer-list' },
  { key: 'alerts.delivery_seconds', variable: 'AEGIS_ALERT_DELIVERY_SECONDS', kind: 'integer' },
  { key: 'alerts.retention_days', variable: 'AEGIS_ALERT_RETENTION_DAYS', kind: 'integer' },

  { key: 'health.concurrency', variable: 'AEGIS_HEALTH_CONCURRENCY', kind: 'integer' },
  { key: 'health.check_retention_days', variable: 'AEGIS_HEALTH_CHECK_RETENTION_DAYS', kind: 'integer' },

  { key: 'scheduler.enabled', variable: 'AEGIS_SCHEDULER', kind: 'on-off' },
  { key: 'scheduler.lease_seconds', variable: 'AEGIS_SCHEDULER_LEASE_SECONDS', kind: 'integer' },
  { key: 'scheduler.report_timezone', variable: 'AEGIS_REPORT_TIMEZONE', kind: 'text' },
  { key: 'scheduler.cron.health_checks', variable: 'AEGIS_CRON_HEALTH_CHECKS', kind: 'text' },
  { key: 'scheduler.cron.rotations', variable: 'AEGIS_CRON_ROTATIONS', kind: 'text' },
  { key: 'scheduler.cron.expiry_checks', variable: 'AEGIS_CRON_EXPIRY_CHECKS', kind: 'text' },
  { key: 'scheduler.cron.daily_report', variable: 'AEGIS_CRON_DAILY_REPORT', kind: 'text' },
  { key: 'scheduler.cron.retention', variable: 'AEGIS_CRON_RETENTION', kind: 'text' },

  { key: 'audit.retention_days', variable: 'AEGIS_AUDIT_RETENTION_DAYS', kind: 'integer' },
  { key: 'audit.anomalies.baseline_days', variable: 'AEGIS_ANOMALY_BASELINE_DAYS', kind: 'integer' },
  { key: 'audit.anomalies.hours_min_entries', variable: 'AEGIS_ANOMALY_HOURS_MIN_ENTRIES', kind: 'integer' },
  { key: 'audit.anomalies.failure_burst_count', variable: 'AEGIS_ANOMALY_FAILURE_BURST_COUNT', kind: 'integer' },
  { key: 'audit.anomalies.failure_burst_minutes', variable: 'AEGIS_ANOMALY_FAILURE_BURST_MINUTES', kind: 'integer' },
  { key: 'audit.anomalies.read_rate_factor', variable: 'AEGIS_ANOMALY_READ_RATE_FACTOR', kind: 'integer' },
  { key: 'audit.anomalies.read_rate_min_reads', variable: 'AEGIS_ANOMALY_READ_RATE_MIN_READS', kind: 'integer' },

  { key: 'logging.level', variable: 'AEGIS_LOG_LEVEL', kind: 'text' },
];

/** The variables of the master key source; one set in the environment replaces the file's source. */
export const KEY_SOURCE_VARIABLES: ReadonlyArray<string> = ['AEGIS_MASTER_KEY', 'AEGIS_MASTER_KEY_FILE', 'AEGIS_MASTER_PASSPHRASE'];
