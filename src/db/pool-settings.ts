import type pg from 'pg';

/** Limits of the PostgreSQL connection pool, in milliseconds unless named otherwise. */
export interface PoolSettings {
  /** Maximum open connections per process (AEGIS_DATABASE_POOL_MAX). */
  max: number;
  /** Maximum wait for a connection: opening a new one, or for one to be free when `max` are in use. */
  connectionTimeoutMs: number;
  /** A connection idle this long is closed. */
  idleTimeoutMs: number;
  /** Idle time on a socket before TCP keepalive probes start, so a silently dropped connection is noticed. */
  keepAliveInitialDelayMs: number;
  /** PostgreSQL's statement_timeout: the server cancels a statement running longer than this. */
  statementTimeoutMs: number;
  /**
   * PostgreSQL's idle_in_transaction_session_timeout: the server ends a session whose transaction
   * waits this long between statements, which releases its row locks (the audit head row among them).
   */
  idleInTransactionTimeoutMs: number;
}

/**
 * Defaults of the time limits, for callers that pass none (the configuration sets them in `aegis serve`).
 * Migrations run without statement_timeout (see postgres-migration-dialect.ts), because an index built
 * on a very large audit log can need more than 60 s.
 */
export const DEFAULT_POOL_SETTINGS: Omit<PoolSettings, 'max'> = {
  connectionTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  keepAliveInitialDelayMs: 10_000,
  statementTimeoutMs: 60_000,
  idleInTransactionTimeoutMs: 60_000,
};

/**
 * Alert delivery on PostgreSQL keeps its transaction open while the sink responds, for up to the
 * provider time-out. The idle-in-transaction limit stays this far above that time-out.
 */
const deliveryMarginMs = 30_000;

/**
 * Resolves the pool settings: `max` as configured, the others from `overrides` or the defaults. The
 * idle-in-transaction limit is raised above the provider time-out, so a slow alert sink cannot get a
 * delivery transaction ended while it waits for the sink.
 */
export function resolvePoolSettings(max: number, overrides: Partial<PoolSettings> = {}, providerTimeoutMs = 0): PoolSettings {
  const settings = { ...DEFAULT_POOL_SETTINGS, ...overrides, max };
  settings.idleInTransactionTimeoutMs = Math.max(settings.idleInTransactionTimeoutMs, providerTimeoutMs + deliveryMarginMs);
  return settings;
}

/** Builds node-postgres's pool configuration; the timeouts are sent as startup parameters of each connection. */
export function poolConfig(url: string, schema: string | undefined, settings: PoolSettings): pg.PoolConfig {
  return {
    connectionString: url,
    max: settings.max,
    connectionTimeoutMillis: settings.connectionTimeoutMs,
    idleTimeoutMillis: settings.idleTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: settings.keepAliveInitialDelayMs,
    statement_timeout: settings.statementTimeoutMs,
    idle_in_transaction_session_timeout: settings.idleInTransactionTimeoutMs,
    // Names the connections in pg_stat_activity; an application_name in the URL takes precedence.
    application_name: 'aegis',
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  };
}
