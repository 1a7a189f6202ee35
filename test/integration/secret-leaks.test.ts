import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { secretForms } from '../../src/lib/redact.js';
import { testDialects } from '../helpers/databases.js';
import { snapshotDatabase } from '../helpers/db-snapshot.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

type Response = Awaited<ReturnType<typeof call>>;

/** Values with characters that change under JSON, URL and base64 encoding, each with a random part. */
function makeSecrets(label: string): string[] {
  const random = () => crypto.randomBytes(18).toString('base64url');
  return [
    `sk-${label}-${random()}`,
    crypto.randomBytes(32).toString('hex'),
    `pässwörd-ключ-🔑-${label}-${random()}`,
    `a+b/c?d=e&f#g%h i=${label}${random()}`,
    `quote"back\\slash<tag>&'${label}${random()}`,
    `${label}-${random().repeat(40)}`,
  ];
}

/** Returns the forms a value can take in a log line, JSON body or header: plain, base64, base64url, URL-encoded and JSON-escaped. */
function leakForms(secret: string): string[] {
  const forms = new Set(secretForms(secret));
  forms.add(Buffer.from(secret, 'utf8').toString('base64url'));
  forms.add(JSON.stringify(secret).slice(1, -1));
  return [...forms];
}

/** Lists each form of each secret found in the text, with where it was found. */
function findLeaks(where: string, text: string, secrets: ReadonlyArray<string>): string[] {
  const leaks: string[] = [];
  for (const secret of secrets) {
    for (const form of leakForms(secret)) {
      if (text.includes(form)) leaks.push(`${where} contains ${JSON.stringify(form.slice(0, 40))}`);
    }
  }
  return leaks;
}

