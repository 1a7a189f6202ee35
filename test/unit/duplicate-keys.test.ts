import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findDuplicateKey } from '../../src/lib/duplicate-keys.js';

describe('findDuplicateKey', () => {
  it('finds a repeated top-level key', () => {
    assert.deepEqual(findDuplicateKey('{"name": "a", "value": "x", "name": "b"}'), ['name']);
  });

  it('names the path of a nested key', () => {
    assert.deepEqual(findDuplicateKey('{"provider_config": {"test": {"url": "a", "url": "b"}}}'), ['provider_config', 'test', 'url']);
    assert.deepEqual(findDuplicateKey('{"list": [{"a": 1}, {"b": 1, "b": 2}]}'), ['list', '1', 'b']);
  });

  it('compares keys after unescaping', () => {
    assert.deepEqual(findDuplicateKey('{"value": "a", "\\u0076alue": "b"}'), ['value']);
  });

  it('accepts equal keys in separate objects', () => {
    assert.deepEqual(findDuplicateKey('{"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 1}, {"x": 2}]}'), undefined);
  });

  it('ignores quotes, brackets and commas inside strings', () => {
    assert.deepEqual(findDuplicateKey('{"a": "\\"b\\": 1, {[", "b": "\\\\", "c": "x,\\"a\\""}'), undefined);
    assert.deepEqual(findDuplicateKey('{"a": "\\\\", "a": 1}'), ['a']);
  });

  it('treats values equal to a key as values', () => {
    assert.deepEqual(findDuplicateKey('{"a": "a", "b": ["a", "b"]}'), undefined);
  });

  it('accepts scalars, arrays and empty objects', () => {
    for (const text of ['null', '1', '"x"', '[]', '{}', '[1, "a", {"a": 1}, {"a": 2}]']) assert.deepEqual(findDuplicateKey(text), undefined, text);
  });
});
