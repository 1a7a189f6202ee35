import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../src/config/config.js';
import { buildApp } from '../src/http/app.js';
import type { Clock } from '../src/lib/clock.js';
import { createLogger } from '../src/lib/logger.js';
import { readVariable, writeVariable } from '../src/providers/env/env-file.js';
import { localCaller } from '../src/tokens/caller.js';
import { openVault } from '../src/vault.js';
import { emit, log, shortMode } from './common.js';

/**
 * B6: one `POST /rotation/run-scheduled` that finds 1,000 due env credentials (100 .env files of 10
 * variables, generated values, the default rotation concurrency) on SQLite, through Fastify injection.
 * Afterwards each credential must have exactly two versions and one rotation in its history. Its new
 * version must be current and its value must be in the .env file. A second run must find nothing due.
 * The baseline is writing 1,000 new values into the same files with the env provider's own writer, which
 * is the provider's share of the work.
 */
const credentialCount = shortMode ? 200 : 1_000;
const perFile = 10;
const boundMs = (10_000 * credentialCount) / 1_000;

/** The wall clock moved by `offsetMs`, so that the benchmark can make rotations due without waiting. */
class OffsetClock implements Clock {
  offsetMs = 0;

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-bench-b6-'));
const envDir = path.join(dir, 'env');
fs.mkdirSync(envDir);
const clock = new OffsetClock();
const quiet = new Writable({ write: (_chunk, _encoding, callback) => callback() });
const config = loadConfig({ AEGIS_DATA_DIR: dir, AEGIS_LOG_LEVEL: 'info', AEGIS_ENV_ALLOWED_DIRS: envDir }, dir);
const vault = await openVault(config, { log: createLogger(config.logLevel, quiet), clock });
try {
  const adminToken = (await vault.tokens.createInitialAdmin())!;
  const caller = localCaller('bench-setup');
  const credentials: Array<{ name: string; file: string; variable: string; initial: string }> = [];
  for (let index = 0; index < credentialCount; index += 1) {
    const file = path.join(envDir, `service-${String(Math.floor(index / perFile)).padStart(3, '0')}.env`);
    const variable = `API_KEY_${index % perFile}`;
    const initial = crypto.randomBytes(24).toString('base64url');
    fs.appendFileSync(file, `${variable}=${initial}\n`);
    credentials.push({ name: `bench/env-${String(index).padStart(4, '0')}`, file, variable, initial });
  }
  const setupStarted = performance.now();
  for (const credential of credentials) {
    await vault.registry.create(caller, {
      name: credential.name,
      credential_type: 'apiKey',
      provider: 'env',
      provider_config: { file: credential.file, variable: credential.variable },
      value: credential.initial,
      rotation_enabled: true,
      rotation_strategy: 'scheduled',
      rotation_interval_hours: 24,
    });
  }
  log(`created ${credentialCount} env credentials in ${Math.round(performance.now() - setupStarted)} ms`);

  const baselineStarted = performance.now();
  for (const credential of credentials) writeVariable(credential.file, credential.variable, crypto.randomBytes(24).toString('base64url'));
  const baselineMs = performance.now() - baselineStarted;
  // The provider test of each rotation compares the file with the current version, so the files get their values back.
  for (const credential of credentials) writeVariable(credential.file, credential.variable, credential.initial);

  clock.offsetMs = 25 * 3_600_000;
  const app = await buildApp(vault);
  await app.ready();
  const headers = { authorization: `Bearer ${adminToken}` };
  const started = performance.now();
  const response = await app.inject({ method: 'POST', url: '/rotation/run-scheduled', headers });
  const wallMs = performance.now() - started;
  const run = response.json() as { rotated: number; failed: number; skipped: number; details: Array<{ credential: string; error?: string }> };
  if (response.statusCode !== 200 || run.rotated !== credentialCount || run.failed !== 0 || run.skipped !== 0) {
    const firstError = run.details?.find((detail) => detail.error);
    throw new Error(`run-scheduled returned ${response.statusCode}: rotated ${run.rotated}, failed ${run.failed}, skipped ${run.skipped} of ${credentialCount}; first error: ${firstError?.error}`);
  }
  const again = await app.inject({ method: 'POST', url: '/rotation/run-scheduled', headers });
  if (again.json().rotated !== 0) throw new Error(`a second run-scheduled rotated ${again.json().rotated} credentials; none was due`);
  await app.close();

  const db = vault.db.kysely;
  const versions = await db.selectFrom('aegis_credential_versions').select(['credential_id', 'version', 'is_current']).execute();
  const history = await db.selectFrom('aegis_rotation_history').select(['credential_id', 'success', 'new_version']).execute();
  for (const credential of credentials) {
    const { credential: record, version, value } = await vault.registry.reveal(caller, credential.name);
    const own = versions.filter((row) => row.credential_id === record.id);
    const current = own.filter((row) => Boolean(row.is_current));
    const rotations = history.filter((row) => row.credential_id === record.id);
    if (own.length !== 2 || current.length !== 1 || current[0]!.version !== 2 || version !== 2) {
      throw new Error(`${credential.name} has ${own.length} versions and current version ${current.map((row) => row.version).join(', ')}; expected 2 and 2`);
    }
    if (rotations.length !== 1 || !rotations[0]!.success || rotations[0]!.new_version !== 2) {
      throw new Error(`${credential.name} has ${rotations.length} rotation history rows; expected one successful rotation to version 2`);
    }
    if (value === credential.initial || readVariable(credential.file, credential.variable) !== value) {
      throw new Error(`${credential.variable} in ${credential.file} does not contain the new current value of ${credential.name}`);
    }
  }
  log(`run-scheduled: ${Math.round(wallMs)} ms for ${credentialCount} rotations (bound ${boundMs} ms); baseline writes: ${Math.round(baselineMs)} ms`);

  emit({
    id: 'B6',
    workload: `POST /rotation/run-scheduled, ${credentialCount.toLocaleString('en')} due env credentials in ${credentialCount / perFile} .env files, generated values, rotation concurrency ${config.rotationConcurrency}, SQLite`,
    bar: `<= ${boundMs / 1000} s, each rotated exactly once`,
    figure: `${(wallMs / 1000).toFixed(2)} s, ${run.rotated} rotated once each (bare .env writes: ${(baselineMs / 1000).toFixed(2)} s)`,
    wall_ms: Math.round(wallMs),
    baseline_ms: Math.round(baselineMs),
    ratio_to_baseline: Number((wallMs / baselineMs).toFixed(2)),
    holds: wallMs <= boundMs,
    baseline_note: `B6 compares with writing ${credentialCount.toLocaleString('en')} new values into the same .env files with the env provider's writer (read, replace, fsync, rename), without AEGIS; after the run, versions, rotation history and the .env files are checked for exactly one rotation of each credential.`,
  });
} finally {
  await vault.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
