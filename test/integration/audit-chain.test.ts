import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, afterEach, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { readHead } from '../../src/audit/audit.repository.js';
import type { AuditEntry } from '../../src/audit/audit.types.js';
import { entryHash } from '../../src/audit/chain.js';
import { runCli } from '../helpers/cli.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

interface EntryView {
  id: string;
  seq: number;
  timestamp: string;
  credential_name: string;
  action: string;
  actor: string;
  success: boolean;
  error_message: string | null;
}

/** Makes a mix of allowed, denied and failed API calls, so the chain contains entries of every kind. */
async function seedActivity(t: TestVault): Promise<void> {
  const reader = await tokenWith(t, 'ARIA', ['credentials:read']);
  for (const name of ['alpha', 'beta', 'gamma']) {
    const created = await call(t.app, 'POST', '/credentials', {
      token: t.adminToken,
      body: { name, credential_type: 'openAiApi', provider: 'n8n', value: `value-of-${name}` },
    });
    assert.equal(created.status, 201);
  }
  assert.equal((await call(t.app, 'GET', '/credentials/alpha', { token: reader })).status, 200);
  assert.equal((await call(t.app, 'GET', '/credentials', { token: reader })).status, 200);
  assert.equal((await call(t.app, 'GET', '/credentials/alpha/value', { token: reader })).status, 403);
  assert.equal((await call(t.app, 'GET', '/credentials/ghost', { token: t.adminToken })).status, 404);
  assert.equal((await call(t.app, 'GET', '/credentials', { token: 'aegis_000000000000_not-a-real-token' })).status, 401);
  assert.equal((await call(t.app, 'PATCH', '/credentials/beta', { token: t.adminToken, body: { description: 'changed' } })).status, 200);
}

async function entryAt(t: TestVault, seq: number) {
  return t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('seq', '=', seq).executeTakeFirstOrThrow();
}

/** Builds a row whose hash is valid for its own fields, as a forger who has read the hash format would. */
function forgedRow(seq: number, prevHash: string, timestamp: string) {
  const entry: Omit<AuditEntry, 'entryHash'> = {
    id: crypto.randomUUID(),
    seq,
    timestamp,
    credentialId: null,
    credentialName: 'alpha',
    action: 'revealed',
    actor: 'HEPHAESTUS',
    target: null,
    details: { version: 1 },
    ipAddress: '127.0.0.1',
    success: true,
    errorMessage: null,
    prevHash,
  };
  return {
    row: {
      id: entry.id,
      seq,
      timestamp,
      credential_id: null,
      credential_name: entry.credentialName,
      action: entry.action,
      actor: entry.actor,
      target: null,
      details: JSON.stringify(entry.details),
      ip_address: entry.ipAddress,
      success: true,
      error_message: null,
      prev_hash: prevHash,
      entry_hash: entryHash(entry),
    },
    id: entry.id,
  };
}

/** Runs `aegis audit verify`, checks it failed and named the entry, and returns its output. */
async function expectCliNames(t: TestVault, seq: number, id: string | null, reason: string): Promise<string> {
  const text = await runCli(['audit', 'verify'], t.env);
  assert.equal(text.code, 1, text.stderr);
  assert.match(text.stdout, /^audit chain verification failed after \d+ good entries: /);
  assert.ok(text.stdout.includes(`ntry ${seq}`), text.stdout);
  if (id) assert.ok(text.stdout.includes(id), text.stdout);

  const json = await runCli(['audit', 'verify', '--json'], t.env);
  assert.equal(json.code, 1, json.stderr);
  const report = JSON.parse(json.stdout) as { ok: boolean; problem: { seq: number; id: string | null; reason: string } };
  assert.equal(report.ok, false);
  assert.equal(report.problem.seq, seq);
  assert.equal(report.problem.id, id);
  assert.equal(report.problem.reason, reason);
  return text.stdout;
}

