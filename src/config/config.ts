import net from 'node:net';
import path from 'node:path';
import { readAuditSettings, type AuditSettings } from '../audit/audit-settings.js';
import { StartupError } from '../lib/errors.js';
import { cronScheduleError } from '../scheduler/job-schedule.js';
import { mergeWithEnvironment, nameFileKeys, readConfigFile, type ConfigFile } from './config-file.js';
import { FILE_KEYS } from './config-keys.js';

/** The source of the master keys. Exactly one is used; docs/configuration.md lists them. */
export type KeySource =
  | { kind: 'file'; path: string; generated: boolean }
  | { kind: 'env'; variable: string; value: string; fileKey?: string }
  | { kind: 'passphrase'; variable: string; value: string; fileKey?: string };

export interface Config {
  host: string;
  port: number;
  /** Certificate chain and private key files (PEM). When both are set, `aegis serve` serves HTTPS. */
  tls: { certFile: string; keyFile: string } | undefined;
  /** Whether `aegis serve` may listen on a non-loopback address without TLS (AEGIS_ALLOW_INSECURE_LISTEN=on). */
  allowInsecureListen: boolean;
  /**
   * IP addresses and CIDR ranges of the proxies whose X-Forwarded-For header gives the client address
   * (AEGIS_TRUSTED_PROXIES). Empty trusts no proxy, so the client address is the socket's peer.
   */
  trustedProxies: string[];
  /** How long a stopping server waits for in-flight requests and rotation steps before it exits anyway. */
  shutdownTimeoutSeconds: number;
  dataDir: string;
  /** The configuration file named by AEGIS_CONFIG, resolved, or undefined without one. */
  configFile: string | undefined;
  /** PostgreSQL connection string. When unset, AEGIS uses the SQLite file at `sqlitePath`. */
  databaseUrl: string | undefined;
  /** PostgreSQL schema for AEGIS's tables; tests give each run its own. */
  databaseSchema: string | undefined;
  databasePoolMax: number;
  /** PostgreSQL pool time limits in milliseconds; docs/postgresql.md explains each. */
  databaseTimeouts: { connectMs: number; idleMs: number; statementMs: number; idleInTransactionMs: number };
  sqlitePath: string;
  keySource: KeySource;
  /** How long an unwrapped data key stays cached after a seal or an open; 0 turns the cache off. */
  dataKeyCacheSeconds: number;
  logLevel: string;
  /** Whether AEGIS_LOG_LEVEL or the file's `logging.level` set `logLevel`; CLI commands default to `warn` otherwise. */
  logLevelSet: boolean;
  /** Failed authentications from one address within `authFailureWindowSeconds` before it gets 429. */
  authFailureLimit: number;
  authFailureWindowSeconds: number;
  /** Folders that `env` credentials may point into. */
  envAllowedDirs: string[];
  /** Largest accepted request body, in bytes. */
  bodyLimitBytes: number;
  /** Shell commands run after AEGIS rewrites a .env file, by absolute path. */
  envReloadCommands: Record<string, string>;
  /** Administrative PostgreSQL connections for `postgres` credentials, by name. */
  postgresAdminConnections: Record<string, string>;
  /**
   * Names and `*` patterns of the roles `postgres` credentials may name (AEGIS_POSTGRES_ALLOWED_ROLES).
   * Undefined allows every role but superusers, REPLICATION and BYPASSRLS roles and the connection's own role.
   */
  postgresAllowedRoles: string[] | undefined;
  /** Time limit of one provider call (a test, a write), in milliseconds. */
  providerTimeoutMs: number;
  /** Supabase Management API: a personal access token (unset: no key rotation) and the API's base URL. */
  supabaseAccessToken: string | undefined;
  supabaseApiUrl: string;
  /** How long a rotation lease lasts without a heartbeat before another process may take it over. */
  rotationLeaseSeconds: number;
  /** Attempts per rotation; each retry after a failure uses a new value. */
  rotationAttempts: number;
  /** Rotations run at once by `run-scheduled`. */
  rotationConcurrency: number;
  /** Days after which non-current versions (but the rollback target) and rotation history are removed. */
  versionRetentionDays: number;
  historyRetentionDays: number;
  /** Alert sinks; each is off when unset. */
  hermesUrl: string | undefined;
  eventBusUrl: string | undefined;
  webhooks: Array<{ url: string; secret: string }>;
  /** Hours before expiry at which a `credential_expiring` alert is raised, one per lead time. */
  alertLeadHours: number[];
  /** Age in days after which delivered and given-up alerts are removed; see src/alerts/alert-retention.ts for the ones kept. */
  alertRetentionDays: number;
  /** Health checks run at once by `check-all`. */
  healthConcurrency: number;
  /** Age in days after which stored health checks are removed, except each credential's newest. */
  healthCheckRetentionDays: number;
  /** Whether `aegis serve` runs the scheduler (it still takes the leader lease first). */
  schedulerEnabled: boolean;
  /** How long the scheduler leader lease lasts without renewal; the leader renews it every third of that. */
  schedulerLeaseSeconds: number;
  /** Cron expressions of the scheduler's jobs, read in `reportTimezone` for the report and UTC otherwise. */
  schedules: { healthChecks: string; rotations: string; expiryChecks: string; dailyReport: string; retention: string };
  /** Seconds between alert delivery runs. */
  alertDeliverySeconds: number;
  reportTimezone: string;
  /** Audit retention (AEGIS_AUDIT_RETENTION_DAYS) and anomaly thresholds (AEGIS_ANOMALY_*). */
  audit: AuditSettings;
  /** n8n's base URL (without /api/v1) and public API key; n8n features are off unless both are set. */
  n8nUrl: string | undefined;
  n8nApiKey: string | undefined;
}

