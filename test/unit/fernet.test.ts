import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { decryptFernet, FernetError, parseFernetKey, type FernetFailure } from '../../src/import/legacy/fernet.js';
import { deriveLegacyKey } from '../../src/import/legacy/legacy-key.js';
import { deriveLegacyKeyBytes, fernetEncrypt, fernetKeyText, tamperFernet } from '../helpers/fernet.js';

// The published Fernet specification's vectors (github.com/fernet/spec, generate.json and invalid.json),
// typed in by hand. All of them use this key; the valid token encrypts "hello" at 1985-10-26T08:20:00Z
// with the IV 00 01 02 ... 0f.
const specSecret = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=';
const specToken = 'gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==';
const specIv = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
const specTime = 499_162_800;

const invalidSpecTokens: Array<{ desc: string; token: string; failure: FernetFailure }> = [
  {
    desc: 'incorrect mac',
    token: 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykQUFBQUFBQUFBQQ==',
    failure: 'bad_hmac',
  },
  { desc: 'too short', token: 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPA==', failure: 'too_short' },
  {
    desc: 'invalid base64',
    token: '%%%%%%%%%%%%%AECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==',
    failure: 'malformed',
  },
  {
    desc: 'payload size not multiple of block size',
    token: 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPOm73QeoCk9uGib28Xe5vz6oxq5nmxbx_v7mrfyudzUm',
    failure: 'bad_length',
  },
  {
    desc: 'payload padding error',
    token: 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0ODz4LEpdELGQAad7aNEHbf-JkLPIpuiYRLQ3RtXatOYREu2FWke6CnJNYIbkuKNqOhw==',
    failure: 'bad_padding',
  },
  {
    desc: 'incorrect IV (causes padding error)',
    token: 'gAAAAAAdwJ6xBQECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAkLhFLHpGtDBRLRTZeUfWgHSv49TF2AUEZ1TIvcZjK1zQ==',
    failure: 'bad_padding',
  },
  { desc: 'very short payload size', token: 'gAAAAABdnQ1TUKh2OE_ggbyCIxfg', failure: 'too_short' },
  { desc: 'super short payload size', token: 'gAAA', failure: 'too_short' },
];

function failureOf(run: () => unknown): FernetFailure {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof FernetError, `expected a FernetError, got ${String(error)}`);
    return error.failure;
  }
  assert.fail('the token was accepted');
}

describe('Fernet decryption', () => {
  const specKey = parseFernetKey(specSecret);

  it('decrypts the spec token', () => {
    assert.equal(decryptFernet(specKey, specToken).toString('utf8'), 'hello');
  });

  it('test helper reproduces the spec token', () => {
    const keyBytes = Buffer.from(specSecret, 'base64url');
    assert.equal(fernetEncrypt(keyBytes, 'hello', { iv: specIv, time: specTime }), specToken);
  });

  for (const vector of invalidSpecTokens) {
    it(`rejects spec vector: ${vector.desc}`, () => {
      assert.equal(failureOf(() => decryptFernet(specKey, vector.token)), vector.failure);
    });
  }

  it('accepts a token without padding', () => {
    assert.equal(decryptFernet(specKey, specToken.replace(/=+$/, '')).toString('utf8'), 'hello');
  });

  it('round-trips empty, Unicode and 64 KiB values', () => {
    const keyBytes = crypto.randomBytes(32);
    const key = parseFernetKey(fernetKeyText(keyBytes));
    for (const value of ['', ' ', '\n', 'pässwörd 🔐 日本語', 'x'.repeat(64 * 1024)]) {
      assert.equal(decryptFernet(key, fernetEncrypt(keyBytes, value)).toString('utf8'), value);
    }
  });

  it('rejects every changed byte', () => {
    const keyBytes = crypto.randomBytes(32);
    const key = parseFernetKey(fernetKeyText(keyBytes));
    const token = fernetEncrypt(keyBytes, 'a value of two blocks, 32 bytes');
    const length = Buffer.from(token, 'base64url').length;
    for (let offset = 1; offset < length; offset++) {
      assert.equal(failureOf(() => decryptFernet(key, tamperFernet(token, offset))), 'bad_hmac', `byte ${offset}`);
    }
  });

  it('rejects a wrong version byte', () => {
    const keyBytes = crypto.randomBytes(32);
    const key = parseFernetKey(fernetKeyText(keyBytes));
    assert.equal(failureOf(() => decryptFernet(key, tamperFernet(fernetEncrypt(keyBytes, 'value'), 0))), 'wrong_version');
  });

  it('rejects a token made with another key', () => {
    const key = parseFernetKey(fernetKeyText(crypto.randomBytes(32)));
    assert.equal(failureOf(() => decryptFernet(key, fernetEncrypt(crypto.randomBytes(32), 'value'))), 'bad_hmac');
  });

  it('rejects a signed zero pad byte', () => {
    // A token signed correctly over a last block whose pad byte is 0, which PKCS7 never writes.
    const keyBytes = crypto.randomBytes(32);
    const key = parseFernetKey(fernetKeyText(keyBytes));
    const iv = crypto.randomBytes(16);
    const cipher = crypto.createCipheriv('aes-128-cbc', keyBytes.subarray(16), iv);
    cipher.setAutoPadding(false);
    const ciphertext = Buffer.concat([cipher.update(Buffer.alloc(16, 0)), cipher.final()]);
    const signed = Buffer.concat([Buffer.from([0x80]), Buffer.alloc(8), iv, ciphertext]);
    const token = Buffer.concat([signed, crypto.createHmac('sha256', keyBytes.subarray(0, 16)).update(signed).digest()]).toString('base64url');
    assert.equal(failureOf(() => decryptFernet(key, token)), 'bad_padding');
  });
});

describe('legacy key', () => {
  it('parses only 32-byte urlsafe base64 keys', () => {
    assert.throws(() => parseFernetKey('c2hvcnQ='), /32 bytes/);
    assert.throws(() => parseFernetKey('not base64 at all!'), /not urlsafe base64/);
    assert.doesNotThrow(() => parseFernetKey(`${specSecret}\n`));
  });

  it('derives the key the helper derives', async () => {
    const masterKey = 'an old master key ✓';
    const derived = await deriveLegacyKey(masterKey);
    const expected = deriveLegacyKeyBytes(masterKey);
    assert.deepEqual(derived.signingKey, expected.subarray(0, 16));
    assert.deepEqual(derived.encryptionKey, expected.subarray(16));
  });

  it('derives another key with a trailing newline', async () => {
    const plain = await deriveLegacyKey('master');
    const withNewline = await deriveLegacyKey('master\n');
    assert.notDeepEqual(plain.signingKey, withNewline.signingKey);
  });
});
