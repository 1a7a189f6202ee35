import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CreateCredentialInput } from '../../src/registry/credential-input.js';
import type { Caller } from '../../src/tokens/caller.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';
import { ManualClock } from '../../src/lib/clock.js';

const setupCaller: Caller = { actor: 'test-setup', tokenId: null, scopes: ['admin'], namePatterns: [], tags: [], ipAddress: null };

/** Creates an env credential through the service, which takes rotation_cron and rotation_timezone. */
async function createEnvCredential(t: TestVault, name: string, settings: Partial<CreateCredentialInput>, file = path.join(t.dir, `${name}.env`)): Promise<string> {
  fs.writeFileSync(file, `API_KEY=initial-${name}\n`);
  const credential = await t.vault.registry.create(setupCaller, {
    name,
    credential_type: 'apiKey',
    provider: 'env',
    provider_config: { file, variable: 'API_KEY' },
    value: `initial-${name}`,
    rotation_enabled: true,
    ...settings,
  });
  return credential.id;
}

async function runScheduled(t: TestVault, expectedFailures = 0) {
  const response = await call(t.app, 'POST', '/rotation/run-scheduled', { token: t.adminToken });
  assert.equal(response.status, 200, response.body);
  assert.equal(response.json.failed, expectedFailures, response.body);
  return response.json;
}

/** Calls run-scheduled once per simulated hour until `until`, starting at the clock's time. */
async function tickHourly(t: TestVault, until: string): Promise<void> {
  while (t.clock.now().toISOString() < until) {
    await runScheduled(t);
    t.clock.advanceHours(1);
  }
}

async function scheduledRotations(t: TestVault, credentialId: string, since: string): Promise<string[]> {
  const rows = await t.vault.db.kysely
    .selectFrom('aegis_rotation_history')
    .select('rotated_at')
    .where('credential_id', '=', credentialId)
    .where('trigger', 'in', ['scheduled', 'expiry'])
    .orderBy('rotated_at')
    .execute();
  return rows.map((row) => new Date(row.rotated_at as string | Date).toISOString()).filter((at) => at >= since);
}

async function nextRotationOf(t: TestVault, name: string): Promise<string | null> {
  const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('next_rotation_at').where('name', '=', name).executeTakeFirstOrThrow();
  return row.next_rotation_at === null ? null : new Date(row.next_rotation_at as string | Date).toISOString();
}

function localDate(instant: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(instant));
}

/** Lists every calendar date from `first` to `last`, inclusive. */
function datesFrom(first: string, last: string): string[] {
  const dates: string[] = [];
  for (let day = new Date(`${first}T00:00:00Z`); day <= new Date(`${last}T00:00:00Z`); day = new Date(day.getTime() + 86_400_000)) {
    dates.push(day.toISOString().slice(0, 10));
  }
  return dates;
}

/** Weeks around the four daylight-saving changes of 2026 in Berlin and Sydney, and the local days whose 02:30 run falls inside each. */
const windows: Array<{ from: string; until: string; berlin: [string, string]; sydney: [string, string] }> = [
  { from: '2026-03-26T00:00:00.000Z', until: '2026-04-08T00:00:00.000Z', berlin: ['2026-03-26', '2026-04-07'], sydney: ['2026-03-27', '2026-04-08'] },
  { from: '2026-10-01T00:00:00.000Z', until: '2026-10-07T00:00:00.000Z', berlin: ['2026-10-01', '2026-10-06'], sydney: ['2026-10-02', '2026-10-07'] },
  { from: '2026-10-22T00:00:00.000Z', until: '2026-10-28T00:00:00.000Z', berlin: ['2026-10-22', '2026-10-27'], sydney: ['2026-10-23', '2026-10-28'] },
];