type Env = Record<string, string | undefined>;

/**
 * Reads the configuration: the YAML file named by AEGIS_CONFIG (when set) with environment variables
 * over it, and defaults for a single-node SQLite vault under `./data`. Every invalid setting stops
 * start-up with a message naming the variable, and the file key when the file set it.
 */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  return loadConfigAndFile(env, cwd).config;
}

/** Reads the configuration like `loadConfig` and also returns the configuration file it read, if any. */
export function loadConfigAndFile(env: Env = process.env, cwd: string = process.cwd()): { config: Config; file: ConfigFile | undefined } {
  const fileName = emptyToUndefined(env.AEGIS_CONFIG);
  // An empty variable counts as unset with or without a file, so `AEGIS_DATA_DIR=` in an environment
  // file means the default ./data, not the working folder.
  if (fileName === undefined) return { config: readSettings(withoutEmptyValues(env), cwd), file: undefined };

  const file = readConfigFile(path.resolve(cwd, fileName));
  const { settings, fromFile } = mergeWithEnvironment(file, env);
  try {
    const config = readSettings(settings, cwd);
    const source = config.keySource;
    // Messages about the key then name the file key instead of a variable the operator never set.
    if (source.kind !== 'file' && fromFile[source.variable] !== undefined) source.fileKey = `${fromFile[source.variable]} in ${file.path}`;
    return { config, file };
  } catch (error) {
    if (error instanceof StartupError) throw nameFileKeys(error, file.path, fromFile);
    throw error;
  }
}

