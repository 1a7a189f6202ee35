// Node reads TZ at each date conversion, so setting it here makes any local-time slip in the report show:
// the period below crosses the start of summer time in Berlin (2026-03-29 01:00 UTC).
process.env.TZ = 'Europe/Berlin';

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AuditEntryInput } from '../../src/audit/audit.types.js';
import { buildAuditReport } from '../../src/audit/report.js';
import { ManualClock } from '../../src/lib/clock.js';
import { testDialects } from '../helpers/databases.js';
import { runCli } from '../helpers/cli.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

const periodStart = '2026-03-28T00:00:00.000Z';
const periodEnd = '2026-03-30T00:00:00.000Z';
const secrets = ['seeded-secret-old-7f3a', 'seeded-secret-exp-91bc'];


/** Records one entry with the clock set to `when`. */
async function recordAt(t: TestVault, when: string, input: AuditEntryInput): Promise<void> {
  t.clock.set(when);
  await t.vault.audit.record(input);
}

function read(actor: string, name: string, extra: Partial<AuditEntryInput> = {}): AuditEntryInput {
  return { credentialName: name, action: 'read', actor, success: true, ...extra };
}

/**
 * Seeds a known history: two credentials made through the API long before (one retired, one expired),
 * 24 baseline reads by ARIA at 09:00 and 10:00 UTC, and the period's entries listed in the report test.
 */
async function seedHistory(t: TestVault): Promise<void> {
  t.clock.set('2026-02-01T08:00:00.000Z');
  for (const [name, value, expires] of [
    ['old-key', secrets[0], null],
    ['exp-key', secrets[1], '2026-03-01T00:00:00.000Z'],
  ] as const) {
    const created = await call(t.app, 'POST', '/credentials', {
      token: t.adminToken,
      body: { name, credential_type: 'openAiApi', provider: 'n8n', value, expires_at: expires },
    });
    assert.equal(created.status, 201, created.body);
  }
  t.clock.set('2026-02-02T08:00:00.000Z');
  assert.equal((await call(t.app, 'DELETE', '/credentials/old-key', { token: t.adminToken })).status, 200);

  await recordAt(t, '2026-03-05T12:00:00.000Z', read('HEPHAESTUS', 'beta'));
  for (let day = 1; day <= 12; day += 1) {
    const date = `2026-03-${String(day + 10).padStart(2, '0')}`;
    await recordAt(t, `${date}T09:20:00.000Z`, read('ARIA', 'alpha'));
    await recordAt(t, `${date}T10:40:00.000Z`, read('ARIA', 'alpha'));
  }

  await recordAt(t, '2026-03-28T00:00:00.000Z', { credentialName: '*', action: 'listed', actor: 'OPS', success: true });
  await recordAt(t, '2026-03-28T03:00:00.000Z', { credentialName: 'alpha', action: 'rotated', actor: 'system', success: true, details: { trigger: 'scheduled' } });
  await recordAt(t, '2026-03-28T09:15:00.000Z', read('ARIA', 'alpha'));
  await recordAt(t, '2026-03-28T10:05:00.000Z', read('ARIA', 'old-key'));
  await recordAt(t, '2026-03-28T11:00:00.000Z', read('HEPHAESTUS', 'exp-key'));
  for (let minute = 0; minute <= 8; minute += 2) {
    await recordAt(t, `2026-03-28T14:0${minute}:00.000Z`, read('MALLORY', 'gamma', { success: false, ipAddress: '10.9.9.9', errorMessage: 'forbidden: missing scope' }));
  }
  for (const minute of ['15:00', '15:20', '15:40', '16:00']) {
    await recordAt(t, `2026-03-28T${minute}:00.000Z`, {
      credentialName: '*',
      action: 'authenticate',
      actor: 'anonymous',
      ipAddress: '10.8.8.8',
      success: false,
      errorMessage: 'unauthorized: unknown token',
    });
  }
  await recordAt(t, '2026-03-29T01:30:00.000Z', read('ARIA', 'beta'));
  await recordAt(t, '2026-03-29T02:10:00.000Z', { credentialName: 'alpha', action: 'revealed', actor: 'ARIA', success: true, details: { version: 1 } });
  await recordAt(t, '2026-03-29T05:00:00.000Z', { credentialName: 'beta', action: 'rotated', actor: 'OPS', success: true, details: { trigger: 'emergency' } });
  await recordAt(t, '2026-03-29T06:00:00.000Z', {
    credentialName: 'gamma',
    action: 'rotated',
    actor: 'OPS',
    success: false,
    errorMessage: 'provider_failed: timed out',
    details: { trigger: 'manual' },
  });
  for (let minute = 0; minute < 60; minute += 1) {
    await recordAt(t, `2026-03-29T10:${String(minute).padStart(2, '0')}:00.000Z`, read('BULK', 'delta'));
  }
  // At the period's end, so outside it: the period is half-open.
  await recordAt(t, periodEnd, { credentialName: '*', action: 'listed', actor: 'OPS', success: true });
  t.clock.set('2026-03-30T12:00:00.000Z');
}

