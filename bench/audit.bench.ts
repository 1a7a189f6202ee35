import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { Transaction } from 'kysely';
import { loadConfig } from '../src/config/config.js';
import type { Database } from '../src/db/schema.js';
import { buildApp } from '../src/http/app.js';
import { ManualClock } from '../src/lib/clock.js';
import { localCaller } from '../src/tokens/caller.js';
import { openVault } from '../src/vault.js';
import { actors, createLimitedAuditor, credentials, days, periodEnd, periodStart, seedAuditEntries } from './audit-seed.js';

/**
 * B5 on SQLite: appends per second through the audit log (hash chain, group commit), the p95
 * of filtered GET /audit/log requests over 1,000,000 entries from a token without limits (B5.2) and
 * from one limited to a name pattern and a tag (B5.4), and GET /audit/report over 30 days of
 * 1,000,000 entries. Seeding writes the million entries in batched inserts with a valid chain.
 * BENCH_AUDIT_ENTRIES sets another entry count; short mode (AEGIS_BENCH_SHORT=1) uses 100,000 and 1 s of appends.
 */
const short = process.env.AEGIS_BENCH_SHORT === '1';
const entryCount = Number(process.env.BENCH_AUDIT_ENTRIES ?? (short ? 100_000 : 1_000_000));
const durationMs = Number(process.env.BENCH_DURATION_MS ?? (short ? 1_000 : 3_000));
const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version };

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-bench-audit-'));
const clock = new ManualClock(periodEnd);
const config = loadConfig({ AEGIS_DATA_DIR: dir, AEGIS_LOG_LEVEL: 'silent' }, dir);
const vault = await openVault(config, { log: pino({ level: 'silent' }), clock });