/** Reads every setting from environment-variable text; relative paths resolve against `cwd`. */
function readSettings(env: Env, cwd: string): Config {
  const dataDir = path.resolve(cwd, env.AEGIS_DATA_DIR ?? 'data');
  return {
    host: env.AEGIS_HOST ?? '127.0.0.1',
    port: readInteger(env, 'AEGIS_PORT', 8012, 0, 65535),
    tls: readTls(env, cwd),
    allowInsecureListen: readOnOff(env, 'AEGIS_ALLOW_INSECURE_LISTEN', false),
    trustedProxies: readTrustedProxies(env),
    shutdownTimeoutSeconds: readInteger(env, 'AEGIS_SHUTDOWN_TIMEOUT_SECONDS', 30, 1, 3600),
    dataDir,
    configFile: emptyToUndefined(env.AEGIS_CONFIG) === undefined ? undefined : path.resolve(cwd, env.AEGIS_CONFIG!),
    databaseUrl: readDatabaseUrl(env),
    databaseSchema: readSchemaName(env),
    databasePoolMax: readInteger(env, 'AEGIS_DATABASE_POOL_MAX', 10, 1, 1000),
    databaseTimeouts: {
      connectMs: readInteger(env, 'AEGIS_DATABASE_CONNECT_TIMEOUT_MS', 5_000, 100, 600_000),
      idleMs: readInteger(env, 'AEGIS_DATABASE_IDLE_TIMEOUT_MS', 30_000, 1_000, 3_600_000),
      statementMs: readInteger(env, 'AEGIS_DATABASE_STATEMENT_TIMEOUT_MS', 60_000, 1_000, 86_400_000),
      idleInTransactionMs: readInteger(env, 'AEGIS_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS', 60_000, 1_000, 86_400_000),
    },
    sqlitePath: path.resolve(cwd, env.AEGIS_SQLITE_PATH ?? path.join(dataDir, 'aegis.db')),
    keySource: readKeySource(env, cwd, dataDir),
    dataKeyCacheSeconds: readInteger(env, 'AEGIS_DATA_KEY_CACHE_SECONDS', 300, 0, 86_400),
    logLevel: readLogLevel(env),
    logLevelSet: env.AEGIS_LOG_LEVEL !== undefined,
    authFailureLimit: readInteger(env, 'AEGIS_AUTH_FAILURE_LIMIT', 10, 1, 1_000_000),
    authFailureWindowSeconds: readInteger(env, 'AEGIS_AUTH_FAILURE_WINDOW_SECONDS', 60, 1, 86_400),
    envAllowedDirs: (env.AEGIS_ENV_ALLOWED_DIRS ?? cwd)
      .split(path.delimiter)
      .filter((dir) => dir !== '')
      .map((dir) => path.resolve(cwd, dir)),
    bodyLimitBytes: readInteger(env, 'AEGIS_BODY_LIMIT_BYTES', 512 * 1024, 1024, 16 * 1024 * 1024),
    envReloadCommands: readStringMap(env, 'AEGIS_ENV_RELOAD_COMMANDS', (key) => path.resolve(cwd, key)),
    postgresAdminConnections: {
      ...(emptyToUndefined(env.AEGIS_POSTGRES_ADMIN_URL) ? { default: env.AEGIS_POSTGRES_ADMIN_URL! } : {}),
      ...readStringMap(env, 'AEGIS_POSTGRES_CONNECTIONS', (key) => key),
    },
    postgresAllowedRoles: readRolePatterns(env, 'AEGIS_POSTGRES_ALLOWED_ROLES'),
    providerTimeoutMs: readInteger(env, 'AEGIS_PROVIDER_TIMEOUT_MS', 10_000, 100, 600_000),
    supabaseAccessToken: emptyToUndefined(env.SUPABASE_ACCESS_TOKEN),
    supabaseApiUrl: readUrl(env, 'SUPABASE_API_URL') ?? 'https://api.supabase.com',
    rotationLeaseSeconds: readInteger(env, 'AEGIS_ROTATION_LEASE_SECONDS', 300, 5, 86_400),
    rotationAttempts: readInteger(env, 'AEGIS_ROTATION_ATTEMPTS', 3, 1, 10),
    rotationConcurrency: readInteger(env, 'AEGIS_ROTATION_CONCURRENCY', 4, 1, 64),
    versionRetentionDays: readInteger(env, 'AEGIS_VERSION_RETENTION_DAYS', 90, 1, 36_500),
    historyRetentionDays: readInteger(env, 'AEGIS_HISTORY_RETENTION_DAYS', 90, 1, 36_500),
    hermesUrl: readUrl(env, 'HERMES_URL'),
    eventBusUrl: readUrl(env, 'EVENT_BUS_URL'),
    webhooks: readWebhooks(env),
    alertLeadHours: readIntegerList(env, 'AEGIS_ALERT_LEAD_HOURS', [168], 1, 87_600),
    alertRetentionDays: readInteger(env, 'AEGIS_ALERT_RETENTION_DAYS', 90, 1, 36_500),
    healthConcurrency: readInteger(env, 'AEGIS_HEALTH_CONCURRENCY', 50, 1, 1000),
    healthCheckRetentionDays: readInteger(env, 'AEGIS_HEALTH_CHECK_RETENTION_DAYS', 90, 1, 36_500),
    schedulerEnabled: readOnOff(env, 'AEGIS_SCHEDULER', true),
    schedulerLeaseSeconds: readInteger(env, 'AEGIS_SCHEDULER_LEASE_SECONDS', 30, 3, 3600),
    schedules: readSchedules(env),
    alertDeliverySeconds: readInteger(env, 'AEGIS_ALERT_DELIVERY_SECONDS', 5, 1, 3600),
    reportTimezone: readTimezone(env, 'AEGIS_REPORT_TIMEZONE', 'UTC'),
    audit: readAuditSettings(env),
    n8nUrl: readUrl(env, 'N8N_URL'),
    n8nApiKey: emptyToUndefined(env.N8N_API_KEY),
  };
}