for (const dialect of await testDialects()) {
  describe(`secret leaks on ${dialect}`, () => {
    let t: TestVault;
    let agent: string;
    const firstValues = makeSecrets('first');
    const secondValues = makeSecrets('second');
    const allValues = [...firstValues, ...secondValues];
    const names = firstValues.map((_, index) => `leak/cred-${index}`);
    const paths = names.map((name) => encodeURIComponent(name));
    /** Every response except successful reveals, which are the one place a value may appear. */
    const responses: Array<{ label: string; response: Response }> = [];
    const reveals: Array<{ label: string; response: Response; expected: string }> = [];

    async function send(label: string, ...args: Parameters<typeof call>): Promise<Response> {
      const response = await call(...args);
      responses.push({ label, response });
      return response;
    }

    before(async () => {
      // Trace level, so any log call on any path is captured.
      t = await openTestVault(dialect, { env: { AEGIS_LOG_LEVEL: 'trace' } });
      agent = await tokenWith(t, 'ARIA', ['credentials:read', 'credentials:write']);
    });
    after(async () => destroyTestVault(t));

    it('creates, reads and lists', async () => {
      for (const [index, name] of names.entries()) {
        const created = await send(`create ${name}`, t.app, 'POST', '/credentials', {
          token: t.adminToken,
          body: { name, credential_type: 'httpHeaderAuth', provider: 'api', value: firstValues[index], tags: ['leak'] },
        });
        assert.equal(created.status, 201, created.body);
        assert.equal((await send(`read ${name}`, t.app, 'GET', `/credentials/${paths[index]}`, { token: agent })).status, 200);
      }
      const list = await send('list', t.app, 'GET', '/credentials?tag=leak', { token: agent });
      assert.equal(list.json.total, names.length);

      // Reads that arrive together start the audit writer thread on SQLite, which writes the later groups.
      const together = await Promise.all(paths.map((path, index) => send(`read together ${names[index]}`, t.app, 'GET', `/credentials/${path}`, { token: agent })));
      for (const response of together) assert.equal(response.status, 200, response.body);
      if (dialect === 'sqlite') assert.notEqual(t.vault.audit.writerState, 'stopped');
    });

    it('updates to new values', async () => {
      for (const [index, name] of names.entries()) {
        const patched = await send(`patch ${name}`, t.app, 'PATCH', `/credentials/${paths[index]}`, {
          token: agent,
          body: { value: secondValues[index], description: 'rotated by hand' },
        });
        assert.equal(patched.status, 200, patched.body);
        const versions = await send(`versions ${name}`, t.app, 'GET', `/credentials/${paths[index]}/versions`, { token: agent });
        assert.equal(versions.json.total, 2);
      }
    });

    it('fails calls carrying values', async () => {
      const value = firstValues[0]!;
      const name = names[0]!;
      const failures: Array<[string, Promise<Response>, number]> = [
        ['duplicate create', send('duplicate create', t.app, 'POST', '/credentials', { token: t.adminToken, body: { name, credential_type: 'x', value } }), 409],
        ['unknown field', send('unknown field', t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'leak/new', credential_type: 'x', value, colour: 1 } }), 400],
        ['wrong type', send('wrong type', t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'leak/new', credential_type: 'x', value, rotation_interval_hours: '12' } }), 400],
        ['NUL in metadata', send('NUL in metadata', t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'leak/new', credential_type: 'x', value, metadata: { a: '\u0000' } } }), 400],
        ['malformed JSON', send('malformed JSON', t.app, 'POST', '/credentials', { token: t.adminToken, rawBody: `{"name": "leak/new", "value": ${JSON.stringify(value)}, ` }), 400],
        ['text body', send('text body', t.app, 'POST', '/credentials', { token: t.adminToken, rawBody: value, headers: { 'content-type': 'text/plain' } }), 415],
        ['body too large', send('body too large', t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'leak/new', credential_type: 'x', value: value.repeat(20_000) } }), 413],
        ['value too large', send('value too large', t.app, 'PATCH', `/credentials/${paths[0]}`, { token: t.adminToken, body: { value: value.repeat(Math.ceil(65_537 / value.length)) } }), 413],
        ['patch unknown name', send('patch unknown name', t.app, 'PATCH', '/credentials/leak%2Fmissing', { token: agent, body: { value } }), 404],
        ['no token', send('no token', t.app, 'POST', '/credentials', { body: { name: 'leak/new', credential_type: 'x', value } }), 401],
        ['value as token', send('value as token', t.app, 'GET', '/credentials', { token: value }), 401],
        ['agent reveal', send('agent reveal', t.app, 'GET', `/credentials/${paths[0]}/value`, { token: agent }), 403],
      ];
      for (const [label, pending, status] of failures) {
        const response = await pending;
        assert.equal(response.status, status, `${label}: ${response.body}`);
      }

      const retired = await send('retire', t.app, 'DELETE', `/credentials/${paths[5]}`, { token: agent });
      assert.equal(retired.status, 200, retired.body);
      const afterRetire = await send('patch retired', t.app, 'PATCH', `/credentials/${paths[5]}`, { token: agent, body: { value } });
      assert.equal(afterRetire.status, 409, afterRetire.body);
    });

    it('reveals current and earlier values', async () => {
      for (const [index] of names.entries()) {
        const current = await call(t.app, 'GET', `/credentials/${paths[index]}/value`, { token: t.adminToken });
        reveals.push({ label: `reveal ${names[index]}`, response: current, expected: secondValues[index]! });
        const first = await call(t.app, 'GET', `/credentials/${paths[index]}/value?version=1`, { token: t.adminToken });
        reveals.push({ label: `reveal ${names[index]} v1`, response: first, expected: firstValues[index]! });
      }
      for (const reveal of reveals) {
        assert.equal(reveal.response.status, 200, `${reveal.label}: ${reveal.response.body}`);
        assert.equal(reveal.response.json.value, reveal.expected, reveal.label);
        // The search below must be able to find a value, and the reveal body contains one in its JSON form.
        assert.ok(findLeaks(reveal.label, reveal.response.body, [reveal.expected]).length > 0, `${reveal.label} search found nothing`);
      }
    });

    it('fails decryption without leaking', async () => {
      // A ciphertext copied from another credential must fail to open, and the 500 and its log line stay clean.
      const rows = await t.vault.db.kysely.selectFrom('aegis_credentials').select(['id', 'name', 'encrypted_value']).where('name', 'in', [names[0]!, names[1]!]).execute();
      const source = rows.find((row) => row.name === names[0])!;
      const target = rows.find((row) => row.name === names[1])!;
      await t.vault.db.kysely
        .updateTable('aegis_credential_versions')
        .set({ encrypted_value: source.encrypted_value })
        .where('credential_id', '=', target.id)
        .where('is_current', '=', dialect === 'postgres' ? (true as never) : (1 as never))
        .execute();
      const revealed = await send('reveal copied ciphertext', t.app, 'GET', `/credentials/${paths[1]}/value`, { token: t.adminToken });
      assert.equal(revealed.status, 500, revealed.body);
      assert.equal(revealed.json.code, 'decryption_failed');
    });

    it('keeps values out of logs', () => {
      assert.ok(t.logs.lines.length > 0, 'the vault logged nothing, so the search would prove nothing');
      assert.deepEqual(findLeaks('logs', t.logs.text(), allValues), []);
    });

    it('keeps values out of responses', () => {
      assert.ok(responses.length > 30);
      const leaks = responses.flatMap(({ label, response }) => [
        ...findLeaks(`${label} body`, response.body, allValues),
        ...findLeaks(`${label} headers`, JSON.stringify(response.headers), allValues),
      ]);
      assert.deepEqual(leaks, []);
    });

    it('keeps values out of audit rows', async () => {
      const rows = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().execute();
      assert.ok(rows.length > 30);
      const leaks = rows.flatMap((row) => findLeaks(`audit row ${row.seq} ${row.action}`, JSON.stringify(row), allValues));
      assert.deepEqual(leaks, []);
    });

    it('stores only ciphertext', async () => {
      const credentials = await t.vault.db.kysely.selectFrom('aegis_credentials').select(['name', 'encrypted_value']).execute();
      const versions = await t.vault.db.kysely.selectFrom('aegis_credential_versions').select(['version', 'encrypted_value']).execute();
      assert.equal(credentials.length, names.length);
      assert.equal(versions.length, names.length * 2);
      for (const row of [...credentials, ...versions]) {
        assert.ok(row.encrypted_value, `a row without ciphertext: ${JSON.stringify(row)}`);
        assert.deepEqual(findLeaks('encrypted_value', row.encrypted_value, allValues), []);
      }

      // Every other column of every table, audit log included.
      const snapshot = await snapshotDatabase(t.vault.db);
      assert.deepEqual(findLeaks('database', JSON.stringify(snapshot), allValues), []);
    });
  });
}
