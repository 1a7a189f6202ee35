import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { sql } from 'kysely';
import { after, before, describe, it } from 'node:test';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const unicodeValues = [
  'pässwörd-ünïcödé',
  '密码🔐🗝️ with emoji and 漢字',
  'e\u0301 combining, \u202Eright-to-left\u202C, zero\u200Bwidth',
  'line one\nline two\ttab\r\nwindows',
  'nul\u0000inside',
  '"quotes" \\backslash\\ {json: [1,2]}',
];

for (const dialect of await testDialects()) {
  describe(`storage on ${dialect}`, () => {
    let t: TestVault;
    before(async () => {
      t = await openTestVault(dialect);
    });
    after(async () => destroyTestVault(t));

    it('round-trips Unicode values byte for byte', async () => {
      for (const [index, value] of unicodeValues.entries()) {
        const name = `unicode-${index}`;
        const created = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name, credential_type: 'test', provider: 'api', value } });
        assert.equal(created.status, 201, created.body);
        const revealed = await call(t.app, 'GET', `/credentials/${name}/value`, { token: t.adminToken });
        assert.equal(Buffer.compare(Buffer.from(revealed.json.value, 'utf8'), Buffer.from(value, 'utf8')), 0, name);
      }
    });

    it('round-trips a 64 KiB value', async () => {
      const value = crypto.randomBytes(48 * 1024).toString('base64').slice(0, 64 * 1024);
      assert.equal(Buffer.byteLength(value), 65_536);
      const created = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'big', credential_type: 'test', provider: 'api', value } });
      assert.equal(created.status, 201);
      const revealed = await call(t.app, 'GET', '/credentials/big/value', { token: t.adminToken });
      assert.equal(revealed.json.value, value);
    });

    it('rejects a value one byte over', async () => {
      const value = 'é'.repeat(32 * 1024) + 'x';
      const created = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'too-big', credential_type: 'test', provider: 'api', value } });
      assert.equal(created.status, 413);
      assert.equal(created.json.field, 'value');
      assert.equal((await call(t.app, 'GET', '/credentials/too-big', { token: t.adminToken })).status, 404);
    });

    it('rejects a second current version', async () => {
      const credential = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'big').executeTakeFirstOrThrow();
      await assert.rejects(
        t.vault.db.kysely
          .insertInto('aegis_credential_versions')
          .values({ id: crypto.randomUUID(), credential_id: credential.id, version: 2, created_at: t.clock.now().toISOString(), is_current: true, state: 'committed' })
          .execute(),
      );
      const current = await t.vault.db.kysely
        .selectFrom('aegis_credential_versions')
        .select('version')
        .where('credential_id', '=', credential.id)
        .where('is_current', '=', true)
        .execute();
      assert.deepEqual(current.map((row) => row.version), [1]);
    });

    it('logs an unreachable database without a stack', async () => {
      const registry = t.vault.registry as { get: (...args: unknown[]) => Promise<unknown> };
      const original = registry.get;
      registry.get = async () => {
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      };
      try {
        const read = await call(t.app, 'GET', '/credentials/big', { token: t.adminToken });
        assert.equal(read.status, 503, read.body);
        assert.equal(read.json.code, 'database_unavailable');
      } finally {
        registry.get = original;
      }
      const line = t.logs.text().split('\n').reverse().find((text) => text.includes('"request failed"'));
      assert.ok(line, t.logs.text());
      assert.match(line, /"code":"ECONNREFUSED"/);
      assert.doesNotMatch(line, /"stack"/);
    });

    it('fails a call whose audit entry cannot be written', async () => {
      await blockAuditInserts(t);
      try {
        const created = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'unaudited', credential_type: 'test', provider: 'api', value: 'v' } });
        assert.ok(created.status >= 500, `expected a 5xx, got ${created.status}`);
        const read = await call(t.app, 'GET', '/credentials/big', { token: t.adminToken });
        assert.ok(read.status >= 500, `expected a 5xx, got ${read.status}`);
        assert.ok(!read.body.includes('credential_details'));
      } finally {
        await unblockAuditInserts(t);
      }
      const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('id').where('name', '=', 'unaudited').executeTakeFirst();
      assert.equal(row, undefined);
    });
  });
}

async function blockAuditInserts(t: TestVault): Promise<void> {
  const db = t.vault.db.kysely;
  if (t.dialect === 'sqlite') {
    await sql`create trigger block_audit before insert on aegis_audit_log begin select raise(abort, 'audit blocked by test'); end`.execute(db);
    return;
  }
  await sql`create function block_audit() returns trigger language plpgsql as $$ begin raise exception 'audit blocked by test'; end $$`.execute(db);
  await sql`create trigger block_audit before insert on aegis_audit_log for each row execute function block_audit()`.execute(db);
}

async function unblockAuditInserts(t: TestVault): Promise<void> {
  const db = t.vault.db.kysely;
  if (t.dialect === 'sqlite') {
    await sql`drop trigger block_audit`.execute(db);
    return;
  }
  await sql`drop trigger block_audit on aegis_audit_log`.execute(db);
  await sql`drop function block_audit()`.execute(db);
}