/** Reads the scheduler's cron expressions; each is checked in UTC, which accepts every valid expression. */
function readSchedules(env: Env): Config['schedules'] {
  const read = (name: string, fallback: string): string => {
    const expression = emptyToUndefined(env[name])?.trim() ?? fallback;
    const error = cronScheduleError(name, expression, 'UTC');
    if (error) throw new StartupError(error);
    return expression;
  };
  return {
    healthChecks: read('AEGIS_CRON_HEALTH_CHECKS', '0 * * * *'),
    rotations: read('AEGIS_CRON_ROTATIONS', '30 * * * *'),
    expiryChecks: read('AEGIS_CRON_EXPIRY_CHECKS', '*/5 * * * *'),
    dailyReport: read('AEGIS_CRON_DAILY_REPORT', '0 8 * * *'),
    retention: read('AEGIS_CRON_RETENTION', '15 3 * * *'),
  };
}

/** Reads AEGIS_TLS_CERT_FILE and AEGIS_TLS_KEY_FILE: both or neither. */
function readTls(env: Env, cwd: string): Config['tls'] {
  const certFile = emptyToUndefined(env.AEGIS_TLS_CERT_FILE);
  const keyFile = emptyToUndefined(env.AEGIS_TLS_KEY_FILE);
  if (certFile === undefined && keyFile === undefined) return undefined;
  // The variable that is set is named alone, because nameFileKeys adds its file key when the file set it.
  // The missing one is named by file key and variable, since the user may set it in either place.
  if (keyFile === undefined) {
    throw new StartupError(
      `AEGIS_TLS_CERT_FILE is set but the private key file is missing. Set ${fileKeyAndVariable('AEGIS_TLS_KEY_FILE')} as well to serve HTTPS, or unset both to serve HTTP.`,
    );
  }
  if (certFile === undefined) {
    throw new StartupError(
      `AEGIS_TLS_KEY_FILE is set but the certificate file is missing. Set ${fileKeyAndVariable('AEGIS_TLS_CERT_FILE')} as well to serve HTTPS, or unset both to serve HTTP.`,
    );
  }
  return { certFile: path.resolve(cwd, certFile), keyFile: path.resolve(cwd, keyFile) };
}

/** Formats the name of a setting as "file.key (or VARIABLE)", e.g. "server.tls.key_file (or AEGIS_TLS_KEY_FILE)". */
function fileKeyAndVariable(variable: string): string {
  const entry = FILE_KEYS.find((candidate) => candidate.variable === variable);
  return entry ? `${entry.key} (or ${variable})` : variable;
}

