import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EnvelopeError, formatEnvelope, parseEnvelope } from '../../src/crypto/envelope.js';
import { Keyring, KeyUnavailableError } from '../../src/crypto/keyring.js';

const keyA = crypto.randomBytes(32);
const keyB = crypto.randomBytes(32);
const context = { credentialId: '0b7f6d4e-3a57-4c4e-9d59-1f1b8c2f0a11', version: 3 };
const base64UrlAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function keyring(): Keyring {
  return new Keyring(
    new Map([
      ['mk_a', keyA],
      ['mk_b', keyB],
    ]),
  );
}

/** Runs `open` and returns the error it threw, failing the test when it succeeded. */
async function openError(ring: Keyring, envelope: string, ctx = context): Promise<unknown> {
  try {
    await ring.open(envelope, ctx);
  } catch (error) {
    return error;
  }
  assert.fail(`open accepted a changed envelope: ${envelope.slice(0, 80)}`);
}

function isExpectedOpenError(error: unknown): boolean {
  return error instanceof EnvelopeError || error instanceof KeyUnavailableError;
}

describe('envelope seal and open', () => {
  it('round-trips a value', async () => {
    const ring = keyring();
    const envelope = await ring.seal('sk-live-123', context, 'mk_a');

    assert.equal(await ring.open(envelope, context), 'sk-live-123');
    assert.equal(parseEnvelope(envelope).keyId, 'mk_a');
    assert.ok(envelope.startsWith('1.mk_a.'));
    assert.ok(!envelope.includes('sk-live'));
  });

  it('seals each value under a new data key', async () => {
    const ring = keyring();
    const first = parseEnvelope(await ring.seal('same', context, 'mk_a'));
    const second = parseEnvelope(await ring.seal('same', context, 'mk_a'));

    assert.notDeepEqual(first.wrappedKey, second.wrappedKey);
    assert.notDeepEqual(first.dataIv, second.dataIv);
    assert.notDeepEqual(first.ciphertext, second.ciphertext);
  });

  it('round-trips a 64 KiB value', async () => {
    const ring = keyring();
    const value = crypto.randomBytes(48 * 1024).toString('base64');
    assert.equal(value.length, 64 * 1024);

    const opened = await ring.open(await ring.seal(value, context, 'mk_a'), context);

    assert.equal(opened.length, value.length);
    assert.deepEqual(Buffer.from(opened, 'utf8'), Buffer.from(value, 'utf8'));
  });

  it('round-trips Unicode byte for byte', async () => {
    const ring = keyring();
    const values = {
      emoji: '🔐 key 👩🏽‍💻 🇳🇴',
      combining: 'e\u0301 a\u0308 n\u0303 (not normalized)',
      precomposed: '\u00e9 \u00e4 \u00f1',
      rtl: 'مفتاح سري \u202Eabc\u202C שלום',
      nul: 'before\u0000after\u0000',
      controls: '\t\r\n\u001b[0m\u007f\u00a0\ufeff',
      cjk: '秘密の鍵 비밀',
      empty: '',
    };

    for (const [name, value] of Object.entries(values)) {
      const opened = await ring.open(await ring.seal(value, context, 'mk_b'), context);
      assert.deepEqual(Buffer.from(opened, 'utf8'), Buffer.from(value, 'utf8'), `${name} changed`);
      assert.equal(opened, value, `${name} changed`);
    }
  });

  it('rejects a lone surrogate when sealing', async () => {
    const ring = keyring();

    await assert.rejects(ring.seal('abc\ud800def', context, 'mk_a'), EnvelopeError);
    await assert.rejects(ring.seal('\udc00', context, 'mk_a'), EnvelopeError);
  });

  it('rejects another credential id', async () => {
    const ring = keyring();
    const envelope = await ring.seal('sk-live-123', context, 'mk_a');

    const error = await openError(ring, envelope, { ...context, credentialId: '0b7f6d4e-3a57-4c4e-9d59-1f1b8c2f0a12' });
    assert.ok(error instanceof EnvelopeError, String(error));
  });

  it('rejects another version', async () => {
    const ring = keyring();
    const envelope = await ring.seal('sk-live-123', context, 'mk_a');

    for (const version of [2, 4, 30, 0]) {
      const error = await openError(ring, envelope, { ...context, version });
      assert.ok(error instanceof EnvelopeError, `version ${version}: ${String(error)}`);
    }
  });

  it('rejects an unknown master key', async () => {
    const sealed = await keyring().seal('sk-live-123', context, 'mk_a');
    const onlyB = new Keyring(new Map([['mk_b', keyB]]));

    const error = await openError(onlyB, sealed);
    assert.ok(error instanceof KeyUnavailableError, String(error));
    assert.equal((error as KeyUnavailableError).keyId, 'mk_a');
  });

  it('rejects a wrong master key', async () => {
    const sealed = await keyring().seal('sk-live-123', context, 'mk_a');
    const wrongA = new Keyring(new Map([['mk_a', keyB]]));

    const error = await openError(wrongA, sealed);
    assert.ok(error instanceof EnvelopeError, String(error));
  });
});

