import { ValidationError } from '../../lib/errors.js';
import { scrubSecrets } from '../../lib/redact.js';
import type { Credential } from '../../registry/credential.types.js';
import { ProviderError, type ProviderAdapter, type ProviderEffect, type TestResult } from '../adapter.js';
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
  /** Names and `*` patterns of the roles credentials may name; undefined allows every role that is not privileged. */
  allowedRoles?: ReadonlyArray<string> | undefined;
  timeoutMs?: number;
}

/** The setting that limits the roles, as messages name it. */
const allowedRolesSetting = 'providers.postgres.allowed_roles or AEGIS_POSTGRES_ALLOWED_ROLES';

/** Builds the test of a role name against the configured names and `*` patterns; undefined allows every name. */
function roleMatcher(patterns: ReadonlyArray<string> | undefined): (role: string) => boolean {
  if (patterns === undefined) return () => true;
  const expressions = patterns.map((pattern) => new RegExp(`^${pattern.split('*').map((part) => part.replace(/[$-]/g, '\\$&')).join('.*')}$`));
  return (role) => expressions.some((expression) => expression.test(role));
}

/** Predefined roles whose members read or write the server's files or run programs on it. */
const serverAccessRoles = ['pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'];

/**
 * Returns why AEGIS must not set the password of `role` through the connected administrative client, or
 * null when it may. Superusers and roles with REPLICATION, BYPASSRLS or CREATEROLE reach more than a
 * database user should. So does a member of such a role or of a role with server file or program
 * access, because it can SET ROLE to it. The connection's own role (or a member of it) has the connection's
 * privileges, so a token that can rotate would gain them by choosing the password. A role that does not
 * exist returns null.
 */
async function privilegeProblem(client: import('pg').Client, role: string): Promise<string | null> {
  const result = await client.query<{ rolsuper: boolean; rolreplication: boolean; rolbypassrls: boolean; rolcreaterole: boolean; own: boolean; member: boolean; groups: string | null }>(
    `select r.rolsuper, r.rolreplication, r.rolbypassrls, r.rolcreaterole, r.rolname = current_user as own,
            pg_has_role(r.oid, current_user, 'MEMBER') as member,
            (select string_agg(g.rolname, ', ' order by g.rolname) from pg_roles g
              where g.oid <> r.oid and pg_has_role(r.oid, g.oid, 'MEMBER')
                and (g.rolsuper or g.rolreplication or g.rolbypassrls or g.rolcreaterole or g.rolname = any($2))) as groups
       from pg_roles r where r.rolname = $1`,
    [role, serverAccessRoles],
  );
  const row = result.rows[0];
  if (row === undefined) return null;
  if (row.rolsuper) return `role ${role} is a superuser`;
  if (row.own) return `role ${role} is the administrative connection's own role`;
  if (row.member) return `role ${role} is a member of the administrative connection's role`;
  if (row.rolreplication) return `role ${role} has the REPLICATION attribute`;
  if (row.rolbypassrls) return `role ${role} has the BYPASSRLS attribute`;
  if (row.rolcreaterole) return `role ${role} has the CREATEROLE attribute`;
  if (row.groups !== null) return `role ${role} is a member of ${row.groups}, which it can act as`;
  return null;
}

/**
 * Tells what a failed password change left: nothing when the statement was never sent or the server
 * rejected it with an SQLSTATE (an autocommitted statement that fails changes nothing). A timeout or a
 * dropped connection after sending leaves it unknown, because the server may still run the statement:
 * pg's query_timeout stops only the wait, not the server.
 */
function alterEffect(sent: boolean, error: unknown): ProviderEffect {
  if (!sent) return 'unchanged';
  // Only an error response from the server carries a severity (pg's DatabaseError). A socket error
  // such as EPIPE, whose code also has five capitals, leaves the outcome unknown.
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  return typeof severity === 'string' && typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? 'unchanged' : 'unknown';
}

/**
 * A PostgreSQL role's password. Setting a value runs ALTER ROLE through the named administrative
 * connection; testing logs in as the role with the value and runs `select 1`.
 */