/**
 * Reads AEGIS_TRUSTED_PROXIES, a comma-separated list of IP addresses and CIDR ranges. Fastify's
 * `trustProxy` believes the X-Forwarded-For header only from these peers. A range that contains every
 * IPv4 or every IPv6 address is rejected, because it would let any client choose its own address.
 */
function readTrustedProxies(env: Env): string[] {
  const raw = emptyToUndefined(env.AEGIS_TRUSTED_PROXIES);
  if (raw === undefined) return [];
  const entries = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  for (const entry of entries) checkTrustedProxy(entry);
  rejectEveryAddress(entries);
  return entries;
}

function checkTrustedProxy(entry: string): void {
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = net.isIP(address);
  // Zone ids such as fe80::1%eth0 are rejected, because Node accepts some (fe80::1%eth0.5) that the
  // ipaddr.js parser behind Fastify's trustProxy rejects, which would fail later and less clearly.
  if (family === 0 || !/^[0-9a-f:.]+$/i.test(address) || rest.length > 0 || (prefix !== undefined && !/^\d{1,3}$/.test(prefix))) {
    throw new StartupError(
      `AEGIS_TRUSTED_PROXIES must list IP addresses or CIDR ranges such as 10.0.0.2 or 2001:db8::/64, got "${entry}". Write the proxy's address, not its host name.`,
    );
  }
  const maxPrefix = family === 4 ? 32 : 128;
  const prefixLength = prefix === undefined ? maxPrefix : Number(prefix);
  if (prefixLength > maxPrefix) {
    throw new StartupError(`AEGIS_TRUSTED_PROXIES has the range "${entry}", whose prefix length must be from 1 to ${maxPrefix} for IPv${family}.`);
  }

  const range = new net.BlockList();
  range.addSubnet(address, prefixLength, family === 4 ? 'ipv4' : 'ipv6');
  const covered = coveredFamily(range);
  if (covered !== undefined) {
    throw new StartupError(
      `AEGIS_TRUSTED_PROXIES must not contain "${entry}", which trusts every ${covered} address and so lets any client set the address that AEGIS rate-limits and records. List only the addresses of your proxies.`,
    );
  }
}

/** Rejects a list whose ranges together trust every address of a family, e.g. 0.0.0.0/1 and 128.0.0.0/1. */
function rejectEveryAddress(entries: string[]): void {
  const ranges = new net.BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const family = net.isIP(address) === 4 ? 'ipv4' : 'ipv6';
    const fullLength = family === 'ipv4' ? 32 : 128;
    ranges.addSubnet(address, prefix === undefined ? fullLength : Number(prefix), family);
  }
  const covered = coveredFamily(ranges);
  if (covered !== undefined) {
    throw new StartupError(
      `AEGIS_TRUSTED_PROXIES lists ranges that together trust every ${covered} address and so let any client set the address that AEGIS rate-limits and records. List only the addresses of your proxies.`,
    );
  }
}

/**
 * Returns the family whose every address the ranges contain, or undefined. Contiguous ranges that
 * contain both ends of the address space and its midpoints are taken as covering it, an estimate
 * that catches the catch-all spellings (one range, or halves and quarters of the space).
 */