for (const dialect of await testDialects()) {
  describe(`scheduled rotation on ${dialect}`, () => {
    let t: TestVault;
    let failingFile: string;
    let restorableFile: string;
    let strandedFile: string;

    before(async () => {
      const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-scheduled-')));
      failingFile = path.join(dir, 'failing.env');
      restorableFile = path.join(dir, 'restorable.env');
      strandedFile = path.join(dir, 'stranded.env');
      // Every write to failing.env fails at its reload command, so each rotation of it fails and so does
      // putting the previous value back. restorable.env reloads only its initial value, so a rotation fails
      // and putting the previous value back succeeds.
      const reloadCommands = { [failingFile]: 'exit 1', [restorableFile]: `grep -q '^API_KEY=initial-' '${restorableFile}'`, [strandedFile]: 'exit 1' };
      t = await openTestVault(dialect, {
        reuse: { dir },
        clock: new ManualClock('2026-03-20T00:00:00.000Z'),
        env: { AEGIS_ENV_RELOAD_COMMANDS: JSON.stringify(reloadCommands) },
      });
    });
    after(async () => destroyTestVault(t));

    it('cron runs once per local day', async () => {
      const berlin = await createEnvCredential(t, 'cron-berlin', { rotation_strategy: 'scheduled', rotation_cron: '30 2 * * *', rotation_timezone: 'Europe/Berlin' });
      const sydney = await createEnvCredential(t, 'cron-sydney', { rotation_strategy: 'scheduled', rotation_cron: '30 2 * * *', rotation_timezone: 'Australia/Sydney' });
      const interval = await createEnvCredential(t, 'interval-24h', { rotation_strategy: 'scheduled', rotation_interval_hours: 24 });

      for (const window of windows) {
        // Catch up on the days between windows with one run, then count from a clean start.
        t.clock.set(new Date(new Date(window.from).getTime() - 3_600_000));
        await runScheduled(t);
        t.clock.set(window.from);
        await tickHourly(t, window.until);

        const berlinRuns = await scheduledRotations(t, berlin, window.from);
        assert.deepEqual(
          berlinRuns.map((run) => localDate(run, 'Europe/Berlin')),
          datesFrom(window.berlin[0], window.berlin[1]),
          `Berlin runs: ${berlinRuns.join(', ')}`,
        );
        const sydneyRuns = await scheduledRotations(t, sydney, window.from);
        assert.deepEqual(
          sydneyRuns.map((run) => localDate(run, 'Australia/Sydney')),
          datesFrom(window.sydney[0], window.sydney[1]),
          `Sydney runs: ${sydneyRuns.join(', ')}`,
        );
        // 24 hours in UTC: the interval credential rotates at the same UTC hour every day.
        const intervalRuns = await scheduledRotations(t, interval, window.from);
        const hours = new Set(intervalRuns.map((run) => new Date(run).getUTCHours()));
        assert.equal(hours.size, 1, `interval runs: ${intervalRuns.join(', ')}`);
        const windowDays = (new Date(window.until).getTime() - new Date(window.from).getTime()) / 86_400_000;
        assert.equal(intervalRuns.length, windowDays);
      }

      const versions = await t.vault.db.kysely.selectFrom('aegis_credential_versions').select('state').where('credential_id', '=', berlin).execute();
      assert.ok(versions.every((row) => row.state === 'committed'));

      // The later tests count due credentials, so these stop here.
      for (const name of ['cron-berlin', 'cron-sydney', 'interval-24h']) await t.vault.registry.update(setupCaller, name, { rotation_enabled: false });
    });

    it('changed schedule replaces the old', async () => {
      t.clock.set('2026-11-02T00:00:00.000Z');
      const id = await createEnvCredential(t, 'changing', { rotation_strategy: 'scheduled', rotation_cron: '30 2 * * *', rotation_timezone: 'Europe/Berlin' });
      assert.equal(await nextRotationOf(t, 'changing'), '2026-11-02T01:30:00.000Z');

      await t.vault.registry.update(setupCaller, 'changing', { rotation_cron: '0 14 * * *', rotation_timezone: 'UTC' });
      assert.equal(await nextRotationOf(t, 'changing'), '2026-11-02T14:00:00.000Z');

      // Another spelling of the same zone is stored in canonical form and is no schedule change.
      const respelled = await call(t.app, 'PATCH', '/credentials/changing', { token: t.adminToken, body: { rotation_timezone: 'Etc/UTC' } });
      assert.equal(respelled.status, 200, respelled.body);
      assert.equal(respelled.json.credential.rotation_timezone, 'UTC');
      const lowercase = await call(t.app, 'PATCH', '/credentials/changing', { token: t.adminToken, body: { rotation_timezone: 'europe/berlin' } });
      assert.equal(lowercase.json.credential.rotation_timezone, 'Europe/Berlin');
      await t.vault.registry.update(setupCaller, 'changing', { rotation_timezone: 'UTC' });
      assert.equal(await nextRotationOf(t, 'changing'), '2026-11-02T14:00:00.000Z');

      const since = t.clock.now().toISOString();
      await tickHourly(t, '2026-11-05T00:00:00.000Z');
      const runs = await scheduledRotations(t, id, since);
      assert.deepEqual(runs, ['2026-11-02T14:00:00.000Z', '2026-11-03T14:00:00.000Z', '2026-11-04T14:00:00.000Z']);

      // A match between the last rotation (14:00 yesterday) and the change is not due: the new cron counts from now.
      assert.equal(t.clock.now().toISOString(), '2026-11-05T00:00:00.000Z');
      const later = await call(t.app, 'PATCH', '/credentials/changing', { token: t.adminToken, body: { rotation_cron: '0 20 * * *' } });
      assert.equal(later.status, 200, later.body);
      assert.equal(await nextRotationOf(t, 'changing'), '2026-11-05T20:00:00.000Z');
      const described = await call(t.app, 'PATCH', '/credentials/changing', { token: t.adminToken, body: { description: 'a change outside the schedule' } });
      assert.equal(described.status, 200, described.body);
      assert.equal(await nextRotationOf(t, 'changing'), '2026-11-05T20:00:00.000Z');

      // Over HTTP: a plain interval instead of the cron schedule, counted from the last rotation.
      await t.vault.registry.update(setupCaller, 'changing', { rotation_cron: null });
      const patched = await call(t.app, 'PATCH', '/credentials/changing', { token: t.adminToken, body: { rotation_interval_hours: 48 } });
      assert.equal(patched.status, 200, patched.body);
      assert.equal(await nextRotationOf(t, 'changing'), '2026-11-06T14:00:00.000Z');
      const sinceInterval = t.clock.now().toISOString();
      await tickHourly(t, '2026-11-09T00:00:00.000Z');
      assert.deepEqual(await scheduledRotations(t, id, sinceInterval), ['2026-11-06T14:00:00.000Z', '2026-11-08T14:00:00.000Z']);

      const disabled = await call(t.app, 'PATCH', '/credentials/changing', { token: t.adminToken, body: { rotation_enabled: false } });
      assert.equal(disabled.status, 200, disabled.body);
      assert.equal(await nextRotationOf(t, 'changing'), null);
      const sinceDisabled = t.clock.now().toISOString();
      await tickHourly(t, '2026-11-12T00:00:00.000Z');
      assert.deepEqual(await scheduledRotations(t, id, sinceDisabled), []);
    });

    it('schedule lists upcoming and overdue', async () => {
      t.clock.set('2026-12-01T00:00:00.000Z');
      await runScheduled(t);
      await createEnvCredential(t, 'due-soon', { rotation_strategy: 'scheduled', rotation_interval_hours: 10 });
      await createEnvCredential(t, 'due-later', { rotation_strategy: 'scheduled', rotation_interval_hours: 40 });
      await createEnvCredential(t, 'manual-only', { rotation_strategy: 'manual' });
      t.clock.advanceHours(16);

      const schedule = await call(t.app, 'GET', '/rotation/schedule', { token: t.adminToken });
      assert.equal(schedule.status, 200, schedule.body);
      const overdue = schedule.json.overdue_rotations.map((entry: { name: string }) => entry.name);
      const upcoming = schedule.json.upcoming_rotations.map((entry: { name: string }) => entry.name);
      assert.deepEqual(overdue, ['due-soon']);
      assert.equal(schedule.json.overdue_rotations[0].overdue_hours, 6);
      assert.equal(schedule.json.overdue_rotations[0].next_rotation_at, '2026-12-01T10:00:00.000Z');
      assert.ok(upcoming.includes('due-later'));
      assert.ok(!upcoming.includes('manual-only'));
      assert.ok(!overdue.includes('manual-only'));

      // A token limited by name or tag gets only the credentials it reaches.
      const limited = await tokenWith(t, 'schedule-reader', ['credentials:read'], { namePatterns: ['due-l*'] });
      const seen = await call(t.app, 'GET', '/rotation/schedule', { token: limited });
      assert.equal(seen.status, 200, seen.body);
      assert.deepEqual(seen.json.overdue_rotations, []);
      assert.deepEqual(seen.json.upcoming_rotations.map((entry: { name: string }) => entry.name), ['due-later']);
      const tagged = await tokenWith(t, 'schedule-tagged', ['credentials:read'], { tags: ['no-such-tag'] });
      const none = await call(t.app, 'GET', '/rotation/schedule', { token: tagged });
      assert.deepEqual(none.json.overdue_rotations, []);
      assert.deepEqual(none.json.upcoming_rotations, []);
      // A limited token's scheduled run neither rotates nor names what it does not reach.
      const limitedRotator = await tokenWith(t, 'schedule-rotator', ['credentials:rotate'], { namePatterns: ['due-l*'] });
      const limitedRun = await call(t.app, 'POST', '/rotation/run-scheduled', { token: limitedRotator });
      assert.equal(limitedRun.status, 200, limitedRun.body);
      assert.deepEqual(limitedRun.json.details, []);
      assert.ok(!limitedRun.body.includes('due-soon'), limitedRun.body);

      const run = await runScheduled(t);
      assert.deepEqual(
        run.details.map((detail: { credential: string }) => detail.credential),
        ['due-soon'],
      );
      const after = await call(t.app, 'GET', '/rotation/schedule', { token: t.adminToken });
      assert.deepEqual(after.json.overdue_rotations, []);
      assert.ok(after.json.upcoming_rotations.some((entry: { name: string }) => entry.name === 'due-soon'));
    });

    it('on_expiry rotates before expiry', async () => {
      t.clock.set('2027-01-01T00:00:00.000Z');
      await runScheduled(t);
      const id = await createEnvCredential(t, 'expiring', { rotation_strategy: 'on_expiry', expires_at: '2027-01-05T00:00:00.000Z', alert_threshold_hours: 24 });
      assert.equal(await nextRotationOf(t, 'expiring'), '2027-01-04T00:00:00.000Z');

      t.clock.set('2027-01-03T23:00:00.000Z');
      await runScheduled(t);
      assert.deepEqual(await scheduledRotations(t, id, '2027-01-01T00:00:00.000Z'), []);

      t.clock.set('2027-01-04T00:00:00.000Z');
      const run = await runScheduled(t);
      const detail = run.details.find((entry: { credential: string }) => entry.credential === 'expiring');
      assert.equal(detail.status, 'rotated');
      assert.equal(detail.trigger, 'expiry');

      const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select(['expires_at', 'status']).where('id', '=', id).executeTakeFirstOrThrow();
      // The new value gets the old one's lifetime: four days from creation to expiry.
      assert.equal(new Date(row.expires_at as string | Date).toISOString(), '2027-01-08T00:00:00.000Z');
      assert.equal(row.status, 'active');
      assert.equal(await nextRotationOf(t, 'expiring'), '2027-01-07T00:00:00.000Z');

      t.clock.set('2027-01-04T01:00:00.000Z');
      await runScheduled(t);
      assert.equal((await scheduledRotations(t, id, '2027-01-01T00:00:00.000Z')).length, 1);
    });

    it('on_expiry needs a lifetime past the threshold', async () => {
      t.clock.set('2027-01-20T00:00:00.000Z');
      const rotate = { method: 'POST', url: 'http://127.0.0.1:9/rotate', value_pointer: '/key' };
      const body = { name: 'short-lived', credential_type: 'apiKey', provider: 'api', value: 'short-value', provider_config: { rotate }, rotation_enabled: true, rotation_strategy: 'on_expiry', expires_at: '2027-01-20T05:00:00.000Z' };
      const rejected = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body });
      assert.equal(rejected.status, 400, rejected.body);
      assert.equal(rejected.json.field, 'alert_threshold_hours');
      assert.match(rejected.json.detail, /the value lives 5 hours from its last rotation to expires_at/);

      const lowered = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { ...body, alert_threshold_hours: 2 } });
      assert.equal(lowered.status, 201, lowered.body);
      const raised = await call(t.app, 'PATCH', '/credentials/short-lived', { token: t.adminToken, body: { alert_threshold_hours: 5 } });
      assert.equal(raised.status, 400, raised.body);
      assert.equal(raised.json.field, 'alert_threshold_hours');
      const withPolicy = await call(t.app, 'PATCH', '/credentials/short-lived', { token: t.adminToken, body: { alert_threshold_hours: 5, value_policy: { validity_hours: 48 } } });
      assert.equal(withPolicy.status, 200, withPolicy.body);
      // Its rotate request goes nowhere, so it must not be due in the later tests' runs.
      const retired = await call(t.app, 'DELETE', '/credentials/short-lived', { token: t.adminToken });
      assert.equal(retired.status, 200, retired.body);
    });

    it('automatic rotation needs a value source', async () => {
      const body = { name: 'no-source', credential_type: 'apiKey', provider: 'api', value: 'no-source-value', rotation_enabled: true, rotation_strategy: 'scheduled', rotation_interval_hours: 24 };
      const rejected = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body });
      assert.equal(rejected.status, 400, rejected.body);
      assert.equal(rejected.json.field, 'rotation_strategy');
      assert.match(rejected.json.detail, /without a provider_config\.rotate request get no new value from the provider/);

      const manual = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { ...body, rotation_strategy: 'manual' } });
      assert.equal(manual.status, 201, manual.body);
      const scheduled = await call(t.app, 'PATCH', '/credentials/no-source', { token: t.adminToken, body: { rotation_strategy: 'scheduled' } });
      assert.equal(scheduled.status, 400, scheduled.body);
      assert.equal(scheduled.json.field, 'rotation_strategy');
      const described = await call(t.app, 'PATCH', '/credentials/no-source', { token: t.adminToken, body: { description: 'still manual' } });
      assert.equal(described.status, 200, described.body);
    });

    it('generation policy needs generated values', async () => {
      const body = { name: 'issued-only', credential_type: 'apiKey', provider: 'api', value: 'issued-only-value', value_policy: { length: 32 } };
      const rejected = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body });
      assert.equal(rejected.status, 400, rejected.body);
      assert.equal(rejected.json.field, 'value_policy.length');
      assert.match(rejected.json.detail, /rotate only to a value in the request/);
      assert.equal((await call(t.app, 'GET', '/credentials/issued-only', { token: t.adminToken })).status, 404);

      const lifetime = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { ...body, value_policy: { validity_hours: 48 } } });
      assert.equal(lifetime.status, 201, lifetime.body);
      const prefixed = await call(t.app, 'PATCH', '/credentials/issued-only', { token: t.adminToken, body: { value_policy: { validity_hours: 48, prefix: 'sk_' } } });
      assert.equal(prefixed.status, 400, prefixed.body);
      assert.equal(prefixed.json.field, 'value_policy.prefix');
      const workflowData = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name: 'n8n-data', credential_type: 'httpHeaderAuth', provider: 'n8n', value: '{"name":"x","value":"y"}', value_policy: { alphabet: 'hex' } },
      });
      assert.equal(workflowData.status, 400, workflowData.body);
      assert.equal(workflowData.json.field, 'value_policy.alphabet');

      const envFile = path.join(t.dir, 'generated.env');
      fs.writeFileSync(envFile, 'GENERATED_KEY=generated-value\n');
      const generated = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name: 'generated', credential_type: 'apiKey', provider: 'env', provider_config: { file: envFile, variable: 'GENERATED_KEY' }, value: 'generated-value', value_policy: { length: 32, prefix: 'sk_' } },
      });
      assert.equal(generated.status, 201, generated.body);
    });

    it('repeated scheduled failure alerts once', async () => {
      t.clock.set('2027-02-01T00:00:00.000Z');
      await runScheduled(t);
      const id = await createEnvCredential(t, 'failing', { rotation_strategy: 'scheduled', rotation_interval_hours: 1 }, restorableFile);

      for (let hour = 1; hour <= 3; hour += 1) {
        t.clock.advanceHours(1);
        await runScheduled(t, 1);
      }
      const history = await t.vault.db.kysely.selectFrom('aegis_rotation_history').select('success').where('credential_id', '=', id).execute();
      assert.equal(history.length, 3);
      assert.ok(history.every((row) => row.success === false || row.success === 0));
      const alerts = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').selectAll().where('credential_id', '=', id).execute();
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0]!.alert_type, 'rotation_failed');
      assert.match(alerts[0]!.message, /^❌ Rotation failed for 'failing': /);

      // A manual rotation is a new request, so its failure alerts again.
      const manual = await call(t.app, 'POST', '/credentials/failing/rotate', { token: t.adminToken, body: {} });
      assert.equal(manual.status, 502, manual.body);
      const afterManual = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').select('alert_type').where('credential_id', '=', id).execute();
      assert.equal(afterManual.length, 2);
      await t.vault.registry.update(setupCaller, 'failing', { rotation_enabled: false });
    });

    it('uncertain failure pauses automatic rotation', async () => {
      t.clock.set('2027-05-01T00:00:00.000Z');
      await runScheduled(t);
      const id = await createEnvCredential(t, 'unsure', { rotation_strategy: 'scheduled', rotation_interval_hours: 1 }, failingFile);

      t.clock.advanceHours(1);
      const first = await runScheduled(t, 1);
      assert.equal(first.details[0].credential, 'unsure');
      assert.match(first.details[0].error, /check the provider, then retry\. Automatic rotation of this credential is paused/);
      assert.equal(await nextRotationOf(t, 'unsure'), null);
      const [alert] = await t.vault.db.kysely.selectFrom('aegis_alert_outbox').select('message').where('credential_id', '=', id).execute();
      assert.match(alert!.message, /Automatic rotation of this credential is paused until a rotation succeeds or its schedule changes\.$/);

      // Later runs leave it alone until someone has checked the provider.
      for (let hour = 1; hour <= 3; hour += 1) {
        t.clock.advanceHours(1);
        const run = await runScheduled(t);
        assert.deepEqual(run.details, []);
      }
      assert.equal((await scheduledRotations(t, id, '2027-05-01T00:00:00.000Z')).length, 1);
      const schedule = await call(t.app, 'GET', '/rotation/schedule', { token: t.adminToken });
      assert.ok(!schedule.body.includes('"unsure"'), schedule.body);

      // A change of the schedule starts it again.
      await t.vault.registry.update(setupCaller, 'unsure', { rotation_interval_hours: 6 });
      assert.equal(await nextRotationOf(t, 'unsure'), '2027-05-01T06:00:00.000Z');
      await t.vault.registry.update(setupCaller, 'unsure', { rotation_enabled: false });
    });

    it('unrestored recovery pauses automatic rotation', async () => {
      t.clock.set('2027-06-01T00:00:00.000Z');
      await runScheduled(t);
      const id = await createEnvCredential(t, 'stranded', { rotation_strategy: 'scheduled', rotation_interval_hours: 1 }, strandedFile);

      // A process stopped mid-rotation (or mid-rollback) once the rotation was due, and putting the
      // previous value back fails at recovery, so what the provider contains is unknown.
      t.clock.advanceHours(1);
      await t.vault.db.kysely.updateTable('aegis_credentials').set({ status: 'rotating' }).where('id', '=', id).execute();
      const run = await runScheduled(t);
      assert.deepEqual(run.recovered, [{ credential: 'stranded', outcome: 'failed' }]);
      // Other tests' credentials fall due too, so only this one's entries count.
      assert.deepEqual(run.details.filter((detail: { credential: string }) => detail.credential === 'stranded'), []);
      assert.equal(await nextRotationOf(t, 'stranded'), null);
      const [history] = await t.vault.db.kysely.selectFrom('aegis_rotation_history').select('error_message').where('credential_id', '=', id).where('trigger', '=', 'recovery').execute();
      assert.match(history!.error_message!, /Automatic rotation of this credential is paused until a rotation succeeds or its schedule changes\.$/);

      t.clock.advanceHours(1);
      await runScheduled(t);
      assert.deepEqual(await scheduledRotations(t, id, '2027-06-01T00:00:00.000Z'), []);
      await t.vault.registry.update(setupCaller, 'stranded', { rotation_enabled: false });
    });

    it('interval keeps its period', async () => {
      // Work takes time: each read of this clock moves it on by a millisecond, so a rotation commits a
      // little after the run that found it due, as on a real clock.
      class MovingClock extends ManualClock {
        override now(): Date {
          const now = super.now();
          this.advanceMs(1);
          return now;
        }
      }
      const clock = new MovingClock('2027-04-01T00:10:00.000Z');
      const own = await openTestVault(dialect, { clock });
      try {
        const periods: Record<string, number> = { 'every-1h': 1, 'every-4h': 4, 'every-24h': 24 };
        for (const [name, hours] of Object.entries(periods)) await createEnvCredential(own, name, { rotation_strategy: 'scheduled', rotation_interval_hours: hours });

        // Four days of the rotations job at :30 of every hour.
        const rotated: Record<string, number> = {};
        for (let hour = 1; hour <= 96; hour += 1) {
          clock.set(new Date(new Date('2027-04-01T00:30:00.000Z').getTime() + hour * 3_600_000));
          const run = await runScheduled(own);
          for (const detail of run.details) rotated[detail.credential] = (rotated[detail.credential] ?? 0) + 1;
        }
        assert.equal(rotated['every-1h'], 96);
        assert.equal(rotated['every-4h'], 24);
        assert.equal(rotated['every-24h'], 4);
        // The period counts from creation, a few milliseconds after 00:10.
        assert.equal((await nextRotationOf(own, 'every-24h'))?.slice(0, 19), '2027-04-06T00:10:00');

        // A manual rotation starts the period again from its own time.
        clock.set('2027-04-05T06:00:00.000Z');
        const manual = await call(own.app, 'POST', '/credentials/every-24h/rotate', { token: own.adminToken, body: {} });
        assert.equal(manual.status, 200, manual.body);
        assert.equal((await nextRotationOf(own, 'every-24h'))?.slice(0, 19), '2027-04-06T06:00:00');
      } finally {
        await destroyTestVault(own);
      }
    });

    it('unrelated change keeps a due cron rotation', async () => {
      t.clock.set('2027-03-01T00:00:00.000Z');
      await runScheduled(t);
      const id = await createEnvCredential(t, 'cron-due', { rotation_strategy: 'scheduled', rotation_cron: '0 3 * * *', rotation_timezone: 'Europe/Berlin', expires_at: '2027-09-01T00:00:00.000Z' });
      assert.equal(await nextRotationOf(t, 'cron-due'), '2027-03-01T02:00:00.000Z');

      // The scheduler missed 02:00; fields that a cron schedule does not read change meanwhile.
      t.clock.set('2027-03-01T05:00:00.000Z');
      for (const body of [{ expires_at: '2027-10-01T00:00:00.000Z' }, { alert_threshold_hours: 72 }, { rotation_interval_hours: 12 }]) {
        const patched = await call(t.app, 'PATCH', '/credentials/cron-due', { token: t.adminToken, body });
        assert.equal(patched.status, 200, patched.body);
        assert.equal(await nextRotationOf(t, 'cron-due'), '2027-03-01T02:00:00.000Z', `after ${JSON.stringify(body)}`);
      }

      await runScheduled(t);
      assert.deepEqual(await scheduledRotations(t, id, '2027-03-01T00:00:00.000Z'), ['2027-03-01T05:00:00.000Z']);
      assert.equal(await nextRotationOf(t, 'cron-due'), '2027-03-02T02:00:00.000Z');
      await t.vault.registry.update(setupCaller, 'cron-due', { rotation_enabled: false });
    });

    it('due rotation runs once across processes', async () => {
      // On PostgreSQL a second vault on the same schema plays a second AEGIS process. Two vaults on one
      // SQLite file in one Node process would block each other's synchronous writes, so there the runs
      // share one vault, as two concurrent requests to one process do.
      const second = dialect === 'postgres' ? await openTestVault(dialect, { reuse: { dir: t.dir, schema: t.env.AEGIS_DATABASE_SCHEMA }, clock: t.clock }) : t;
      try {
        const names = Array.from({ length: 6 }, (_, index) => `once-${index}`);
        const ids = new Map<string, string>();
        for (const name of names) ids.set(name, await createEnvCredential(t, name, { rotation_strategy: 'scheduled', rotation_interval_hours: 24 }));
        t.clock.advanceHours(25);
        const since = t.clock.now().toISOString();

        // Each run lists the due credentials first, then takes their leases one by one.
        const runs = await Promise.all([t, second, t, second].map((vault) => call(vault.app, 'POST', '/rotation/run-scheduled', { token: t.adminToken })));
        for (const run of runs) {
          assert.equal(run.status, 200, run.body);
          assert.equal(run.json.failed, 0, run.body);
        }
        for (const name of names) {
          const rotated = runs.flatMap((run) => run.json.details).filter((detail: { credential: string; status: string }) => detail.credential === name && detail.status === 'rotated');
          assert.equal(rotated.length, 1, `${name}: ${JSON.stringify(runs.map((run) => run.json.details))}`);
          assert.equal((await scheduledRotations(t, ids.get(name)!, since)).length, 1, name);
        }

        // A run that listed a credential before another run rotated it reaches it afterwards.
        await assert.rejects(second.vault.rotation.engine.rotate(setupCaller, 'once-0', { trigger: 'scheduled' }), { code: 'rotation_not_due' });
        assert.equal((await scheduledRotations(t, ids.get('once-0')!, since)).length, 1);
        const versions = await call(t.app, 'GET', '/credentials/once-0/versions', { token: t.adminToken });
        assert.equal(versions.json.versions.length, 2, versions.body);
      } finally {
        if (second !== t) await second.close();
      }
    });
  });
}