for (const dialect of await testDialects()) {
  describe(`audit chain verify on ${dialect}`, () => {
    let t: TestVault;
    let headSeq: number;

    before(async () => {
      t = await openTestVault(dialect);
      await seedActivity(t);
      headSeq = (await readHead(t.vault.db.kysely)).seq;
    });
    after(async () => destroyTestVault(t));

    it('verifies an untouched chain', async () => {
      assert.ok(headSeq >= 10, `only ${headSeq} entries were written`);
      const result = await runCli(['audit', 'verify'], t.env);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `audit chain verified: ${headSeq} entries, head ${headSeq}\n`);

      const api = await call(t.app, 'GET', '/audit/verify', { token: t.adminToken });
      assert.equal(api.status, 200);
      assert.equal(api.json.ok, true);
      // The CLI run added its own entry.
      assert.equal(api.json.checked, headSeq + 1);
      assert.equal(api.json.problem, null);
    });
  });

  describe(`audit chain tampering on ${dialect}`, () => {
    let t: TestVault;
    let headSeq: number;

    // A fresh vault per case, so each case starts from an intact chain.
    async function freshVault(): Promise<void> {
      t = await openTestVault(dialect);
      await seedActivity(t);
      headSeq = (await readHead(t.vault.db.kysely)).seq;
    }
    afterEach(async () => destroyTestVault(t));

    it('names a changed entry', async () => {
      await freshVault();
      const middle = Math.floor(headSeq / 2);
      const target = await entryAt(t, middle);
      await t.vault.db.kysely.updateTable('aegis_audit_log').set({ actor: 'someone-else' }).where('seq', '=', middle).execute();

      const output = await expectCliNames(t, middle, target.id, 'changed');
      assert.match(output, /was changed after it was written/);

      const api = await call(t.app, 'GET', '/audit/verify', { token: t.adminToken });
      assert.equal(api.status, 200);
      assert.equal(api.json.ok, false);
      assert.equal(api.json.problem.seq, middle);
      assert.equal(api.json.problem.id, target.id);
      assert.equal(api.json.problem.reason, 'changed');
    });

    it('names a changed success flag', async () => {
      await freshVault();
      const failed = await t.vault.db.kysely.selectFrom('aegis_audit_log').select(['seq', 'id']).where('success', '=', false).orderBy('seq').executeTakeFirstOrThrow();
      await t.vault.db.kysely.updateTable('aegis_audit_log').set({ success: true, error_message: null }).where('id', '=', failed.id).execute();

      await expectCliNames(t, Number(failed.seq), failed.id, 'changed');
    });

    it('names a row inserted between', async () => {
      await freshVault();
      const after = Math.floor(headSeq / 2);
      const db = t.vault.db.kysely;
      // Make room at after + 1 in two steps, so no row ever shares a sequence number with another.
      await sql`update aegis_audit_log set seq = -(seq + 1) where seq > ${after}`.execute(db);
      await sql`update aegis_audit_log set seq = -seq where seq < 0`.execute(db);
      await db.updateTable('aegis_audit_head').set({ seq: headSeq + 1 }).where('id', '=', 1).execute();
      // prev_hash is unique, so the forged row cannot claim the real successor's link and gets its own.
      const forged = forgedRow(after + 1, crypto.randomBytes(32).toString('hex'), (await entryAt(t, after)).timestamp as string);
      await db.insertInto('aegis_audit_log').values(forged.row).execute();

      await expectCliNames(t, after + 1, forged.id, 'inserted_or_reordered');

      const api = await call(t.app, 'GET', '/audit/verify', { token: t.adminToken });
      assert.equal(api.json.ok, false);
      assert.equal(api.json.problem.id, forged.id);
    });

    it('names a row inserted after the head', async () => {
      await freshVault();
      const last = await entryAt(t, headSeq);
      const forged = forgedRow(headSeq + 1, last.entry_hash, new Date().toISOString());
      await t.vault.db.kysely.insertInto('aegis_audit_log').values(forged.row).execute();

      const output = await expectCliNames(t, headSeq + 1, forged.id, 'inserted_after_head');
      assert.match(output, /lies beyond the head/);

      const api = await call(t.app, 'GET', '/audit/verify', { token: t.adminToken });
      assert.equal(api.status, 200);
      assert.equal(api.json.problem.id, forged.id);
      assert.equal(api.json.problem.reason, 'inserted_after_head');
    });

    it('denied call fails closed', async () => {
      await freshVault();
      // A row planted at the next sequence number makes every append fail.
      const last = await entryAt(t, headSeq);
      await t.vault.db.kysely.insertInto('aegis_audit_log').values(forgedRow(headSeq + 1, last.entry_hash, new Date().toISOString()).row).execute();

      const denied = await call(t.app, 'GET', '/credentials/alpha', { token: 'aegis_000000000000_not-a-real-token' });
      assert.equal(denied.status, 503, denied.body);
      assert.equal(denied.json.code, 'audit_unavailable');
      const missing = await call(t.app, 'GET', '/credentials');
      assert.equal(missing.status, 503, missing.body);
      assert.ok(t.logs.text().includes('failed to write the audit entry of a denied request'));
    });

    it('names the entry after a gap', async () => {
      await freshVault();
      const middle = Math.floor(headSeq / 2);
      const next = await entryAt(t, middle + 1);
      await t.vault.db.kysely.deleteFrom('aegis_audit_log').where('seq', '=', middle).execute();

      const output = await expectCliNames(t, middle + 1, next.id, 'missing_before');
      assert.match(output, new RegExp(`follows entry ${middle - 1}: entry ${middle} was removed`));

      const api = await call(t.app, 'GET', '/audit/verify', { token: t.adminToken });
      assert.equal(api.json.problem.seq, middle + 1);
      assert.equal(api.json.problem.id, next.id);
      assert.equal(api.json.problem.reason, 'missing_before');
    });

    it('names a row with malformed details', async () => {
      await freshVault();
      const middle = Math.floor(headSeq / 2);
      const target = await entryAt(t, middle);
      // PostgreSQL stores jsonb, which takes only JSON: there the details become a JSON string instead of an object.
      const stored = dialect === 'sqlite' ? 'not json' : '"not json"';
      await t.vault.db.kysely.updateTable('aegis_audit_log').set({ details: stored }).where('seq', '=', middle).execute();

      const output = await expectCliNames(t, middle, target.id, 'changed');
      assert.match(output, /was changed after it was written/);
      const api = await call(t.app, 'GET', '/audit/verify', { token: t.adminToken });
      assert.equal(api.status, 200);
      assert.equal(api.json.problem.seq, middle);

      const log = await call(t.app, 'GET', '/audit/log?limit=1000', { token: t.adminToken });
      assert.equal(log.status, 200, log.body);
      assert.equal(log.json.log.find((entry: EntryView) => entry.seq === middle).details, 'not json');

      const exported = await call(t.app, 'GET', '/audit/export', { token: t.adminToken });
      assert.equal(exported.status, 200, exported.body);
      const line = exported.body.split('\n').find((text) => text.startsWith(`{"seq":${middle},`));
      assert.ok(line, `entry ${middle} is exported`);
      assert.equal(JSON.parse(line).details, 'not json');

      const file = `${t.dir}/malformed.jsonl`;
      const cli = await runCli(['audit', 'export', '--format', 'jsonl', '--output', file], t.env);
      assert.equal(cli.code, 0, cli.stderr);
      assert.ok(fs.readFileSync(file, 'utf8').includes(`{"seq":${middle},`));
    });

    it('reports a missing head row', async () => {
      await freshVault();
      await t.vault.db.kysely.deleteFrom('aegis_audit_head').execute();

      const text = await runCli(['audit', 'verify'], t.env);
      assert.equal(text.code, 1, text.stderr);
      assert.match(text.stdout, new RegExp(`head row \\(aegis_audit_head\\) is missing.*entries up to ${headSeq}, the last one stored, verify`));
      assert.doesNotMatch(text.stderr, /unexpected error/);

      const json = await runCli(['audit', 'verify', '--json'], t.env);
      assert.equal(json.code, 1, json.stderr);
      const report = JSON.parse(json.stdout);
      assert.equal(report.head_seq, null);
      assert.equal(report.problem.reason, 'head_missing');
      assert.equal(report.problem.seq, headSeq);

      const api = await call(t.app, 'GET', '/audit/verify', { token: t.adminToken });
      assert.equal(api.status, 200, api.body);
      assert.equal(api.json.ok, false);
      assert.equal(api.json.checked, headSeq);
      assert.equal(api.json.problem.reason, 'head_missing');
    });

    it('reports a missing tail', async () => {
      await freshVault();
      await t.vault.db.kysely.deleteFrom('aegis_audit_log').where('seq', '=', headSeq).execute();

      const result = await runCli(['audit', 'verify'], t.env);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stdout, new RegExp(`Entry ${headSeq} is missing: the chain ends at entry ${headSeq - 1} but the head records ${headSeq}`));

      // The CLI run appended its own entry after the gap, so the API now names that entry.
      const api = await call(t.app, 'GET', '/audit/verify', { token: t.adminToken });
      assert.equal(api.json.ok, false);
      assert.equal(api.json.problem.seq, headSeq + 1);
      assert.equal(api.json.problem.reason, 'missing_before');
    });
  });

  describe(`audit log filters on ${dialect}`, () => {
    let t: TestVault;
    let reader: string;
    let auditor: string;

    async function log(query: string): Promise<{ log: EntryView[]; total: number }> {
      const response = await call(t.app, 'GET', `/audit/log?${query}`, { token: auditor });
      assert.equal(response.status, 200, response.body);
      return response.json;
    }

    before(async () => {
      t = await openTestVault(dialect);
      reader = await tokenWith(t, 'ARIA', ['credentials:read']);
      auditor = await tokenWith(t, 'auditor', ['audit:read']);

      // Day 1 (2026-06-01): alpha is created.
      t.clock.set('2026-06-01T12:00:00.000Z');
      await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'alpha', credential_type: 'openAiApi', provider: 'n8n', value: 'a-1' } });
      // Day 2: beta is created and ARIA reads alpha.
      t.clock.set('2026-06-02T09:30:00.000Z');
      await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'beta', credential_type: 'openAiApi', provider: 'n8n', value: 'b-1' } });
      await call(t.app, 'GET', '/credentials/alpha', { token: reader });
      // Day 3: a denied reveal, an unknown credential and a bad token.
      t.clock.set('2026-06-03T18:00:00.000Z');
      assert.equal((await call(t.app, 'GET', '/credentials/alpha/value', { token: reader })).status, 403);
      assert.equal((await call(t.app, 'GET', '/credentials/ghost', { token: t.adminToken })).status, 404);
      assert.equal((await call(t.app, 'GET', '/credentials', { token: 'aegis_000000000000_not-a-real-token' })).status, 401);
      // Queries run on day 5, so their own audit_read entries fall outside the day 1 to 3 ranges.
      t.clock.set('2026-06-05T08:00:00.000Z');
    });
    after(async () => destroyTestVault(t));

    it('filters by credential name', async () => {
      const result = await log('credential_name=alpha');
      assert.equal(result.total, 3);
      assert.deepEqual(result.log.map((entry) => entry.action), ['revealed', 'read', 'created']);
      assert.ok(result.log.every((entry) => entry.credential_name === 'alpha'));
    });

    it('filters by action', async () => {
      const result = await log('action=created');
      assert.equal(result.total, 2);
      assert.deepEqual(result.log.map((entry) => entry.credential_name), ['beta', 'alpha']);
    });

    it('filters by actor', async () => {
      const result = await log('actor=ARIA');
      assert.equal(result.total, 2);
      assert.deepEqual(result.log.map((entry) => entry.action), ['revealed', 'read']);
      assert.deepEqual(result.log.map((entry) => entry.success), [false, true]);
    });

    it('filters by date range', async () => {
      const dayTwo = await log('start_date=2026-06-02T00:00:00Z&end_date=2026-06-02T23:59:59Z');
      assert.equal(dayTwo.total, 2);
      assert.deepEqual(dayTwo.log.map((entry) => entry.action), ['read', 'created']);
      assert.ok(dayTwo.log.every((entry) => entry.timestamp.startsWith('2026-06-02')));

      const fromDayThree = await log('start_date=2026-06-03T00:00:00Z&end_date=2026-06-04T00:00:00Z');
      assert.equal(fromDayThree.total, 3);

      const offsetForm = await log(`start_date=${encodeURIComponent('2026-06-02T02:00:00+02:00')}&end_date=${encodeURIComponent('2026-06-02T11:30:00+02:00')}`);
      assert.equal(offsetForm.total, 2, 'an offset is converted to UTC before comparing');
    });

    it('lists denied and failed calls', async () => {
      const result = await log('success=false&end_date=2026-06-04T00:00:00Z');
      assert.equal(result.total, 3);
      const byAction = new Map(result.log.map((entry) => [entry.credential_name + ':' + entry.action, entry]));

      const denied = byAction.get('alpha:revealed');
      assert.ok(denied, 'the denied reveal is listed');
      assert.equal(denied.actor, 'ARIA');
      assert.match(denied.error_message ?? '', /forbidden: missing scope credentials:reveal/);

      const missing = byAction.get('ghost:read');
      assert.ok(missing, 'the read of an unknown credential is listed');
      assert.match(missing.error_message ?? '', /credential_not_found/);

      const unauthenticated = result.log.find((entry) => entry.action === 'authenticate');
      assert.ok(unauthenticated, 'the bad token is listed');
      assert.equal(unauthenticated.actor, 'anonymous');
      assert.match(unauthenticated.error_message ?? '', /unauthorized/);

      for (const entry of result.log) assert.equal(entry.success, false);
    });

    it('pages with limit and offset', async () => {
      const range = 'end_date=2026-06-04T00:00:00Z';
      const all = await log(range);
      // Six calls plus the setup's token entries.
      assert.ok(all.total >= 6, `total ${all.total}`);
      assert.equal(all.log.length, all.total);
      const page = await log(`${range}&limit=2&offset=1`);
      assert.equal(page.total, all.total);
      assert.deepEqual(page.log.map((entry) => entry.id), all.log.slice(1, 3).map((entry) => entry.id));
      const beyond = await log(`${range}&limit=5&offset=${all.total}`);
      assert.deepEqual(beyond.log, []);
      assert.equal(beyond.total, all.total);
    });

    it('rejects start after end', async () => {
      const response = await call(t.app, 'GET', '/audit/log?start_date=2026-06-03T00:00:00Z&end_date=2026-06-02T00:00:00Z', { token: auditor });
      assert.equal(response.status, 400);
      assert.equal(response.json.field, 'querystring.start_date');
      assert.match(response.json.detail, /^querystring.start_date: must not be after end_date/);
    });

    it('rejects an invalid date', async () => {
      const response = await call(t.app, 'GET', '/audit/log?start_date=yesterday', { token: auditor });
      assert.equal(response.status, 400);
      assert.match(response.json.detail, /start_date/);
    });
  });

  describe(`requested names on ${dialect}`, () => {
    let t: TestVault;

    before(async () => {
      t = await openTestVault(dialect);
    });
    after(async () => destroyTestVault(t));

    async function lastEntry() {
      const row = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
      return { ...row, details: typeof row.details === 'string' ? JSON.parse(row.details) : row.details };
    }

    it('denied call records invalid name', async () => {
      const denied = await call(t.app, 'GET', '/credentials/%1B%5B31mEVIL%0Afake', { token: 'aegis_000000000000_not-a-real-token' });
      assert.equal(denied.status, 401);
      const entry = await lastEntry();
      assert.equal(entry.action, 'authenticate');
      assert.equal(entry.credential_name, '*');
      assert.equal(entry.details.requested_name, '"\\u001b[31mEVIL\\nfake"');
      assert.doesNotMatch(entry.details.requested_name, /[\u0000-\u001f]/);
    });

    it('failed call records invalid name', async () => {
      const rejected = await call(t.app, 'GET', `/credentials/${'x'.repeat(100)}%7F${'y'.repeat(100)}`, { token: t.adminToken });
      assert.equal(rejected.status, 400);
      const entry = await lastEntry();
      assert.equal(entry.action, 'read');
      assert.equal(entry.credential_name, '*');
      // Cut to 128 characters, then the DEL character escaped.
      assert.equal(entry.details.requested_name, `"${'x'.repeat(100)}\\u007f${'y'.repeat(27)}"`);
    });

    it('log filters by the * name', async () => {
      const response = await call(t.app, 'GET', '/audit/log?credential_name=*', { token: t.adminToken });
      assert.equal(response.status, 200, response.body);
      const names = new Set(response.json.log.map((entry: { credential_name: string }) => entry.credential_name));
      assert.deepEqual([...names], ['*']);
      const requested = response.json.log.map((entry: { details: { requested_name?: string } }) => entry.details.requested_name);
      assert.ok(requested.includes('"\\u001b[31mEVIL\\nfake"'), response.body);
    });

    it('valid name recorded as is', async () => {
      assert.equal((await call(t.app, 'GET', '/credentials/team%2Fghost', { token: 'aegis_000000000000_not-a-real-token' })).status, 401);
      const entry = await lastEntry();
      assert.equal(entry.credential_name, 'team/ghost');
      assert.deepEqual(entry.details, {});
    });

    it('CLI report escapes control characters', async () => {
      // An entry written before names were checked, or by a process writing the database directly.
      await t.vault.audit.record({ credentialName: '\u001b[31mEVIL\nfake', action: 'read', actor: 'ARIA\u009b', success: false });
      const day = t.clock.now().toISOString().slice(0, 10);
      const next = new Date(t.clock.now().getTime() + 86_400_000).toISOString().slice(0, 10);
      const report = await runCli(['audit', 'report', '--start-date', day, '--end-date', next], t.env);
      assert.equal(report.code, 0, report.stderr);
      assert.doesNotMatch(report.stdout, /[\u001b\u009b]/);
      assert.match(report.stdout, /\\u001b\[31mEVIL\\u000afake/);
      assert.match(report.stdout, /ARIA\\u009b/);
    });

    it('unpaired surrogate keeps chain valid', async () => {
      // The entry's error message stores the surrogate as U+FFFD, and its hash must cover that form.
      await t.vault.audit.record({ credentialName: '*', action: 'created', actor: 'ARIA', success: false, errorMessage: 'invalid_input: \ud800: is not a known field' });
      const entry = await lastEntry();
      assert.equal(entry.success, dialect === 'sqlite' ? 0 : false);
      assert.equal(entry.error_message, 'invalid_input: \ufffd: is not a known field');

      const verified = await call(t.app, 'GET', '/audit/verify', { token: t.adminToken });
      assert.equal(verified.status, 200, verified.body);
      assert.equal(verified.json.ok, true, verified.body);
    });

    it('unpaired surrogate in details keeps chain valid', async () => {
      await t.vault.audit.record({ credentialName: 'team/x', action: 'read', actor: 'ARIA', success: true, details: { note: 'a\udc00b', ['k\ud800']: 1 } });
      const entry = await lastEntry();
      assert.deepEqual(entry.details, { note: 'a\ufffdb', ['k\ufffd']: 1 });

      const verified = await call(t.app, 'GET', '/audit/verify', { token: t.adminToken });
      assert.equal(verified.status, 200, verified.body);
      assert.equal(verified.json.ok, true, verified.body);
    });
  });
}
