import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { hashedFields, hashedJson } from '../../src/audit/chain.js';
import { canonicalJson } from '../../src/lib/json.js';

const field = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.date());
const entry = fc.record(
  {
    action: field,
    actor: field,
    credentialId: field,
    credentialName: field,
    details: fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.date()),
    errorMessage: field,
    id: field,
    ipAddress: field,
    prevHash: field,
    seq: field,
    success: field,
    target: field,
    timestamp: field,
  },
  { requiredKeys: [] },
);

describe('audit entry hash input', () => {
  // Stored chains were hashed over canonicalJson(hashedFields(entry)), so the shortcut must write the same text.
  it('matches canonicalJson for any fields', () => {
    fc.assert(
      fc.property(entry, (generated) => {
        const input = generated as unknown as Parameters<typeof hashedJson>[0];
        assert.equal(hashedJson(input), canonicalJson(hashedFields(input)));
      }),
      { numRuns: 5_000 },
    );
  });

  it('sorts keys inside details', () => {
    const text = hashedJson({
      id: 'a',
      seq: 1,
      timestamp: '2026-12-05T00:00:00.000Z',
      credentialId: null,
      credentialName: 'stripe',
      action: 'read',
      actor: 'agent',
      target: null,
      details: { zeta: 1, alpha: { b: 2, a: 1 } },
      ipAddress: '127.0.0.1',
      success: true,
      errorMessage: null,
      prevHash: '0'.repeat(64),
    });
    assert.match(text, /"details":\{"alpha":\{"a":1,"b":2\},"zeta":1\}/);
  });
});