function coveredFamily(ranges: net.BlockList): 'IPv4' | 'IPv6' | undefined {
  const ipv4 = ['0.0.0.0', '64.0.0.0', '127.255.255.255', '128.0.0.0', '192.0.0.0', '255.255.255.255'];
  const ipv6 = ['::', '4000::', '7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '8000::', 'c000::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'];
  // IPv6 first: an IPv6 range that covers ::ffff:0:0/96 also matches every IPv4 address.
  if (ipv6.every((address) => ranges.check(address, 'ipv6'))) return 'IPv6';
  if (ipv4.every((address) => ranges.check(address, 'ipv4'))) return 'IPv4';
  return undefined;
}

function readOnOff(env: Env, name: string, fallback: boolean): boolean {
  const raw = emptyToUndefined(env[name]);
  if (raw === undefined) return fallback;
  if (raw === 'on') return true;
  if (raw === 'off') return false;
  throw new StartupError(`${name} must be "on" or "off", got "${raw}".`);
}

/**
 * Reads DATABASE_URL: a postgres:// or postgresql:// URL, or node-postgres's socket: URL or socket path.
 * node-postgres (pg-connection-string 2) reads other text relative to postgres://base, so a typo would end
 * in a DNS lookup of the host "base". The message quotes nothing of the value, which may hold a password.
 */
function readDatabaseUrl(env: Env): string | undefined {
  const raw = emptyToUndefined(env.DATABASE_URL);
  if (raw === undefined || raw.startsWith('/')) return raw;
  let protocol: string | undefined;
  try {
    protocol = new URL(raw).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:' && protocol !== 'socket:') {
    throw new StartupError(
      'DATABASE_URL must be a PostgreSQL URL such as postgres://aegis@db.internal:5432/aegis, with a numeric port and special characters in the password percent-encoded; the value is not one.',
    );
  }
  return raw;
}

function readTimezone(env: Env, name: string, fallback: string): string {
  const zone = emptyToUndefined(env[name]) ?? fallback;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    throw new StartupError(`${name} must be an IANA time zone such as Europe/Berlin, got "${zone}".`);
  }
  return zone;
}

/**
 * Reads an http or https URL. A `base` URL (HERMES_URL, N8N_URL, ...) gets a path appended, so it may
 * not carry a query or fragment, and its trailing slashes are dropped. An `endpoint` (a webhook) is
 * used as written. Neither may carry a user name or password, which fetch rejects on every request.
 * Messages name the setting but quote no more of the value than its scheme, because webhook paths
 * and queries often carry tokens.
 */
