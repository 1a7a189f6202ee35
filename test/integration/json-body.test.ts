import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

// Body parsing happens before any handler or database call, so one database is enough.
describe('JSON bodies', () => {
  let t: TestVault;

  before(async () => {
    t = await openTestVault('sqlite');
  });

  after(async () => {
    if (t) await destroyTestVault(t);
  });

  const send = (method: 'POST' | 'DELETE', url: string, payload: Buffer | string, contentType = 'application/json') =>
    t.app.inject({ method, url, headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': contentType }, payload });

  const storedNames = async () => (await t.vault.db.kysely.selectFrom('aegis_credentials').select('name').execute()).map((row) => row.name);

  it('rejects bytes that are not UTF-8', async () => {
    const before = await storedNames();
    const payload = Buffer.concat([Buffer.from('{"name":"json/latin","credential_type":"apiKey","provider":"api","value":"SEC'), Buffer.from([0xff, 0xfe]), Buffer.from('RET"}')]);
    const response = await send('POST', '/credentials', payload);
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, 'body');
    assert.match(response.json().detail, /^body: must be UTF-8/);
    assert.deepEqual(await storedNames(), before);
  });

  it('rejects a charset other than UTF-8', async () => {
    const payload = Buffer.from('{"name":"json/latin","credential_type":"apiKey","provider":"api","value":"caf\xe9"}', 'latin1');
    const response = await send('POST', '/credentials', payload, 'application/json; charset=iso-8859-1');
    assert.equal(response.statusCode, 415, response.body);
    assert.equal(response.json().code, 'unsupported_media_type');
    assert.equal(response.json().field, 'body');
    assert.ok(!(await storedNames()).includes('json/latin'));
  });

  it('reads the charset parameter as RFC 9110 does', async () => {
    const body = (name: string) => JSON.stringify({ name, credential_type: 'apiKey', provider: 'api', value: 'ascii-value' });
    const quoted = await send('POST', '/credentials', body('json/quoted'), 'application/json; charset="UTF-8"');
    assert.equal(quoted.statusCode, 201, quoted.body);
    const ascii = await send('POST', '/credentials', body('json/ascii'), 'application/json; charset=us-ascii');
    assert.equal(ascii.statusCode, 201, ascii.body);
    const hidden = await send('POST', '/credentials', body('json/hidden'), 'application/json; foo="x;charset=utf-8"; charset=iso-8859-1');
    assert.equal(hidden.statusCode, 415, hidden.body);
    assert.ok(!(await storedNames()).includes('json/hidden'));
  });

  it('keeps a UTF-8 value byte for byte', async () => {
    const value = 'café-ключ-🔑';
    const body = JSON.stringify({ name: 'json/utf8', credential_type: 'apiKey', provider: 'api', value });
    const created = await send('POST', '/credentials', Buffer.from(body, 'utf8'), 'application/json; charset=UTF-8');
    assert.equal(created.statusCode, 201, created.body);
    const revealed = await call(t.app, 'GET', '/credentials/json%2Futf8/value', { token: t.adminToken });
    assert.equal(revealed.json.value, value);
  });

  it('takes an empty body as none where the route takes none', async () => {
    const retired = await send('DELETE', '/credentials/json%2Futf8', '');
    assert.equal(retired.statusCode, 200, retired.body);
    const created = await send('POST', '/credentials', '');
    assert.equal(created.statusCode, 400, created.body);
    assert.equal(created.json().code, 'invalid_json');
  });

  it('takes an empty body on GET', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/credentials', headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' }, payload: '' });
    assert.equal(response.statusCode, 200, response.body);
  });

  it('rejects a chunked body on GET', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/credentials', headers: { authorization: `Bearer ${t.adminToken}`, 'transfer-encoding': 'chunked' } });
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, 'body');
  });

  it('still rejects prototype keys', async () => {
    const response = await send('POST', '/credentials', '{"name":"json/proto","credential_type":"x","__proto__":{"admin":true}}');
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, 'invalid_json');
    assert.ok(!(await storedNames()).includes('json/proto'));
  });

  it('rejects a repeated key', async () => {
    const response = await send('POST', '/credentials', '{"name":"json/first","credential_type":"x","provider":"api","name":"json/second"}');
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, 'invalid_input');
    assert.equal(response.json().field, 'name');
    assert.match(response.json().detail, /^name: is given twice in one JSON object/);
    assert.ok(!(await storedNames()).includes('json/first'));
    assert.ok(!(await storedNames()).includes('json/second'));
  });

  it('rejects a repeated nested key', async () => {
    const response = await send('POST', '/credentials', '{"name":"json/nested","credential_type":"x","provider":"api","metadata":{"team":"a","team":"b"}}');
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, 'metadata.team');
    assert.ok(!(await storedNames()).includes('json/nested'));
  });

  it('does not echo an odd repeated key', async () => {
    const response = await send('POST', '/credentials', '{"name":"json/odd","credential_type":"x","provider":"api","metadata":{"\\u001b[2J":1,"\\u001b[2J":2}}');
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, 'body');
    assert.doesNotMatch(response.body, /2J/);
  });
});