function emit(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ...result, machine })}\n`);
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
}

/**
 * Appends through AuditLog.record for `durationMs` from `callers` loops that each await their entry before
 * the next, as that many requests in flight would. AuditLog commits the entries that wait together in one
 * transaction, so one caller measures a commit per entry.
 */
async function measureAppends(callers: number): Promise<number> {
  let appended = 0;
  const started = performance.now();
  const appendUntilDeadline = async () => {
    while (performance.now() - started < durationMs) {
      await vault.audit.record({ credentialName: 'bench/append', action: 'read', actor: 'bench', success: true, ipAddress: '10.0.0.1', details: { i: appended } });
      appended += 1;
    }
  };
  await Promise.all(Array.from({ length: callers }, appendUntilDeadline));
  return appended / ((performance.now() - started) / 1000);
}

/** Baseline: the same single-row transactions into a table of the same shape, without reading the head or hashing. */
async function measurePlainInserts(): Promise<number> {
  await vault.db.kysely.schema.createTable('bench_plain').as(vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('seq', '<', 0)).execute();
  let inserted = 0;
  const started = performance.now();
  while (performance.now() - started < durationMs) {
    for (let i = 0; i < 100; i += 1) {
      const seq = inserted + i + 1;
      await vault.db.kysely.transaction().execute((trx) =>
        (trx as Transaction<any>)
          .insertInto('bench_plain')
          .values({ id: crypto.randomUUID(), seq, timestamp: new Date().toISOString(), credential_id: null, credential_name: 'bench/append', action: 'read', actor: 'bench', target: null, details: JSON.stringify({ i }), ip_address: '10.0.0.1', success: 1, error_message: null, prev_hash: String(seq), entry_hash: String(seq) })
          .execute(),
      );
    }
    inserted += 100;
  }
  return inserted / ((performance.now() - started) / 1000);
}

const appendCallers = 64;
const appendsPerSecond = await measureAppends(appendCallers);
const sequentialPerSecond = await measureAppends(1);
const plainPerSecond = await measurePlainInserts();
process.stderr.write(`appends: ${Math.round(appendsPerSecond)}/s from ${appendCallers} callers, ${Math.round(sequentialPerSecond)}/s from one (plain inserts ${Math.round(plainPerSecond)}/s)\n`);
emit({
  id: 'B5.1',
  workload: `audit append through the hash chain, AuditLog.record from ${appendCallers} concurrent callers (group commit), SQLite`,
  bar: '>= 20,000 appends/s',
  figure: `${Math.round(appendsPerSecond)} appends/s (one caller: ${Math.round(sequentialPerSecond)}/s)`,
  ratio_to_baseline: Number((appendsPerSecond / plainPerSecond).toFixed(3)),
  holds: appendsPerSecond >= 20_000,
  baseline_note: 'B5.1 compares with single-row insert transactions into a copy of the audit table, without reading the head row or hashing.',
});

const seedStarted = performance.now();
await seedAuditEntries(vault.db.kysely, entryCount);
process.stderr.write(`seeded ${entryCount} entries in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s\n`);

clock.set(new Date(periodEnd.getTime() + 3_600_000));
const token = (await vault.tokens.createInitialAdmin()) ?? '';
const app = await buildApp(vault);
await app.ready();
const headers = { authorization: `Bearer ${token}` };

const filters = [
  (i: number) => `actor=${actors[i % actors.length]}`,
  (i: number) => `credential_name=${encodeURIComponent(credentials[i % credentials.length]!)}`,
  (i: number) => `action=revealed&actor=${actors[i % actors.length]}`,
  (i: number) => `success=false&start_date=${new Date(periodStart.getTime() + i * 3_600_000).toISOString()}`,
  (i: number) => `start_date=${new Date(periodStart.getTime() + i * 86_400_000 / 10).toISOString()}&end_date=${new Date(periodStart.getTime() + i * 86_400_000 / 10 + 3_600_000).toISOString()}`,
];

/** Sends the 200 filtered GET /audit/log requests with this token and returns their latencies in ms. */
async function measureLog(token: string): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < 200; i += 1) {
    const url = `/audit/log?${filters[i % filters.length]!(i)}&limit=100`;
    const started = performance.now();
    const response = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
    latencies.push(performance.now() - started);
    if (response.statusCode !== 200) throw new Error(`GET ${url} returned ${response.statusCode}: ${response.body}`);
  }
  return latencies;
}

const latencies = await measureLog(token);
const p95 = percentile(latencies, 0.95);
const median = percentile(latencies, 0.5);
process.stderr.write(`GET /audit/log filtered: p50 ${median.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms\n`);
emit({
  id: 'B5.2',
  workload: `GET /audit/log, 200 filtered requests (actor, credential, action, failures, time range), ${entryCount.toLocaleString('en')} entries, SQLite`,
  bar: 'p95 <= 20 ms',
  figure: `p95 ${p95.toFixed(1)} ms (p50 ${median.toFixed(1)} ms)`,
  ratio_to_baseline: '-',
  holds: p95 <= 20,
  baseline_note: 'B5.2 has no baseline; the figure is the latency of Fastify injection, without a socket.',
});

const reportTimes: number[] = [];
let anomalies = 0;
for (let run = 0; run < 3; run += 1) {
  const url = `/audit/report?start_date=${periodStart.toISOString()}&end_date=${periodEnd.toISOString()}`;
  const started = performance.now();
  const response = await app.inject({ method: 'GET', url, headers });
  reportTimes.push(performance.now() - started);
  if (response.statusCode !== 200) throw new Error(`GET ${url} gave ${response.statusCode}: ${response.body}`);
  anomalies = response.json().anomalies.length;
}
const reportMs = Math.max(...reportTimes);
process.stderr.write(`GET /audit/report 30 days: ${reportTimes.map((ms) => `${Math.round(ms)} ms`).join(', ')}; ${anomalies} anomalies\n`);
emit({
  id: 'B5.3',
  workload: `GET /audit/report, 30 days of ${entryCount.toLocaleString('en')} entries with anomaly rules, SQLite`,
  bar: '<= 2 s',
  figure: `${(reportMs / 1000).toFixed(2)} s (slowest of 3)`,
  ratio_to_baseline: '-',
  holds: reportMs <= 2_000,
  baseline_note: 'B5.3 has no baseline; the slowest of three runs is reported.',
});

// B5.4: a token limited to a name pattern and a tag (see createLimitedAuditor).
const limitedToken = await createLimitedAuditor(vault, localCaller('bench-setup'));
const limitedLatencies = await measureLog(limitedToken);
const limitedP95 = percentile(limitedLatencies, 0.95);
const limitedMedian = percentile(limitedLatencies, 0.5);
const unlimitedP95 = percentile(await measureLog(token), 0.95);
process.stderr.write(`GET /audit/log filtered, limited token: p50 ${limitedMedian.toFixed(1)} ms, p95 ${limitedP95.toFixed(1)} ms (without limits, right after: p95 ${unlimitedP95.toFixed(1)} ms)\n`);
emit({
  id: 'B5.4',
  workload: `GET /audit/log, the 200 requests of B5.2 from a token limited to a name pattern and a tag (480 of 2,000 credentials), ${entryCount.toLocaleString('en')} entries, SQLite`,
  bar: 'p95 <= 20 ms',
  figure: `p95 ${limitedP95.toFixed(1)} ms (p50 ${limitedMedian.toFixed(1)} ms)`,
  ratio_to_baseline: Number((limitedP95 / unlimitedP95).toFixed(3)),
  holds: limitedP95 <= 20,
  baseline_note: 'B5.4 compares with the p95 of the same requests from the token without limits, measured again right after.',
});

await app.close();
await vault.close();
fs.rmSync(dir, { recursive: true, force: true });
