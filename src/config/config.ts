import path from 'node:path';
import { StartupError } from '../lib/errors.js';

/** Where the master keys come from. Exactly one source is used; see docs/configuration.md. */
export type KeySource =
  | { kind: 'file'; path: string; generated: boolean }
  | { kind: 'env'; variable: string; value: string }
  | { kind: 'passphrase'; variable: string; value: string };

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** PostgreSQL connection string. When unset, AEGIS uses the SQLite file at `sqlitePath`. */
  databaseUrl: string | undefined;
  /** PostgreSQL schema for AEGIS's tables; tests give each run its own. */
  databaseSchema: string | undefined;
  databasePoolMax: number;
  sqlitePath: string;
  keySource: KeySource;
  logLevel: string;
  /** Failed authentications from one address within `authFailureWindowSeconds` before it gets 429. */
  authFailureLimit: number;
  authFailureWindowSeconds: number;
  /** Folders that `env` credentials may point into. */
  envAllowedDirs: string[];
  /** Largest accepted request body, in bytes. */
  bodyLimitBytes: number;
}

type Env = Record<string, string | undefined>;

/**
 * Reads the configuration from environment variables, with defaults for a single-node SQLite vault
 * under `./data`. Every invalid setting stops start-up with a message naming the variable.
 */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const dataDir = path.resolve(cwd, env.AEGIS_DATA_DIR ?? 'data');
  return {
    host: env.AEGIS_HOST ?? '127.0.0.1',
    port: readInteger(env, 'AEGIS_PORT', 8012, 0, 65535),
    dataDir,
    databaseUrl: emptyToUndefined(env.DATABASE_URL),
    databaseSchema: readSchemaName(env),
    databasePoolMax: readInteger(env, 'AEGIS_DATABASE_POOL_MAX', 10, 1, 1000),
    sqlitePath: path.resolve(cwd, env.AEGIS_SQLITE_PATH ?? path.join(dataDir, 'aegis.db')),
    keySource: readKeySource(env, cwd, dataDir),
    logLevel: readLogLevel(env),
    authFailureLimit: readInteger(env, 'AEGIS_AUTH_FAILURE_LIMIT', 10, 1, 1_000_000),
    authFailureWindowSeconds: readInteger(env, 'AEGIS_AUTH_FAILURE_WINDOW_SECONDS', 60, 1, 86_400),
    envAllowedDirs: (env.AEGIS_ENV_ALLOWED_DIRS ?? cwd)
      .split(path.delimiter)
      .filter((dir) => dir !== '')
      .map((dir) => path.resolve(cwd, dir)),
    bodyLimitBytes: readInteger(env, 'AEGIS_BODY_LIMIT_BYTES', 512 * 1024, 1024, 16 * 1024 * 1024),
  };
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

function emptyToUndefined(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
