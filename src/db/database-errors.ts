/** Seconds a client should wait before retrying a request that failed because the database was unreachable. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/**
 * Error codes of a database that cannot be reached or is going away: socket errors from Node, and
 * PostgreSQL's class 08 (connection exception) and 57P01 to 57P03 (admin shutdown, crash shutdown,
 * cannot connect now), plus a locked SQLite file.
 */
const unavailableCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', '57P01', '57P02', '57P03', '57014', 'SQLITE_BUSY', 'SQLITE_LOCKED']);

/**
 * Tells whether a SQLite statement failed because another connection held the lock for longer than
 * busy_timeout. Trying again at once would wait as long again.
 */
export function isSqliteLockTimeout(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/** Tells whether a statement failed on a unique constraint or index: PostgreSQL's 23505, or SQLite's constraint codes. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * SQLSTATE codes with which PostgreSQL rejects a new connection because of what DATABASE_URL names:
 * 3D000 (the database does not exist), 28000 (no such role, or pg_hba.conf rejects it) and 28P01 (a
 * wrong password). Trying again does not help, unlike the codes above.
 */
const rejectedConnectionCodes = new Set(['3D000', '28000', '28P01']);

/** Tells whether PostgreSQL rejected a connection because of its database name, role or password. */
export function isConnectionRejected(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && rejectedConnectionCodes.has(code);
}

/**
 * Messages of errors without a code that node-postgres (pg 8, pg-pool 3) and Kysely raise when a
 * connection cannot be opened or has been lost. Kysely throws the rollback's error in place of the
 * original one when the connection died inside a transaction, and that error is one of these.
 */
const unavailableMessages = [
  'timeout exceeded when trying to connect',
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Postgres connection has been discarded',
  'timeout expired',
];

/**
 * Tells whether an error means the database is unreachable or going away, so the same request may
 * succeed later. Such errors are refused or lost connections, a server shutting down or starting up,
 * a pool that timed out waiting for a connection, a statement cancelled by statement_timeout, and a
 * busy SQLite file. Follows `cause` 4 levels deep.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth += 1) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (unavailableCodes.has(code) || code.startsWith('08'))) return true;
    if (typeof message === 'string' && unavailableMessages.some((text) => message.startsWith(text))) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
