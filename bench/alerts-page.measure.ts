import crypto from 'node:crypto';
import { sql } from 'kysely';
import { percentile } from './common.js';
import { up } from '../src/db/migrations/0015_alert_list_indexes.js';
import { testDialects } from '../test/helpers/databases.js';
import { destroyTestVault, openTestVault, call, type TestVault } from '../test/helpers/test-vault.js';
import { setupCaller } from '../test/helpers/health-fixtures.js';

/**
 * Measures `GET /alerts` at 100,000 alerts (one delivery row each) on SQLite and PostgreSQL. It prints
 * p50 and p95 of 200 sequential requests through Fastify's injection, after 10 warm-up requests, for
 * the unfiltered first page and for each filter, first without the indexes of migration 0015 and then
 * with them. Last it prints how long the default retention takes to remove the older alerts.
 * Run `node --import tsx bench/alerts-page.measure.ts`. AEGIS_TEST_DIALECTS picks the databases and
 * AEGIS_MEASURE_ALERTS the alert count.
 */
const alertCount = Number(process.env.AEGIS_MEASURE_ALERTS ?? 100_000);
const requests = 200;
const warmUp = 10;
const credentialCount = 100;
const listIndexes = ['idx_alert_outbox_created', 'idx_alert_outbox_name_created', 'idx_alert_outbox_type_created', 'idx_alert_outbox_name_type_created'];
const types = ['credential_expiring', 'credential_expired', 'rotation_failed', 'health_check_failed', 'rotation_success'];

async function seed(t: TestVault): Promise<string[]> {
  const credentials: Array<{ id: string; name: string }> = [];
  for (let index = 0; index < credentialCount; index += 1) {
    const name = `measure/${index}`;
    const created = await t.vault.registry.create(setupCaller, { name, credential_type: 'apiKey', provider: 'api' });
    credentials.push({ id: created.id, name });
  }
  const now = t.clock.now().getTime();
  const batch = 500;
  for (let start = 0; start < alertCount; start += batch) {
    const alerts = [];
    const deliveries = [];
    for (let index = start; index < Math.min(alertCount, start + batch); index += 1) {
      const credential = credentials[index % credentialCount]!;
      const type = types[index % types.length]!;
      // Spread over 200 days. 1 in 1,000 is pending, 1 in 50 dead and the rest delivered.
      const createdAt = new Date(now - Math.floor((index / alertCount) * 200 * 86_400_000)).toISOString();
      let state = 'delivered';
      if (index % 50 === 0) state = 'dead';
      if (index % 1000 === 0) state = 'pending';
      const id = crypto.randomUUID();
      alerts.push({
        id,
        alert_type: type,
        condition_key: `${type}:${credential.id}:${index}`,
        credential_id: credential.id,
        credential_name: credential.name,
        message: `Alert ${index} about '${credential.name}'`,
        priority: 'high',
        channel: 'telegram',
        details: JSON.stringify({ index }),
        created_at: createdAt,
        state,
        attempts: 1,
        next_attempt_at: createdAt,
        delivered_at: state === 'delivered' ? createdAt : null,
      });
      deliveries.push({ alert_id: id, sink: 'hermes', state, attempts: 1, next_attempt_at: createdAt, delivered_at: state === 'delivered' ? createdAt : null });
    }
    await t.vault.db.kysely.insertInto('aegis_alert_outbox').values(alerts).execute();
    await t.vault.db.kysely.insertInto('aegis_alert_deliveries').values(deliveries).execute();
  }
  // PostgreSQL's autovacuum would have gathered statistics and set the visibility map of a table this
  // size; AEGIS never runs ANALYZE on SQLite, so SQLite plans without statistics.
  if (t.dialect === 'postgres') await sql`vacuum analyze aegis_alert_outbox, aegis_alert_deliveries`.execute(t.vault.db.kysely);
  return credentials.map((credential) => credential.name);
}

function format(figures: { p50: number; p95: number }): string {
  return `p50 ${figures.p50.toFixed(1)} ms, p95 ${figures.p95.toFixed(1)} ms`;
}

async function time(t: TestVault, url: string): Promise<{ p50: number; p95: number }> {
  const latencies: number[] = [];
  for (let index = 0; index < warmUp + requests; index += 1) {
    const started = performance.now();
    const response = await call(t.app, 'GET', url, { token: t.adminToken });
    const elapsed = performance.now() - started;
    if (response.status !== 200) throw new Error(`GET ${url} returned ${response.status}: ${response.body.slice(0, 300)}`);
    if (index >= warmUp) latencies.push(elapsed);
  }
  return { p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95) };
}

for (const dialect of await testDialects()) {
  const t = await openTestVault(dialect, { env: { AEGIS_LOG_LEVEL: 'warn', AEGIS_SCHEDULER: 'off' } });
  try {
    const started = performance.now();
    const names = await seed(t);
    process.stderr.write(`${dialect}: seeded ${alertCount} alerts in ${Math.round(performance.now() - started)} ms\n`);
    const urls = ['/alerts', `/alerts?credential_name=${encodeURIComponent(names[7]!)}`, '/alerts?alert_type=rotation_failed', '/alerts?state=pending', '/alerts?state=dead', '/alerts?offset=5000'];
    // The same data with and without the indexes of migration 0015, so both figures share one run's load.
    const kysely = t.vault.db.kysely;
    for (const name of listIndexes) await kysely.schema.dropIndex(name).execute();
    if (dialect === 'postgres') await sql`analyze aegis_alert_outbox`.execute(kysely);
    const without = new Map<string, string>();
    for (const url of urls) without.set(url, format(await time(t, url)));
    await up(kysely, dialect);
    if (dialect === 'postgres') await sql`analyze aegis_alert_outbox`.execute(kysely);
    for (const url of urls) process.stdout.write(`${dialect} ${url}: without ${without.get(url)}; with ${format(await time(t, url))}\n`);

    // The default 90-day retention then removes most alerts older than 90 days.
    const pruneStarted = performance.now();
    const removed = await t.vault.alerts.retention();
    process.stdout.write(`${dialect} retention: removed ${removed} alerts in ${Math.round(performance.now() - pruneStarted)} ms\n`);
  } finally {
    await destroyTestVault(t);
  }
}
