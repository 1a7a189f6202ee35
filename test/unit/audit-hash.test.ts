import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { entryHash, hashedFields, hashedJson } from '../../src/audit/chain.js';
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

/** Entries as appends make them: every field present, scalars and a JSON details object, which the shortcut writes itself. */
const storedEntry = fc.record({
  action: fc.string(),
  actor: fc.string(),
  credentialId: fc.option(fc.uuid(), { nil: null }),
  credentialName: fc.string(),
  details: fc.dictionary(fc.string(), fc.jsonValue()),
  errorMessage: fc.option(fc.string(), { nil: null }),
  id: fc.uuid(),
  ipAddress: fc.option(fc.ipV4(), { nil: null }),
  prevHash: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('hex')),
  seq: fc.integer({ min: 1 }),
  success: fc.boolean(),
  target: fc.option(fc.string(), { nil: null }),
  timestamp: fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
});

/** An entry with unsorted keys inside details, whose hash the chain code computed before the shortcut existed. */
const knownEntry = {
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
};

describe('audit entry hash input', () => {
  it('matches canonicalJson for stored entries', () => {
    fc.assert(
      fc.property(storedEntry, (entry) => {
        assert.equal(hashedJson(entry), canonicalJson(hashedFields(entry)));
      }),
      { numRuns: 5_000 },
    );
  });

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
    const text = hashedJson(knownEntry);
    assert.match(text, /"details":\{"alpha":\{"a":1,"b":2\},"zeta":1\}/);
  });

  // The hash the chain code gave this entry before the shortcut existed, so a change that alters the
  // hash input (and breaks every stored chain) fails here even if both paths change together.
  it('keeps the hash of a known entry', () => {
    const hash = entryHash(knownEntry);
    assert.equal(hash, 'dc2fed8fb3828e797ff95975d64154682ea72fd6eb69f0449e94da208c5e5a35');
  });
});
