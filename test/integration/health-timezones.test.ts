import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { sql } from 'kysely';
import { ManualClock } from '../../src/lib/clock.js';
import { testDialects, testPostgresUrl } from '../helpers/databases.js';
import { alertsOf, setupCaller, storedStatus } from '../helpers/health-fixtures.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

// UTC+14 for this process, and a half-hour zone with daylight saving for PostgreSQL sessions, so an
// instant read or compared in local time anywhere would land on the wrong side of a boundary.
process.env.TZ = 'Pacific/Kiritimati';
const sessionZone = 'America/St_Johns';
const hour = 3_600_000;

/** Builds a PostgreSQL URL whose sessions use the schema and `sessionZone`. The URL's options replace the pool's, so it names the schema too. */
function zonedUrl(schema: string): string {
  const url = new URL(testPostgresUrl);
  url.searchParams.set('options', `-c search_path=${schema} -c TimeZone=${sessionZone}`);
  return url.toString();
}

for (const dialect of await testDialects()) {
  describe(`health time zones on ${dialect}`, () => {
    let t: TestVault;
    after(async () => destroyTestVault(t));

    it('process and session are zoned', async () => {
      const schema = `aegis_t_${crypto.randomBytes(6).toString('hex')}`;
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-test-'));
      t = await openTestVault(dialect, {
        clock: new ManualClock('2026-03-01T12:00:00.000Z'),
        reuse: { dir, schema },
        env: dialect === 'postgres' ? { DATABASE_URL: zonedUrl(schema), AEGIS_DATABASE_SCHEMA: schema } : {},
      });
      assert.equal(new Date('2026-03-01T12:00:00.000Z').getTimezoneOffset(), -14 * 60);
      if (dialect === 'postgres') {
        const zone = await sql<{ TimeZone: string }>`show timezone`.execute(t.vault.db.kysely);
        assert.equal(zone.rows[0]!.TimeZone, sessionZone);
        const current = await sql<{ schema: string }>`select current_schema() as schema`.execute(t.vault.db.kysely);
        assert.equal(current.rows[0]!.schema, schema);
      }
    });

    it('expiry boundaries hold', async () => {
      const name = 'zoned/key';
      // Within the window St. John's moves to daylight saving time (2026-03-08).
      const expiresAt = new Date('2026-03-10T03:30:00.000Z');
      await t.vault.registry.create(setupCaller, { name, credential_type: 'apiKey', provider: 'api', value: 'zoned-value', expires_at: expiresAt.toISOString() });

      t.clock.set(new Date(expiresAt.getTime() - 168 * hour - 1));
      assert.deepEqual(await t.vault.health.evaluateExpiry(), { expiring: 0, expired: 0, alerts: 0 });
      assert.equal(await storedStatus(t, name), 'active');
      const outside = await call(t.app, 'GET', '/health/expiring?threshold_hours=168', { token: t.adminToken });
      assert.equal(outside.json.count, 0, outside.body);

      t.clock.set(new Date(expiresAt.getTime() - 168 * hour));
      assert.deepEqual(await t.vault.health.evaluateExpiry(), { expiring: 1, expired: 0, alerts: 1 });
      assert.equal(await storedStatus(t, name), 'expiring');
      assert.equal((await alertsOf(t, 'credential_expiring', name))[0]!.message, `🔐 Credential '${name}' expires in 168 hours`);
      const inside = await call(t.app, 'GET', '/health/expiring?threshold_hours=168', { token: t.adminToken });
      assert.equal(inside.json.count, 1, inside.body);
      assert.equal(inside.json.credentials[0].expires_at, expiresAt.toISOString());
      assert.equal(inside.json.credentials[0].expires_in_hours, 168);

      t.clock.set(expiresAt);
      assert.deepEqual(await t.vault.health.evaluateExpiry(), { expiring: 1, expired: 0, alerts: 0 });
      t.clock.set(new Date(expiresAt.getTime() + 1));
      assert.deepEqual(await t.vault.health.evaluateExpiry(), { expiring: 0, expired: 1, alerts: 1 });
      assert.equal(await storedStatus(t, name), 'expired');

      const dashboard = await call(t.app, 'GET', '/health/dashboard', { token: t.adminToken });
      const entry = dashboard.json.credentials.find((credential: { name: string }) => credential.name === name);
      assert.equal(entry.status, 'expired');
      assert.equal(entry.colour, 'red');
      assert.equal(entry.expires_at, expiresAt.toISOString());
      assert.equal(dashboard.json.summary.expired, 1);
    });

    it('stored instants stay UTC', async () => {
      const row = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').select(['created_at', 'condition_key']).where('alert_type', '=', 'credential_expired').executeTakeFirstOrThrow();
      assert.equal(new Date(row.created_at).toISOString(), '2026-03-10T03:30:00.001Z');
      assert.ok(row.condition_key.endsWith(':2026-03-10T03:30:00.000Z'), row.condition_key);
    });
  });
}