export function createPostgresAdapter(options: PostgresAdapterOptions): ProviderAdapter {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const roleAllowed = roleMatcher(options.allowedRoles);

  function adminUrl(credential: Credential): string {
    const name = String(credential.providerConfig.connection ?? 'default');
    const url = Object.hasOwn(options.adminConnections, name) ? options.adminConnections[name] : undefined;
    if (!url) throw new ProviderError(`no administrative connection named "${name}" is configured (AEGIS_POSTGRES_ADMIN_URL or AEGIS_POSTGRES_CONNECTIONS)`);
    return url;
  }

  async function connectAdmin(credential: Pick<Credential, 'providerConfig'>): Promise<import('pg').Client> {
    const client = new (await loadDriver()).Client({ connectionString: adminUrl(credential as Credential), connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
    client.on('error', () => {});
    return client;
  }

  return {
    provider: 'postgres',
    capabilities: { test: true, setValue: true, issueValue: false, revoke: false, apply: false, list: false },

    checkConfig(config) {
      const { role, connection, database } = config;
      if (typeof role !== 'string' || !rolePattern.test(role)) {
        throw new ValidationError('provider_config.role', 'must be a PostgreSQL role name (letters, digits, _ $ -, up to 63 characters)');
      }
      if (!roleAllowed(role)) {
        throw new ValidationError('provider_config.role', `"${role}" is not among the roles this server lets AEGIS manage. Choose a listed role, or add it to ${allowedRolesSetting} and restart AEGIS.`);
      }
      if (connection !== undefined && (typeof connection !== 'string' || !connectionPattern.test(connection))) {
        throw new ValidationError('provider_config.connection', 'must name an administrative connection of the server configuration');
      }
      const name = (connection as string | undefined) ?? 'default';
      // Own keys only: a connection named "constructor" must not find Object's function.
      if (!Object.hasOwn(options.adminConnections, name) || !options.adminConnections[name]) {
        throw new ValidationError('provider_config.connection', `the server has no administrative connection named "${name}" (AEGIS_POSTGRES_ADMIN_URL or AEGIS_POSTGRES_CONNECTIONS)`);
      }
      if (database !== undefined && (typeof database !== 'string' || !rolePattern.test(database))) {
        throw new ValidationError('provider_config.database', 'must be a database name');
      }
      const unknown = Object.keys(config).filter((key) => !['role', 'connection', 'database'].includes(key));
      if (unknown.length > 0) throw new ValidationError(`provider_config.${unknown[0]}`, 'is not a setting of postgres credentials (role, connection, database)');
      return { role, ...(connection !== undefined ? { connection } : {}), ...(database !== undefined ? { database } : {}) };
    },

    targetOf(config) {
      const connection = String(config.connection ?? 'default');
      return { key: JSON.stringify([connection, config.role]), field: 'provider_config.role', description: `role ${String(config.role)} on connection "${connection}"` };
    },

    async checkTarget(config) {
      const role = String(config.role);
      const client = await connectAdmin({ providerConfig: config });
      let problem: string | null;
      try {
        await client.connect();
        problem = await privilegeProblem(client, role);
      } catch {
        // Unreachable now: setValue checks the role again before it changes the password.
        return;
      } finally {
        await client.end().catch(() => {});
      }
      if (problem !== null) {
        throw new ValidationError('provider_config.role', `${problem}, so AEGIS does not manage its password. Create an ordinary login role for the service and name it here.`);
      }
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
      // Checked again here, and against the role's attributes as they are now: the settings or the
      // role may have changed since the credential was stored, and rollback and recovery call this too.
      if (!roleAllowed(role)) throw new ProviderError(`role ${role} is not among the roles this server lets AEGIS manage (${allowedRolesSetting}), so its password was not changed`, 'unchanged');
      const client = await connectAdmin(credential);
      let problem: string | null = null;
      let sent = false;
      try {
        await client.connect();
        problem = await privilegeProblem(client, role);
        if (problem === null) {
          sent = true;
          // ALTER ROLE takes no bind parameters, so the role and the verifier are escaped by the driver.
          await client.query(`alter role ${client.escapeIdentifier(role)} password ${client.escapeLiteral(scramVerifier(value))}`);
        }
      } catch (error) {
        throw new ProviderError(`setting the password of role ${role} failed: ${scrubSecrets(String((error as Error).message ?? error), [value])}`, alterEffect(sent, error));
      } finally {
        await client.end().catch(() => {});
      }
      if (problem !== null) throw new ProviderError(`${problem}, so AEGIS did not change its password`, 'unchanged');
    },
  };
}
