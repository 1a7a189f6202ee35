import os from 'node:os';
import { sql } from 'kysely';
import { percentile } from './common.js';
import { createLimitedAuditor, periodEnd, periodStart, seedAuditEntries } from './audit-seed.js';
import { ManualClock } from '../src/lib/clock.js';
import { testDialects } from '../test/helpers/databases.js';
import { setupCaller } from '../test/helpers/health-fixtures.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../test/helpers/test-vault.js';

/**
 * Measures the GET /audit/log requests that B5.2 and B5.4 leave out, the ones the dashboard's audit page
 * sends, over B5's 1,000,000 entries on SQLite and PostgreSQL (a schema of its own, dropped afterwards).
 * For each shape and for B5's two tokens, one without limits and B5.4's limited one, it prints p50 and
 * p95 of sequential requests through Fastify's injection, after warm-up requests.
 * Run `node --import tsx bench/audit-shapes.measure.ts`. AEGIS_TEST_DIALECTS picks the databases,
 * AEGIS_MEASURE_ENTRIES the entry count and AEGIS_MEASURE_REQUESTS the requests per shape (default 20).
 */
const entryCount = Number(process.env.AEGIS_MEASURE_ENTRIES ?? 1_000_000);
const requests = Number(process.env.AEGIS_MEASURE_REQUESTS ?? 20);
const warmUp = 3;
const hourMs = 3_600_000;
const dayMs = 24 * hourMs;

const iso = (ms: number) => new Date(ms).toISOString();

/** The request shapes. The request's index `i` moves each date, so requests do not read the same pages each time. */
const shapes: Record<string, (i: number) => string> = {
  'no filter': () => '',
  'action=read (40 %)': () => 'action=read',
  'action=rotated (10 %)': () => 'action=rotated',
  'success=true': () => 'success=true',
  'success=false': () => 'success=false',
  'start_date 1 hour back': (i) => `start_date=${iso(periodEnd.getTime() - hourMs - i * 60_000)}`,
  'start_date 25 days back': (i) => `start_date=${iso(periodEnd.getTime() - 25 * dayMs - i * hourMs)}`,
  'action=read, one day': (i) => `action=read&start_date=${iso(periodStart.getTime() + i * hourMs)}&end_date=${iso(periodStart.getTime() + i * hourMs + dayMs)}`,
  'offset=1000': () => 'offset=1000',
};

async function time(t: TestVault, token: string, shape: (i: number) => string): Promise<{ p50: number; p95: number }> {
  const latencies: number[] = [];
  for (let index = 0; index < warmUp + requests; index += 1) {
    const url = `/audit/log?${shape(index)}&limit=100`;
    const started = performance.now();
    const response = await call(t.app, 'GET', url, { token });
    const elapsed = performance.now() - started;
    if (response.status !== 200) throw new Error(`GET ${url} returned ${response.status}: ${response.body.slice(0, 300)}`);
    if (index >= warmUp) latencies.push(elapsed);
  }
  return { p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95) };
}

const format = (figures: { p50: number; p95: number }) => `p50 ${figures.p50.toFixed(1)} ms, p95 ${figures.p95.toFixed(1)} ms`;

process.stdout.write(`# ${os.cpus().length} x ${os.cpus()[0]?.model}, load average ${os.loadavg().map((load) => load.toFixed(1)).join(' ')}\n`);
for (const dialect of await testDialects()) {
  const t = await openTestVault(dialect, { clock: new ManualClock(periodEnd), env: { AEGIS_LOG_LEVEL: 'warn', AEGIS_SCHEDULER: 'off' } });
  try {
    const started = performance.now();
    await seedAuditEntries(t.vault.db.kysely, entryCount);
    const limitedToken = await createLimitedAuditor(t.vault, setupCaller);
    // PostgreSQL's autovacuum would have gathered statistics and set the visibility map of a table this
    // size; AEGIS never runs ANALYZE on SQLite, so SQLite plans without statistics.
    if (dialect === 'postgres') await sql`vacuum analyze aegis_audit_log, aegis_credentials`.execute(t.vault.db.kysely);
    process.stderr.write(`${dialect}: seeded ${entryCount} entries in ${Math.round(performance.now() - started)} ms\n`);
    t.clock.set(new Date(periodEnd.getTime() + hourMs));

    for (const [name, shape] of Object.entries(shapes)) {
      const unlimited = format(await time(t, t.adminToken, shape));
      const limited = format(await time(t, limitedToken, shape));
      process.stdout.write(`${dialect} | ${name} | ${unlimited} | ${limited}\n`);
    }
  } finally {
    await destroyTestVault(t);
  }
}
process.stdout.write(`# load average ${os.loadavg().map((load) => load.toFixed(1)).join(' ')}\n`);