describe('envelope tampering', () => {
  it('rejects a flipped byte in every binary field', async () => {
    const ring = keyring();
    const envelope = await ring.seal('a value that is longer than one block of sixteen bytes', context, 'mk_a');
    const parts = parseEnvelope(envelope);
    const fields = ['wrapIv', 'wrappedKey', 'dataIv', 'ciphertext'] as const;

    for (const field of fields) {
      for (let index = 0; index < parts[field].length; index++) {
        const changed = Buffer.from(parts[field]);
        changed[index] = changed[index]! ^ 0x01;
        const error = await openError(ring, formatEnvelope({ ...parts, [field]: changed }));
        assert.ok(error instanceof EnvelopeError, `${field} byte ${index}: ${String(error)}`);
      }
    }
  });

  it('rejects a changed key id', async () => {
    const ring = keyring();
    const envelope = await ring.seal('sk-live-123', context, 'mk_a');
    const parts = parseEnvelope(envelope);

    const underB = await openError(ring, formatEnvelope({ ...parts, keyId: 'mk_b' }));
    assert.ok(underB instanceof EnvelopeError, String(underB));
    const unknown = await openError(ring, formatEnvelope({ ...parts, keyId: 'mk_c' }));
    assert.ok(unknown instanceof KeyUnavailableError, String(unknown));
  });

  it('rejects a changed format', async () => {
    const ring = keyring();
    const envelope = await ring.seal('sk-live-123', context, 'mk_a');

    for (const format of ['0', '2', '01', 'v1', '']) {
      const error = await openError(ring, `${format}${envelope.slice(1)}`);
      assert.ok(error instanceof EnvelopeError, `format "${format}": ${String(error)}`);
    }
  });

  it('rejects any changed character', async () => {
    const ring = keyring();
    // 18 bytes of value plus the 16-byte tag make a ciphertext field whose last character carries unused bits.
    const envelope = await ring.seal('eighteen bytes!!!!', context, 'mk_a');

    for (let position = 0; position < envelope.length; position++) {
      for (const replacement of `${base64UrlAlphabet}.=+/ `) {
        if (replacement === envelope[position]) continue;
        const changed = envelope.slice(0, position) + replacement + envelope.slice(position + 1);
        const error = await openError(ring, changed);
        assert.ok(isExpectedOpenError(error), `position ${position} as "${replacement}": ${String(error)}`);
      }
    }
  });

  it('rejects a truncated or extended envelope', async () => {
    const ring = keyring();
    const envelope = await ring.seal('sk-live-123', context, 'mk_a');

    for (let length = 0; length < envelope.length; length++) {
      const error = await openError(ring, envelope.slice(0, length));
      assert.ok(error instanceof EnvelopeError, `length ${length}: ${String(error)}`);
    }
    for (const suffix of ['A', 'AA', 'AAAA', '.', '=', '\n']) {
      const error = await openError(ring, envelope + suffix);
      assert.ok(error instanceof EnvelopeError, `suffix ${JSON.stringify(suffix)}: ${String(error)}`);
    }
  });
});

describe('parseEnvelope', () => {
  const iv = 'A'.repeat(16);
  const wrapped = 'A'.repeat(64);
  const sealed16 = 'A'.repeat(22);

  it('accepts a well-formed envelope', () => {
    const parts = parseEnvelope(`1.mk_x.${iv}.${wrapped}.${iv}.${sealed16}`);

    assert.equal(parts.keyId, 'mk_x');
    assert.equal(parts.wrapIv.length, 12);
    assert.equal(parts.wrappedKey.length, 48);
    assert.equal(parts.dataIv.length, 12);
    assert.equal(parts.ciphertext.length, 16);
  });

  it('rejects malformed input', () => {
    const cases: Record<string, string> = {
      empty: '',
      'one field': '1',
      'five fields': `1.mk_x.${iv}.${wrapped}.${iv}`,
      'seven fields': `1.mk_x.${iv}.${wrapped}.${iv}.${sealed16}.${sealed16}`,
      'unknown format': `2.mk_x.${iv}.${wrapped}.${iv}.${sealed16}`,
      'empty key id': `1..${iv}.${wrapped}.${iv}.${sealed16}`,
      'key id with colon': `1.mk:x.${iv}.${wrapped}.${iv}.${sealed16}`,
      'key id of 65 characters': `1.${'k'.repeat(65)}.${iv}.${wrapped}.${iv}.${sealed16}`,
      'short wrap IV': `1.mk_x.${'A'.repeat(15)}.${wrapped}.${iv}.${sealed16}`,
      'long data IV': `1.mk_x.${iv}.${wrapped}.${'A'.repeat(18)}.${sealed16}`,
      'short wrapped key': `1.mk_x.${iv}.${'A'.repeat(63)}.${iv}.${sealed16}`,
      'ciphertext shorter than a tag': `1.mk_x.${iv}.${wrapped}.${iv}.${'A'.repeat(20)}`,
      'empty ciphertext': `1.mk_x.${iv}.${wrapped}.${iv}.`,
      'standard base64 characters': `1.mk_x.${iv}.${'+'.repeat(64)}.${iv}.${sealed16}`,
      'base64 padding': `1.mk_x.${iv}.${wrapped}.${iv}.${sealed16}==`,
      'white space': `1.mk_x.${iv}.${wrapped}.${iv}.${sealed16} `,
      'unused bits set': `1.mk_x.${iv}.${wrapped}.${iv}.${'A'.repeat(21)}B`,
      'dangling character': `1.mk_x.${iv}.${wrapped}.${iv}.${'A'.repeat(25)}`,
    };

    for (const [name, text] of Object.entries(cases)) {
      assert.throws(() => parseEnvelope(text), EnvelopeError, name);
    }
  });

  it('names the failing field', () => {
    assert.throws(() => parseEnvelope(`1.mk_x.${iv}.${'A'.repeat(63)}.${iv}.${sealed16}`), /wrapped data key/);
    assert.throws(() => parseEnvelope(`1.mk_x.${iv}.${wrapped}.${iv}.${sealed16}==`), /ciphertext/);
    assert.throws(() => parseEnvelope('1.2.3'), /expected 6 fields, found 3/);
  });
});

