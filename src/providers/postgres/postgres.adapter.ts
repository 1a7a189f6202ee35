import { ValidationError } from '../../lib/errors.js';
import { scrubSecrets } from '../../lib/redact.js';
import type { Credential } from '../../registry/credential.types.js';
import { ProviderError, type ProviderAdapter, type TestResult } from '../adapter.js';
import { scramVerifier } from './scram.js';

const rolePattern = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;
const connectionPattern = /^[A-Za-z0-9_-]{1,64}$/;

/** Loads the PostgreSQL driver on first use, so that a vault that tests and rotates no PostgreSQL role does not load it. */
async function loadDriver(): Promise<typeof import('pg').default> {
  return (await import('pg')).default;
}

export interface PostgresAdapterOptions {
  /** Administrative connection strings by name; `default` is used when a credential names none. */
  adminConnections: Readonly<Record<string, string>>;
  timeoutMs?: number;
}

/**
 * A PostgreSQL role's password. Setting a value runs ALTER ROLE through the named administrative
 * connection; testing logs in as the role with the value and runs `select 1`.
 */
export function createPostgresAdapter(options: PostgresAdapterOptions): ProviderAdapter {
  const timeoutMs = options.timeoutMs ?? 5_000;

  function adminUrl(credential: Credential): string {
    const name = String(credential.providerConfig.connection ?? 'default');
    const url = options.adminConnections[name];
    if (!url) throw new ProviderError(`no administrative connection named "${name}" is configured (AEGIS_POSTGRES_ADMIN_URL or AEGIS_POSTGRES_CONNECTIONS)`);
    return url;
  }

  return {
    provider: 'postgres',
    capabilities: { test: true, setValue: true, issueValue: false, revoke: false, apply: false, list: false },

    checkConfig(config) {
      const { role, connection, database } = config;
      if (typeof role !== 'string' || !rolePattern.test(role)) {
        throw new ValidationError('provider_config.role', 'must be a PostgreSQL role name (letters, digits, _ $ -, up to 63 characters)');
      }
      if (connection !== undefined && (typeof connection !== 'string' || !connectionPattern.test(connection))) {
        throw new ValidationError('provider_config.connection', 'must name an administrative connection of the server configuration');
      }
      const name = (connection as string | undefined) ?? 'default';
      if (!options.adminConnections[name]) {
        throw new ValidationError('provider_config.connection', `the server has no administrative connection named "${name}" (AEGIS_POSTGRES_ADMIN_URL or AEGIS_POSTGRES_CONNECTIONS)`);
      }
      if (database !== undefined && (typeof database !== 'string' || !rolePattern.test(database))) {
        throw new ValidationError('provider_config.database', 'must be a database name');
      }
      const unknown = Object.keys(config).filter((key) => !['role', 'connection', 'database'].includes(key));
      if (unknown.length > 0) throw new ValidationError(`provider_config.${unknown[0]}`, 'is not a setting of postgres credentials (role, connection, database)');
      return { role, ...(connection !== undefined ? { connection } : {}), ...(database !== undefined ? { database } : {}) };
    },

    async test(credential, value): Promise<TestResult> {
      const started = performance.now();
      const role = String(credential.providerConfig.role);
      if (value === null) return { healthy: false, responseTimeMs: 0, details: { role }, error: 'AEGIS holds no password for this role' };
      const target = new URL(adminUrl(credential));
      target.username = encodeURIComponent(role);
      // The password goes into the URL: pg 8 lets every field of a connection string, an empty password
      // included, override the same field passed beside it, so `password: value` would be dropped.
      target.password = encodeURIComponent(value);
      if (credential.providerConfig.database) target.pathname = `/${String(credential.providerConfig.database)}`;
      const client = new (await loadDriver()).Client({ connectionString: target.toString(), connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
      client.on('error', () => {});
      try {
        await client.connect();
        const rows = await client.query('select 1 as ok');
        return { healthy: rows.rows[0]?.ok === 1, responseTimeMs: Math.round(performance.now() - started), details: { role, database: target.pathname.slice(1) }, error: null };
      } catch (error) {
        const message = scrubSecrets(String((error as Error).message ?? error), [value]);
        return { healthy: false, responseTimeMs: Math.round(performance.now() - started), details: { role }, error: `login as ${role} failed: ${message}` };
      } finally {
        await client.end().catch(() => {});
      }
    },

    async setValue(credential, value) {
      const role = String(credential.providerConfig.role);
      const client = new (await loadDriver()).Client({ connectionString: adminUrl(credential), connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
      client.on('error', () => {});
      try {
        await client.connect();
        // ALTER ROLE takes no bind parameters, so the role and the verifier are escaped by the driver.
        await client.query(`alter role ${client.escapeIdentifier(role)} password ${client.escapeLiteral(scramVerifier(value))}`);
      } catch (error) {
        throw new ProviderError(`setting the password of role ${role} failed: ${scrubSecrets(String((error as Error).message ?? error), [value])}`);
      } finally {
        await client.end().catch(() => {});
      }
    },
  };
}