async function entrySeq(t: TestVault, timestamp: string, actor: string): Promise<number> {
  const row = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('seq').where('timestamp', '=', timestamp).where('actor', '=', actor).executeTakeFirstOrThrow();
  return Number(row.seq);
}

for (const dialect of await testDialects()) {
  describe(`audit report on ${dialect}`, () => {
    let t: TestVault;
    let reader: string;

    before(async () => {
      t = await openTestVault(dialect, { clock: new ManualClock('2026-02-01T07:00:00.000Z') });
      reader = await tokenWith(t, 'AUDITOR', ['audit:read']);
      await seedHistory(t);
    });
    after(async () => destroyTestVault(t));

    async function report(start: string, end: string) {
      const response = await call(t.app, 'GET', `/audit/report?start_date=${encodeURIComponent(start)}&end_date=${encodeURIComponent(end)}`, { token: reader });
      assert.equal(response.status, 200, response.body);
      return response;
    }

    it('report summary figures', async () => {
      const { json } = await report(periodStart, periodEnd);
      assert.deepEqual(json.period, { start: periodStart, end: periodEnd });
      assert.deepEqual(json.summary, { total_accesses: 78, rotations: 2, failures: 10, unique_actors: 7 });
    });

    it('report grouped figures', async () => {
      const { json } = await report(periodStart, periodEnd);
      assert.deepEqual(json.by_credential, [
        { credential_name: 'delta', accesses: 60, failures: 0, last_access: '2026-03-29T10:59:00.000Z' },
        { credential_name: 'gamma', accesses: 6, failures: 6, last_access: '2026-03-29T06:00:00.000Z' },
        { credential_name: 'alpha', accesses: 3, failures: 0, last_access: '2026-03-29T02:10:00.000Z' },
        { credential_name: 'beta', accesses: 2, failures: 0, last_access: '2026-03-29T05:00:00.000Z' },
        { credential_name: 'exp-key', accesses: 1, failures: 0, last_access: '2026-03-28T11:00:00.000Z' },
        { credential_name: 'old-key', accesses: 1, failures: 0, last_access: '2026-03-28T10:05:00.000Z' },
      ]);
      assert.deepEqual(json.by_action, [
        { action: 'read', count: 69, failures: 5 },
        { action: 'authenticate', count: 4, failures: 4 },
        { action: 'rotated', count: 3, failures: 1 },
        { action: 'listed', count: 1, failures: 0 },
        { action: 'revealed', count: 1, failures: 0 },
      ]);
      assert.deepEqual(json.by_actor, [
        { actor: 'BULK', count: 60, failures: 0 },
        { actor: 'MALLORY', count: 5, failures: 5 },
        { actor: 'ARIA', count: 4, failures: 0 },
        { actor: 'anonymous', count: 4, failures: 4 },
        { actor: 'OPS', count: 3, failures: 1 },
        { actor: 'HEPHAESTUS', count: 1, failures: 0 },
        { actor: 'system', count: 1, failures: 0 },
      ]);
    });

    it('report anomaly rules', async () => {
      const { json } = await report(periodStart, periodEnd);
      const summary = json.anomalies.map((anomaly: any) => `${anomaly.type} ${anomaly.actor ?? anomaly.ip_address} ${anomaly.credential_name ?? '-'} ${anomaly.entry_count}`);
      assert.deepEqual(summary.sort(), [
        'emergency_rotation OPS beta 1',
        'failure_burst MALLORY - 5',
        'new_credential_for_actor ARIA beta 1',
        'new_credential_for_actor ARIA old-key 1',
        'new_credential_for_actor BULK delta 60',
        'new_credential_for_actor HEPHAESTUS exp-key 1',
        'new_credential_for_actor OPS beta 1',
        'read_rate BULK - 60',
        'retired_or_expired_use ARIA old-key 1',
        'retired_or_expired_use HEPHAESTUS exp-key 1',
        'unusual_hour ARIA - 1',
        'unusual_hour ARIA - 1',
        'value_revealed ARIA alpha 1',
      ]);
      for (const anomaly of json.anomalies.filter((entry: any) => entry.type === 'unusual_hour')) {
        assert.match(anomaly.reason, /^ARIA made 1 call between /);
      }
    });

    it('anomalies name their entries', async () => {
      const { json } = await report(periodStart, periodEnd);
      const byType = (type: string) => json.anomalies.filter((anomaly: any) => anomaly.type === type);

      const burst = byType('failure_burst')[0];
      const firstFailure = await entrySeq(t, '2026-03-28T14:00:00.000Z', 'MALLORY');
      assert.deepEqual(burst.entry_seqs, [0, 1, 2, 3, 4].map((offset) => firstFailure + offset));
      assert.match(burst.reason, /MALLORY made 5 failed or denied calls within 10 minutes/);

      const hours = byType('unusual_hour').map((anomaly: any) => anomaly.entry_seqs[0]);
      assert.deepEqual(hours, [await entrySeq(t, '2026-03-29T01:30:00.000Z', 'ARIA'), await entrySeq(t, '2026-03-29T02:10:00.000Z', 'ARIA')]);
      assert.match(byType('unusual_hour')[0].reason, /between 01:00 and 02:00 UTC.*usual hours are 09:00-11:00 UTC/);

      const reveal = byType('value_revealed')[0];
      assert.deepEqual(reveal.entry_seqs, [await entrySeq(t, '2026-03-29T02:10:00.000Z', 'ARIA')]);
      assert.equal(reveal.entry_ids.length, 1);

      const rate = byType('read_rate')[0];
      assert.equal(rate.entry_seqs.length, 20, 'an anomaly lists its first 20 entries');
      assert.match(rate.reason, /BULK made 60 reads \(1\.25 per hour\)/);

      const misuse = byType('retired_or_expired_use').map((anomaly: any) => anomaly.reason).sort();
      assert.match(misuse[0], /ARIA used credential 'old-key' once after it was retired/);
      assert.match(misuse[1], /HEPHAESTUS used credential 'exp-key' once after it expired at 2026-03-01T00:00:00.000Z/);

      const emergency = byType('emergency_rotation')[0];
      assert.deepEqual(emergency.entry_seqs, [await entrySeq(t, '2026-03-29T05:00:00.000Z', 'OPS')]);
    });

    it('anomalies alert once each', async () => {
      await report(periodStart, periodEnd);
      await report(periodStart, periodEnd);
      const alerts = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').selectAll().where('alert_type', '=', 'audit_anomaly').execute();
      assert.equal(alerts.length, 13);
      assert.equal(new Set(alerts.map((alert) => alert.condition_key)).size, 13);
      assert.ok(alerts.every((alert) => alert.condition_key.startsWith('audit_anomaly:')));
    });

    it('report is UTC across DST', async () => {
      // The local day of 2026-03-29 in Berlin has 23 hours; the UTC day still contains exactly its own entries.
      const day = await buildAuditReport(
        t.vault.db,
        { start: '2026-03-29T00:00:00.000Z', end: '2026-03-30T00:00:00.000Z' },
        { anomalies: t.config.audit.anomalies, clock: t.clock, raiseAlerts: false },
      );
      assert.equal(day.summary.total_accesses, 64);
      const hourOne = await buildAuditReport(
        t.vault.db,
        { start: '2026-03-29T01:00:00.000Z', end: '2026-03-29T02:00:00.000Z' },
        { anomalies: t.config.audit.anomalies, clock: t.clock, raiseAlerts: false },
      );
      assert.deepEqual(hourOne.by_actor, [{ actor: 'ARIA', count: 1, failures: 0 }]);
      assert.equal(hourOne.anomalies.filter((anomaly) => anomaly.type === 'unusual_hour').length, 1);
    });

    it('empty period report', async () => {
      const { json } = await report('2026-05-01T00:00:00Z', '2026-05-02T00:00:00Z');
      assert.deepEqual(json, {
        period: { start: '2026-05-01T00:00:00.000Z', end: '2026-05-02T00:00:00.000Z' },
        summary: { total_accesses: 0, rotations: 0, failures: 0, unique_actors: 0 },
        by_credential: [],
        by_action: [],
        by_actor: [],
        anomalies: [],
      });
    });

    it('CLI report matches the API', async () => {
      const { json } = await report(periodStart, periodEnd);
      const cli = await runCli(['audit', 'report', '--start-date', periodStart, '--end-date', periodEnd, '--json'], t.env);
      assert.equal(cli.code, 0, cli.stderr);
      assert.deepEqual(JSON.parse(cli.stdout), json);

      const text = await runCli(['audit', 'report', '--start-date', '2026-03-28', '--end-date', '2026-03-30'], t.env);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^audit report 2026-03-28T00:00:00\.000Z to 2026-03-30T00:00:00\.000Z: 78 entries, 10 failed or denied, 2 rotations, 7 actors$/m);
      assert.match(text.stdout, /^delta +60 +0 /m);
      assert.match(text.stdout, new RegExp(`^${json.anomalies.length} anomalies:$`, 'm'));
    });

    it('CLI report rejects ambiguous dates', async () => {
      for (const start of ['2026-03-28T00:00:00', '2026-02-30', '0000-01-01']) {
        const result = await runCli(['audit', 'report', '--start-date', start, '--end-date', periodEnd], t.env);
        assert.notEqual(result.code, 0, start);
        assert.match(result.stderr, /Expected an ISO-8601 date such as 2025-01-31, or a date-time with Z or an offset/, start);
      }
    });

    it('report rejects bad periods', async () => {
      const reversed = await call(t.app, 'GET', `/audit/report?start_date=2026-03-30T00:00:00Z&end_date=2026-03-28T00:00:00Z`, { token: reader });
      assert.equal(reversed.status, 400);
      assert.equal(reversed.json.field, 'querystring.start_date');
      const missing = await call(t.app, 'GET', `/audit/report?start_date=2026-03-30T00:00:00Z`, { token: reader });
      assert.equal(missing.status, 400);
      assert.match(missing.json.detail, /end_date/);
      const invalid = await call(t.app, 'GET', `/audit/report?start_date=yesterday&end_date=2026-03-28T00:00:00Z`, { token: reader });
      assert.equal(invalid.status, 400);
      assert.match(invalid.json.detail, /start_date/);
    });

    it('report holds no values', async () => {
      const { body } = await report(periodStart, periodEnd);
      const alerts = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').selectAll().execute();
      const searched = `${body}\n${JSON.stringify(alerts)}\n${t.logs.text()}`;
      for (const secret of secrets) {
        for (const form of [secret, Buffer.from(secret).toString('base64'), encodeURIComponent(secret)]) {
          assert.equal(searched.includes(form), false, `found a seeded value in the form ${form}`);
        }
      }
    });
  });
}