describe('envelope fuzzing', () => {
  const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 300 }));
  const base64UrlText = fc.string({ unit: fc.constantFrom(...base64UrlAlphabet), maxLength: 90 });
  const fieldText = fc.oneof(base64UrlText, anyText);
  const sixFields = fc
    .tuple(fc.constantFrom('1', '2', ''), fc.constantFrom('mk_a', 'mk_b', 'mk_c', ''), fieldText, fieldText, fieldText, fieldText)
    .map((fields) => fields.join('.'));

  it('parseEnvelope throws only EnvelopeError', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, sixFields), (text) => {
        try {
          parseEnvelope(text);
        } catch (error) {
          if (!(error instanceof EnvelopeError)) throw error;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('open throws only envelope errors', async () => {
    const ring = keyring();
    await fc.assert(
      fc.asyncProperty(fc.oneof(anyText, sixFields), async (text) => {
        try {
          await ring.open(text, context);
        } catch (error) {
          if (!isExpectedOpenError(error)) throw error;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('open rejects mutated envelopes', async () => {
    const ring = keyring();
    const envelope = await ring.seal('fuzzed value', context, 'mk_a');
    const mutation = fc.record({
      position: fc.nat({ max: envelope.length - 1 }),
      deleteCount: fc.nat({ max: 4 }),
      insert: fc.string({ unit: fc.constantFrom(...`${base64UrlAlphabet}.=`), maxLength: 4 }),
    });

    await fc.assert(
      fc.asyncProperty(mutation, async ({ position, deleteCount, insert }) => {
        const changed = envelope.slice(0, position) + insert + envelope.slice(position + deleteCount);
        fc.pre(changed !== envelope);
        try {
          await ring.open(changed, context);
        } catch (error) {
          if (isExpectedOpenError(error)) return;
          throw error;
        }
        throw new Error(`open accepted a mutated envelope: ${changed}`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('envelope rewrap', () => {
  it('keeps the value and changes the key id', async () => {
    const ring = keyring();
    const envelope = await ring.seal('sk-live-123', context, 'mk_a');

    const rewrapped = await ring.rewrap(envelope, context, 'mk_b');

    const before = parseEnvelope(envelope);
    const after = parseEnvelope(rewrapped);
    assert.equal(after.keyId, 'mk_b');
    assert.deepEqual(after.ciphertext, before.ciphertext);
    assert.deepEqual(after.dataIv, before.dataIv);
    assert.notDeepEqual(after.wrappedKey, before.wrappedKey);
    const onlyB = new Keyring(new Map([['mk_b', keyB]]));
    assert.equal(await onlyB.open(rewrapped, context), 'sk-live-123');
  });

  it('returns the envelope when already current', async () => {
    const ring = keyring();
    const envelope = await ring.seal('sk-live-123', context, 'mk_b');

    assert.equal(await ring.rewrap(envelope, context, 'mk_b'), envelope);
  });

  it('rejects another row on rewrap', async () => {
    const ring = keyring();
    const envelope = await ring.seal('sk-live-123', context, 'mk_a');

    await assert.rejects(ring.rewrap(envelope, { ...context, version: 4 }, 'mk_b'), EnvelopeError);
  });

  it('rejects an unknown target key', async () => {
    const ring = keyring();
    const envelope = await ring.seal('sk-live-123', context, 'mk_a');

    await assert.rejects(ring.rewrap(envelope, context, 'mk_c'), KeyUnavailableError);
  });
});