function readUrl(env: Env, name: string, kind: 'base' | 'endpoint' = 'base'): string | undefined {
  const raw = emptyToUndefined(env[name]);
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new StartupError(`${name} must be an http or https URL; the value is not a URL.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new StartupError(`${name} must be an http or https URL, got one with scheme "${url.protocol}".`);
  if (url.username !== '' || url.password !== '') {
    throw new StartupError(`${name} must not contain a user name or password, which AEGIS cannot send; remove them from the URL.`);
  }
  if (kind === 'endpoint') return raw;
  if (url.search !== '' || url.hash !== '') {
    throw new StartupError(`${name} must not have a query (?...) or fragment (#...), because AEGIS appends paths to it; give the base URL only.`);
  }
  return raw.replace(/\/+$/, '');
}

/** Reads AEGIS_WEBHOOKS, a JSON list of {"url", "secret"}: each alert is POSTed there with an HMAC-SHA256 signature. */
function readWebhooks(env: Env): Array<{ url: string; secret: string }> {
  const raw = emptyToUndefined(env.AEGIS_WEBHOOKS);
  if (raw === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed)) throw new StartupError('AEGIS_WEBHOOKS must be a list of {"url": "...", "secret": "..."} with secrets of 16 or more characters.');
  return parsed.map((entry: unknown, index) => {
    const item = `AEGIS_WEBHOOKS[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new StartupError(`${item} must be an object with "url" and "secret".`);
    const unknownKeys = Object.keys(entry).filter((key) => key !== 'url' && key !== 'secret');
    if (unknownKeys.length > 0) throw new StartupError(`${item} has unknown setting(s) ${unknownKeys.map((key) => `"${key}"`).join(', ')}; a webhook takes only "url" and "secret".`);
    const { url, secret } = entry as { url?: unknown; secret?: unknown };
    if (typeof url !== 'string') throw new StartupError(`${item}.url is missing; give the URL the alerts are POSTed to.`);
    if (typeof secret !== 'string' || secret.trim().length < 16) {
      throw new StartupError(`${item}.secret must be 16 or more characters, not counting spaces at either end; give the secret the receiver checks signatures with.`);
    }
    return { url: readUrl({ [`${item}.url`]: url }, `${item}.url`, 'endpoint')!, secret };
  });
}

function readIntegerList(env: Env, name: string, fallback: number[], min: number, max: number): number[] {
  const raw = emptyToUndefined(env[name]);
  if (raw === undefined) return fallback;
  const values = raw.split(',').map((part) => part.trim());
  if (!values.every((part) => /^\d+$/.test(part) && Number(part) >= min && Number(part) <= max)) {
    throw new StartupError(`${name} must be a comma-separated list of whole numbers from ${min} to ${max}, got "${raw}".`);
  }
  return [...new Set(values.map(Number))].sort((a, b) => b - a);
}

/**
 * Reads a comma-separated list of PostgreSQL role names, where `*` stands for any characters
 * (e.g. `app_*,reporting`). Unset returns undefined, which leaves every ordinary role allowed.
 */
function readRolePatterns(env: Env, name: string): string[] | undefined {
  const raw = emptyToUndefined(env[name]);
  if (raw === undefined) return undefined;
  const patterns = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  const invalid = patterns.find((entry) => !/^[A-Za-z_*][A-Za-z0-9_$*-]{0,62}$/.test(entry));
  if (invalid !== undefined || patterns.length === 0) {
    throw new StartupError(`${name} must be a comma-separated list of PostgreSQL role names, where * stands for any characters (e.g. app_*,reporting), got "${invalid ?? raw}".`);
  }
  return patterns;
}

/** Reads a JSON object of strings, e.g. {"/srv/app/.env": "systemctl reload app"}; `key` normalizes each key. */
function readStringMap(env: Env, name: string, key: (raw: string) => string): Record<string, string> {
  const raw = emptyToUndefined(env[name]);
  if (raw === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new StartupError(`${name} must be a JSON object of strings, e.g. {"name": "value"}.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every((value) => typeof value === 'string')) {
    throw new StartupError(`${name} must be a JSON object of strings, e.g. {"name": "value"}.`);
  }
  return Object.fromEntries(Object.entries(parsed as Record<string, string>).map(([entry, value]) => [key(entry), value]));
}

function readKeySource(env: Env, cwd: string, dataDir: string): KeySource {
  const set = ['AEGIS_MASTER_KEY', 'AEGIS_MASTER_KEY_FILE', 'AEGIS_MASTER_PASSPHRASE'].filter((name) => emptyToUndefined(env[name]));
  if (set.length > 1) {
    throw new StartupError(`Set only one master key source; found ${set.join(' and ')}. Unset all but one and start again.`);
  }
  const key = emptyToUndefined(env.AEGIS_MASTER_KEY);
  if (key) return { kind: 'env', variable: 'AEGIS_MASTER_KEY', value: key };
  const passphrase = emptyToUndefined(env.AEGIS_MASTER_PASSPHRASE);
  if (passphrase) return { kind: 'passphrase', variable: 'AEGIS_MASTER_PASSPHRASE', value: passphrase };
  const file = emptyToUndefined(env.AEGIS_MASTER_KEY_FILE);
  if (file) return { kind: 'file', path: path.resolve(cwd, file), generated: false };
  return { kind: 'file', path: path.join(dataDir, 'master.key'), generated: true };
}

function readInteger(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = emptyToUndefined(env[name]);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new StartupError(`${name} must be an integer, got "${raw}".`);
  const value = Number(raw);
  if (value < min || value > max) throw new StartupError(`${name} must be between ${min} and ${max}, got ${value}.`);
  return value;
}

function readLogLevel(env: Env): string {
  const level = env.AEGIS_LOG_LEVEL ?? 'info';
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(level)) throw new StartupError(`AEGIS_LOG_LEVEL must be one of ${levels.join(', ')}, got "${level}".`);
  return level;
}

function readSchemaName(env: Env): string | undefined {
  const schema = emptyToUndefined(env.AEGIS_DATABASE_SCHEMA);
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new StartupError(`AEGIS_DATABASE_SCHEMA must be a lower-case PostgreSQL identifier, got "${schema}".`);
  }
  return schema;
}

function withoutEmptyValues(env: Env): Env {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => emptyToUndefined(value) !== undefined));
}

function emptyToUndefined(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
