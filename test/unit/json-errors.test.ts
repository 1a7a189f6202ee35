import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeJsonError } from '../../src/lib/json.js';

function parseError(text: string): unknown {
  try {
    JSON.parse(text);
  } catch (error) {
    return error;
  }
  throw new Error(`${text} parsed`);
}

describe('JSON error descriptions', () => {
  it('gives the position without the text', () => {
    const described = describeJsonError(parseError('{"token": "sk-live-123" "next": 1}'));
    assert.equal(described, 'not valid JSON at character 25');
    assert.ok(!described.includes('sk-live'));
  });

  it('quotes nothing when V8 gives no position', () => {
    assert.equal(describeJsonError(parseError('sk-live-123')), 'not valid JSON');
  });
});
