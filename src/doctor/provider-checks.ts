import type { Config } from '../config/config.js';
import { ok, setting, warn, type CheckResult } from './check.js';

/**
 * Warns when an administrative PostgreSQL connection is configured but no list limits the roles whose
 * passwords AEGIS may set: any token that can create and rotate credentials may then take over every
 * ordinary role that connection can alter.
 */
export function checkPostgresRoles(config: Config): CheckResult {
  const connections = Object.keys(config.postgresAdminConnections);
  if (connections.length === 0) return ok('postgres roles', 'no administrative PostgreSQL connection is configured, so AEGIS sets no role password');
  if (config.postgresAllowedRoles !== undefined) {
    return ok('postgres roles', `postgres credentials are limited to the roles ${config.postgresAllowedRoles.join(', ')}`);
  }
  return warn(
    'postgres roles',
    `No list limits the PostgreSQL roles whose passwords AEGIS may set through ${connections.join(', ')}: a token with credentials:write and credentials:rotate may set the password of any role these connections can alter, except superusers, REPLICATION and BYPASSRLS roles and the connection's own role.`,
    `Set ${setting('providers.postgres.allowed_roles', 'AEGIS_POSTGRES_ALLOWED_ROLES')} to the roles AEGIS manages, e.g. app_*,reporting.`,
  );
}
