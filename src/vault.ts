import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { AlertService } from './alerts/alert.service.js';
import { AuditLog } from './audit/audit.service.js';
import type { Config } from './config/config.js';
import { registerFirstKey, verifyKeyring } from './crypto/keyring-loader.js';
import { defaultDataKeyCache, type Keyring } from './crypto/keyring.js';
import { createSchema, openDatabase, type Db } from './db/database.js';
import { isUniqueViolation } from './db/database-errors.js';
import { migrateToLatest } from './db/migrate.js';
import { HealthMonitor } from './health/health-monitor.js';
import { VaultMetrics } from './metrics/vault-metrics.js';
import { systemClock, type Clock } from './lib/clock.js';
import { createAdapters } from './providers/registry.js';
import type { N8nSettings } from './providers/n8n/n8n-client.js';
import { applyAbandonAfterMs } from './providers/n8n/apply-intents.js';
import { N8nService } from './providers/n8n/n8n.service.js';
import type { AdapterRegistry } from './providers/adapter.js';
import { RegistryService } from './registry/registry.service.js';
import type { Scheduler } from './scheduler/scheduler.js';
import { createVaultScheduler } from './scheduler/vault-scheduler.js';
import { processOwner, Rotation } from './rotation/rotation.service.js';
import { AuthFailureLimiter } from './tokens/auth-failures.js';
import { recordBlockedRequests } from './tokens/rate-limit-audit.js';
import { TokenService } from './tokens/tokens.service.js';

/** One open vault: the database, the keyring and the services on top of them. The server and the CLI both use it. */
export interface Vault {
  config: Config;
  db: Db;
  clock: Clock;
  log: Logger;
  keyring: Keyring;
  audit: AuditLog;
  tokens: TokenService;
  registry: RegistryService;
  adapters: AdapterRegistry;
  rotation: Rotation;
  health: HealthMonitor;
  alerts: AlertService;
  authFailures: AuthFailureLimiter;
  n8n: N8nService;
  scheduler: Scheduler;
  /** The Prometheus registry of this vault, which GET /metrics renders. */
  metrics: VaultMetrics;
  /** The migrations that opening this vault applied, in order, or none when the schema was up to date. */
  appliedMigrations: string[];
  close(): Promise<void>;
}

/**
 * Opens the vault in the order that keeps a misconfigured start from writing anything: open the
 * database, check the master keys against it, and only then migrate and register a first key.
 */
