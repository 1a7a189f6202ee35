import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from '../../src/lib/errors.js';
import { checkValuePolicy, generateValue } from '../../src/rotation/value-policy.js';

const alphanumeric = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

describe('value policy', () => {
  it('rejects inherited member names as alphabets', () => {
    for (const alphabet of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf']) {
      assert.throws(
        () => checkValuePolicy({ alphabet }),
        (error: unknown) => error instanceof ValidationError && error.field === 'value_policy.alphabet',
        alphabet,
      );
      assert.throws(() => generateValue({ alphabet }), ValidationError, alphabet);
    }
  });

  it('generates values of the policy length and alphabet', () => {
    for (const [alphabet, characters] of [
      ['hex', '0123456789abcdef'],
      ['alphanumeric', alphanumeric],
      ['chars:!%&()*+,-./0123456789', '!%&()*+,-./0123456789'],
    ] as const) {
      for (let run = 0; run < 50; run += 1) {
        const value = generateValue({ alphabet, length: 16, prefix: 'sk_' });
        assert.equal(value.length, 19, `${alphabet}: ${value.length} characters`);
        assert.ok(value.startsWith('sk_'), alphabet);
        for (const character of value.slice(3)) assert.ok(characters.includes(character), `${alphabet}: ${JSON.stringify(character)} is outside the alphabet`);
      }
    }
  });

  it('draws each character of the alphabet equally often', () => {
    // 62 characters: a modulo of one random byte (256 = 4 × 62 + 8) would give the first 8 a quarter more weight.
    const counts = new Map<string, number>();
    const draws = 62 * 1000;
    for (let run = 0; run < draws / 1000; run += 1) {
      for (const character of generateValue({ length: 1000 })) counts.set(character, (counts.get(character) ?? 0) + 1);
    }
    assert.equal(counts.size, 62);
    // Each count is binomial with mean 1000 and standard deviation about 31, so ±200 is more than 6 deviations.
    for (const [character, count] of counts) assert.ok(count > 800 && count < 1200, `${character} drawn ${count} times, expected about 1000`);
    const chiSquare = [...counts.values()].reduce((sum, count) => sum + (count - 1000) ** 2 / 1000, 0);
    // 61 degrees of freedom: the 99.99th percentile is about 111.
    assert.ok(chiSquare < 120, `chi-square ${chiSquare.toFixed(1)} over 62 characters`);
  });
});
