import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkApiConfig, fill, fillJson, headerThatCannotCarry, readPointer } from '../../src/providers/api/api-template.js';
import { ValidationError } from '../../src/lib/errors.js';

const testRequest = { method: 'GET', url: 'http://127.0.0.1:9/check' };
const rotateRequest = { method: 'POST', url: 'http://127.0.0.1:9/rotate', value_pointer: '/key' };

/** Asserts that `run` throws a ValidationError whose field is `field`. */
function assertField(run: () => unknown, field: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ValidationError, `expected a ValidationError, got ${String(error)}`);
    assert.equal(error.field, field);
    assert.ok(error.message.startsWith(`${field}: `), error.message);
    return true;
  });
}

describe('checkApiConfig', () => {
  it('accepts a full configuration', () => {
    const config = {
      test: { ...testRequest, headers: { authorization: 'Bearer {{value}}' }, expected_status: [200, 204] },
      rotate: { ...rotateRequest, body: { scope: 'all', old: '{{value}}' } },
      revoke: { method: 'DELETE', url: 'http://127.0.0.1:9/keys/{{old_value}}', expected_status: 204 },
      timeout_ms: 5000,
    };
    assert.deepEqual(checkApiConfig(config), config);
  });

  it('names the invalid field', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ extra: 1 }, 'provider_config.extra'],
      [{ test: 'GET /' }, 'provider_config.test'],
      [{ test: { ...testRequest, method: 'TRACE' } }, 'provider_config.test.method'],
      [{ test: { method: 'GET' } }, 'provider_config.test.url'],
      [{ test: { ...testRequest, url: '/relative' } }, 'provider_config.test.url'],
      [{ test: { ...testRequest, url: 'ftp://127.0.0.1/x' } }, 'provider_config.test.url'],
      [{ test: { ...testRequest, url: 'http://user:{{value}}@127.0.0.1/x' } }, 'provider_config.test.url'],
      [{ test: { ...testRequest, url: 'http://agent@127.0.0.1/x' } }, 'provider_config.test.url'],
      [{ test: { ...testRequest, headers: { a: 1 } } }, 'provider_config.test.headers'],
      [{ test: { ...testRequest, headers: { 'bad name': 'x' } } }, 'provider_config.test.headers'],
      [{ test: { ...testRequest, query: ['a'] } }, 'provider_config.test.query'],
      [{ test: { ...testRequest, expected_status: 700 } }, 'provider_config.test.expected_status'],
      [{ test: { ...testRequest, expected_status: [] } }, 'provider_config.test.expected_status'],
      [{ test: { ...testRequest, body: { a: 1 } } }, 'provider_config.test.body'],
      [{ test: { ...testRequest, unknown_field: 1 } }, 'provider_config.test.unknown_field'],
      [{ rotate: { method: 'POST', url: 'http://127.0.0.1:9/rotate' } }, 'provider_config.rotate.value_pointer'],
      [{ rotate: { ...rotateRequest, value_pointer: 'key' } }, 'provider_config.rotate.value_pointer'],
      [{ rotate: { ...rotateRequest, value_pointer: '/a~2' } }, 'provider_config.rotate.value_pointer'],
      [{ rotate: { ...rotateRequest, value_pointer: '' } }, 'provider_config.rotate.value_pointer'],
      [{ revoke: { method: 'DELETE' } }, 'provider_config.revoke.url'],
      [{ timeout_ms: 50 }, 'provider_config.timeout_ms'],
      [{ timeout_ms: 1.5 }, 'provider_config.timeout_ms'],
    ];
    for (const [config, field] of cases) assertField(() => checkApiConfig(config), field);
  });

  it('accepts placeholders in the URL', () => {
    const checked = checkApiConfig({ revoke: { method: 'DELETE', url: 'https://127.0.0.1/keys/{{old_value}}?new={{new_value}}' } });
    assert.equal(checked.revoke?.url, 'https://127.0.0.1/keys/{{old_value}}?new={{new_value}}');
  });

  it('rejects a long bad pointer quickly', () => {
    // The old pattern backtracked exponentially here: 26 slashes took seconds, 40 would take days.
    const pointer = `${'/'.repeat(5000)}~`;
    assertField(() => checkApiConfig({ rotate: { ...rotateRequest, value_pointer: pointer } }), 'provider_config.rotate.value_pointer');
  });
});