for (const dialect of await testDialects()) {
  describe(`failure burst window on ${dialect}`, () => {
    let t: TestVault;
    before(async () => {
      t = await openTestVault(dialect, { clock: new ManualClock('2026-03-28T12:00:00.000Z') });
    });
    after(async () => destroyTestVault(t));

    it('burst window includes its end', async () => {
      // Five failures from 13:00 to 13:10 exactly: five within the default ten minutes.
      for (const time of ['13:00:00', '13:02:30', '13:05:00', '13:07:30', '13:10:00']) {
        await recordAt(t, `2026-03-28T${time}.000Z`, read('BURSTY', 'alpha', { success: false, errorMessage: 'forbidden' }));
      }
      const report = await buildAuditReport(t.vault.db, { start: periodStart, end: periodEnd }, { anomalies: t.config.audit.anomalies, clock: t.clock, raiseAlerts: false });
      const bursts = report.anomalies.filter((anomaly) => anomaly.type === 'failure_burst' && anomaly.actor === 'BURSTY');
      assert.equal(bursts.length, 1);
      assert.equal(bursts[0]!.entry_count, 5);
    });
  });
}

describe('first use of a credential', () => {
  let t: TestVault;
  before(async () => {
    t = await openTestVault('sqlite', { clock: new ManualClock('2026-03-28T09:00:00.000Z') });
  });
  after(async () => destroyTestVault(t));

  // Searching the audit log, rotation history or alerts by a name records that name, but uses no credential.
  it('ignores searches by name', async () => {
    // Before the period: a search does not count as an earlier use of the credential either.
    await recordAt(t, '2026-03-20T09:00:00.000Z', { credentialName: 'zeta', action: 'audit_read', actor: 'ARIA', success: true });
    await recordAt(t, '2026-03-28T09:00:00.000Z', read('ARIA', 'zeta'));
    for (const action of ['audit_read', 'audit_exported', 'audit_reported', 'history_read', 'alerts_read']) {
      await recordAt(t, '2026-03-28T09:05:00.000Z', { credentialName: '..', action, actor: 'AUDITOR', success: true });
      await recordAt(t, '2026-03-28T09:06:00.000Z', { credentialName: 'zeta', action, actor: 'ARIA', success: true });
    }
    const response = await call(t.app, 'GET', `/audit/report?start_date=${encodeURIComponent(periodStart)}&end_date=${encodeURIComponent(periodEnd)}`, { token: t.adminToken });
    assert.equal(response.status, 200, response.body);
    const firstUses = response.json.anomalies.filter((anomaly: any) => anomaly.type === 'new_credential_for_actor');
    assert.deepEqual(
      firstUses.map((anomaly: any) => `${anomaly.actor} ${anomaly.credential_name}`),
      ['ARIA zeta'],
    );
    assert.equal(firstUses[0].entry_seqs.length, 1);
  });
});