export async function openVault(config: Config, options: { log: Logger; clock?: Clock }): Promise<Vault> {
  const clock = options.clock ?? systemClock;
  // Opening a SQLite file creates it and its folder, so a start that fails on its keys removes what it created.
  const newSqliteFile = config.databaseUrl === undefined && config.sqlitePath !== ':memory:' && !fs.existsSync(config.sqlitePath);
  const newSqliteFolder = newSqliteFile && !fs.existsSync(path.dirname(config.sqlitePath));
  const db = await openDatabase(config, {
    log: options.log,
    createSchema: false,
    pool: {
      connectionTimeoutMs: config.databaseTimeouts.connectMs,
      idleTimeoutMs: config.databaseTimeouts.idleMs,
      statementTimeoutMs: config.databaseTimeouts.statementMs,
      idleInTransactionTimeoutMs: config.databaseTimeouts.idleInTransactionMs,
    },
  });
  try {
    const cacheOptions = { lifetimeMs: config.dataKeyCacheSeconds * 1000, maxEntries: defaultDataKeyCache.maxEntries };
    let { keyring, registered } = await verifyKeyring(db, config.keySource, cacheOptions);
    await createSchema(db, config.databaseSchema);
    const applied = await migrateToLatest(db);
    if (applied.length > 0) options.log.info({ migrations: applied, database: db.dialect }, 'applied database migrations');
    if (!registered) {
      try {
        const { keyId, key } = await registerFirstKey(db, config.keySource, clock, options.log);
        keyring.add(keyId, key);
        options.log.info({ keyId, source: config.keySource.kind }, 'registered the first master key');
      } catch (error) {
        // Several processes started at once on a new vault: another one registered the first key in
        // between, so this one checks its key against that one, as on any later start.
        if (!isUniqueViolation(error)) throw error;
        ({ keyring, registered } = await verifyKeyring(db, config.keySource, cacheOptions));
        if (!registered) throw error;
        options.log.info({ source: config.keySource.kind }, 'another process registered the first master key at the same time; using it');
      }
    }
    const audit = new AuditLog({ db, clock, log: options.log });
    const metrics = new VaultMetrics();
    const adapters = createAdapters({
      envAllowedDirs: config.envAllowedDirs,
      envOwnFiles: ownFiles(config),
      envReloadCommands: config.envReloadCommands,
      postgresAdminConnections: config.postgresAdminConnections,
      postgresAllowedRoles: config.postgresAllowedRoles,
      providerTimeoutMs: config.providerTimeoutMs,
      n8n: n8nSettings(config),
      supabaseAccessToken: config.supabaseAccessToken,
      supabaseApiUrl: config.supabaseApiUrl,
    });
    const owner = processOwner();
    const registry = new RegistryService({ db, log: options.log, clock, keyring, audit, adapters });
    const n8n = new N8nService({ db, clock, log: options.log, audit, registry, settings: n8nSettings(config), owner, applyAbandonAfterMs: applyAbandonAfterMs(config) });
    const rotation = new Rotation(
      { db, clock, keyring, audit, log: options.log, adapters, owner, leaseTtlMs: config.rotationLeaseSeconds * 1000, unreleasedLeases: new Map(), attempts: config.rotationAttempts, metrics },
      { concurrency: config.rotationConcurrency, versionRetentionDays: config.versionRetentionDays, historyRetentionDays: config.historyRetentionDays },
      n8n,
    );
    const services = {
      config,
      db,
      clock,
      log: options.log,
      keyring,
      audit,
      tokens: new TokenService({ db, clock, audit }),
      registry,
      adapters,
      rotation,
      health: new HealthMonitor({ db, clock, log: options.log, keyring, adapters, audit, config, metrics }),
      alerts: new AlertService({ db, clock, log: options.log, config }),
      authFailures: new AuthFailureLimiter({
        limit: config.authFailureLimit,
        windowSeconds: config.authFailureWindowSeconds,
        clock,
        onBlockEnded: recordBlockedRequests(audit, options.log),
      }),
      n8n,
      metrics,
      appliedMigrations: applied,
      close: () => db.close(),
    };
    const scheduler = createVaultScheduler(services);
    // The scheduler releases its lease, after its running jobs end, before the database closes.
    return {
      ...services,
      scheduler,
      close: async () => {
        await scheduler.stop();
        // Before the audit log closes, so a graceful stop writes the 429s counted for blocked addresses.
        services.authFailures.flushAllWindows();
        await audit.close();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    if (newSqliteFile) for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(config.sqlitePath + suffix, { force: true });
    // rmdir removes the folder only while it is empty, so files another process put there stay.
    if (newSqliteFolder) {
      try {
        fs.rmdirSync(path.dirname(config.sqlitePath));
      } catch {
        // Not empty or already gone: the start's own error is the one to report.
      }
    }
    throw error;
  }
}

/** n8n's API settings, or undefined unless both N8N_URL and N8N_API_KEY are set. */
function n8nSettings(config: Config): N8nSettings | undefined {
  if (!config.n8nUrl || !config.n8nApiKey) return undefined;
  return { url: config.n8nUrl, apiKey: config.n8nApiKey, timeoutMs: config.providerTimeoutMs };
}

/** AEGIS's own files: the SQLite file with its journals, the master key file, the TLS files and the configuration file. */
function ownFiles(config: Config): string[] {
  const files: string[] = config.configFile === undefined ? [] : [config.configFile];
  if (config.databaseUrl === undefined) files.push(...['', '-wal', '-shm', '-journal'].map((suffix) => config.sqlitePath + suffix));
  if (config.keySource.kind === 'file') files.push(config.keySource.path);
  if (config.tls !== undefined) files.push(config.tls.certFile, config.tls.keyFile);
  return files;
}