describe('fill and fillJson', () => {
  const values = { value: 'cur rent', old_value: 'old/1', new_value: 'new&2' };

  it('fills every placeholder', () => {
    assert.equal(fill('{{value}}|{{old_value}}|{{new_value}}|{{value}}', values), 'cur rent|old/1|new&2|cur rent');
  });

  it('encodes values for URLs', () => {
    assert.equal(fill('/keys/{{old_value}}?n={{new_value}}', values, true), '/keys/old%2F1?n=new%262');
  });

  it('fills a missing value as empty', () => {
    assert.equal(fill('a{{old_value}}b', { value: 'x' }), 'ab');
    assert.equal(fill('a{{old_value}}b', { old_value: null }), 'ab');
  });

  it('leaves other braces alone', () => {
    assert.equal(fill('{{other}} {value} {{ value }}', values), '{{other}} {value} {{ value }}');
  });

  it('fills strings inside JSON', () => {
    const body = { key: '{{value}}', nested: { list: ['{{old_value}}', 7, true, null] }, '{{value}}': 'keys stay' };
    assert.deepEqual(fillJson(body, values), { key: 'cur rent', nested: { list: ['old/1', 7, true, null] }, '{{value}}': 'keys stay' });
  });

  it('leaves the template unchanged', () => {
    const body = { key: '{{value}}' };
    fillJson(body, values);
    assert.deepEqual(body, { key: '{{value}}' });
  });
});

describe('readPointer', () => {
  // The example document of RFC 6901, section 5.
  const document = { foo: ['bar', 'baz'], '': 0, 'a/b': 1, 'c%d': 2, 'e^f': 3, 'g|h': 4, 'i\\j': 5, 'k"l': 6, ' ': 7, 'm~n': 8 };

  it('reads the RFC 6901 examples', () => {
    assert.deepEqual(readPointer(document, ''), document);
    assert.deepEqual(readPointer(document, '/foo'), ['bar', 'baz']);
    assert.equal(readPointer(document, '/foo/0'), 'bar');
    assert.equal(readPointer(document, '/'), 0);
    assert.equal(readPointer(document, '/a~1b'), 1);
    assert.equal(readPointer(document, '/c%d'), 2);
    assert.equal(readPointer(document, '/e^f'), 3);
    assert.equal(readPointer(document, '/g|h'), 4);
    assert.equal(readPointer(document, '/i\\j'), 5);
    assert.equal(readPointer(document, '/k"l'), 6);
    assert.equal(readPointer(document, '/ '), 7);
    assert.equal(readPointer(document, '/m~0n'), 8);
  });

  it('decodes ~01 as ~1', () => {
    // ~1 is decoded before ~0, so ~01 is the key "~1" and not "/".
    assert.equal(readPointer({ '~1': 'tilde-one', '/': 'slash' }, '/~01'), 'tilde-one');
  });

  it('returns undefined for missing paths', () => {
    assert.equal(readPointer(document, '/missing'), undefined);
    assert.equal(readPointer(document, '/foo/2'), undefined);
    assert.equal(readPointer(document, '/foo/0/length'), undefined);
    assert.equal(readPointer({ a: null }, '/a/b'), undefined);
  });

  it('takes only plain array indexes', () => {
    assert.equal(readPointer(document, '/foo/length'), undefined);
    assert.equal(readPointer(document, '/foo/01'), undefined);
    assert.equal(readPointer(document, '/foo/-'), undefined);
    assert.equal(readPointer(document, '/foo/1'), 'baz');
  });

  it('ignores inherited properties', () => {
    assert.equal(readPointer({}, '/constructor'), undefined);
    assert.equal(readPointer({}, '/__proto__'), undefined);
  });

  it('reads a nested key', () => {
    assert.equal(readPointer({ data: { keys: [{ secret: 'sk-new' }] } }, '/data/keys/0/secret'), 'sk-new');
  });
});

describe('headerThatCannotCarry', () => {
  const config = checkApiConfig({
    test: { method: 'GET', url: 'https://api.example.com/me', headers: { Host: 'api.internal', Connection: 'close', authorization: 'Bearer {{value}}' } },
    revoke: { method: 'DELETE', url: 'https://api.example.com/keys', headers: { authorization: '{{basic_auth:admin}}' } },
  });

  it('names the header for values a header cannot hold', () => {
    for (const value of ['line\nbreak', 'tab\u0001control', 'euro€']) {
      assert.equal(headerThatCannotCarry(config, value), 'provider_config.test.headers.authorization', JSON.stringify(value));
    }
  });

  it('passes values a header can hold', () => {
    for (const value of ['plain-key_123', 'with space\tand tab', 'latin1 é']) assert.equal(headerThatCannotCarry(config, value), undefined, value);
  });

  it('passes any value sent through basic_auth only', () => {
    const basicOnly = checkApiConfig({ test: { method: 'GET', url: 'https://api.example.com/me', headers: { authorization: '{{basic_auth:admin}}' } } });
    assert.equal(headerThatCannotCarry(basicOnly, 'multi\nline'), undefined);
  });
});
