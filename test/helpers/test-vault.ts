import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../../src/config/config.js';
import { buildApp } from '../../src/http/app.js';
import { ManualClock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/lib/logger.js';
import { openVault, type Vault } from '../../src/vault.js';
import { dropSchema, testPostgresUrl, type DialectName } from './databases.js';

/** Collects every log line the vault writes, so tests can search them for secret values. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];

  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    callback();
  }

  text(): string {
    return this.lines.join('\n');
  }
}

export interface TestVault {
  dialect: DialectName;
  vault: Vault;
  app: FastifyInstance;
  clock: ManualClock;
  logs: LogCapture;
  adminToken: string;
  config: Config;
  /** The folder holding the SQLite file, key file and any files the test writes. */
  dir: string;
  /** Environment variables that point `aegis` commands at this vault. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export interface TestVaultOptions {
  /** Extra environment settings, e.g. AEGIS_AUTH_FAILURE_LIMIT. */
  env?: Record<string, string>;
  clock?: ManualClock;
  /** Reuse the folder and schema of an earlier vault (a restart). */
  reuse?: { dir: string; schema?: string };
}

/**
 * Opens a fresh vault on the dialect, with its own temporary folder (SQLite file, key file) or its own
 * PostgreSQL schema, a manual clock, captured logs and an admin token, and builds the HTTP app on it.
 */
export async function openTestVault(dialect: DialectName, options: TestVaultOptions = {}): Promise<TestVault> {
  const dir = options.reuse?.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-test-'));
  const schema = options.reuse?.schema ?? `aegis_t_${crypto.randomBytes(6).toString('hex')}`;
  const env: Record<string, string> = {
    AEGIS_DATA_DIR: dir,
    AEGIS_ENV_ALLOWED_DIRS: dir,
    AEGIS_LOG_LEVEL: 'info',
    ...(dialect === 'postgres' ? { DATABASE_URL: testPostgresUrl, AEGIS_DATABASE_SCHEMA: schema } : {}),
    ...options.env,
  };
  const config = loadConfig(env, dir);
  const clock = options.clock ?? new ManualClock('2026-06-01T12:00:00.000Z');
  const logs = new LogCapture();
  const vault = await openVault(config, { log: createLogger(config.logLevel, logs), clock });
  const adminToken = (await vault.tokens.createInitialAdmin()) ?? '';
  const app = await buildApp(vault);
  await app.ready();
  return {
    dialect,
    vault,
    app,
    clock,
    logs,
    adminToken,
    config,
    dir,
    env: { ...env },
    async close() {
      await app.close();
      await vault.close();
    },
  };
}

/** Removes what `openTestVault` created: the folder and, on PostgreSQL, the schema. */
export async function destroyTestVault(test: TestVault): Promise<void> {
  await test.close().catch(() => {});
  if (test.dialect === 'postgres' && test.env.AEGIS_DATABASE_SCHEMA) await dropSchema(test.env.AEGIS_DATABASE_SCHEMA);
  fs.rmSync(test.dir, { recursive: true, force: true });
}

/** Sends a request with a bearer token through Fastify's injection (no socket). */
export async function call(
  app: FastifyInstance,
  method: 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'DELETE' | 'PUT',
  url: string,
  options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string>; remoteAddress?: string } = {},
) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined || options.rawBody !== undefined) headers['content-type'] ??= 'application/json';
  const response = await app.inject({
    method,
    url,
    headers,
    ...(options.remoteAddress !== undefined ? { remoteAddress: options.remoteAddress } : {}),
    ...(options.rawBody !== undefined ? { payload: options.rawBody } : options.body !== undefined ? { payload: JSON.stringify(options.body) } : {}),
  });
  let json: any;
  try {
    json = response.json();
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, headers: response.headers, body: response.body, json };
}

/** Creates a token with the given scopes through the service and returns its plaintext. */
export async function tokenWith(test: TestVault, actor: string, scopes: string[], limits: { namePatterns?: string[]; tags?: string[] } = {}): Promise<string> {
  const { token } = await test.vault.tokens.create(
    { actor: 'test-setup', tokenId: null, scopes: ['admin'], namePatterns: [], tags: [], ipAddress: null },
    { actor, scopes, namePatterns: limits.namePatterns ?? [], tags: limits.tags ?? [] },
  );
  return token;
}

/** Appends `count` read entries for credential `alpha`, 5,000 per group commit, so a vault has a large file or log to work on. */
export async function seedReadEntries(test: TestVault, count: number): Promise<void> {
  for (let start = 0; start < count; start += 5_000) {
    const entries = Array.from({ length: Math.min(5_000, count - start) }, (_, index) => ({
      credentialName: 'alpha',
      action: 'read',
      actor: 'ARIA',
      success: true,
      details: { index: start + index },
    }));
    await test.vault.audit.record(...entries);
  }
}
