import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  decodeMasterKey,
  derivePassphraseKey,
  keyCheckValue,
  newSalt,
  rejectWeakPassphrase,
} from '../../src/crypto/key-material.js';
import { appendKeyToFile, readKeyCandidates, readKeyFile } from '../../src/crypto/key-sources.js';
import { StartupError } from '../../src/lib/errors.js';

function sequentialKey(start: number, step: number): Buffer {
  return Buffer.from(Array.from({ length: 32 }, (_, index) => (start + index * step) % 256));
}

describe('decodeMasterKey', () => {
  it('accepts a random key', () => {
    const key = crypto.randomBytes(32);

    assert.deepEqual(decodeMasterKey(key.toString('base64'), 'test'), key);
    assert.deepEqual(decodeMasterKey(key.toString('base64url'), 'test'), key);
    assert.deepEqual(decodeMasterKey(`  ${key.toString('base64')}\n`, 'test'), key);
  });

  it('rejects wrong lengths', () => {
    for (const length of [1, 16, 24, 31, 33, 48, 64]) {
      const text = crypto.randomBytes(length).toString('base64');
      assert.throws(
        () => decodeMasterKey(text, 'AEGIS_MASTER_KEY entry 1'),
        (error: unknown) =>
          error instanceof StartupError &&
          error.message.startsWith('AEGIS_MASTER_KEY entry 1: ') &&
          error.message.includes(`got ${length}`) &&
          error.message.includes('never padded or truncated'),
        `length ${length}`,
      );
    }
  });

  it('rejects hex as the wrong length', () => {
    assert.throws(() => decodeMasterKey(crypto.randomBytes(32).toString('hex'), 'key file line 2'), /^StartupError: key file line 2: .*got 48/);
  });

  it('rejects non-base64 text', () => {
    const cases = ['', '   ', 'not a key at all', `${crypto.randomBytes(32).toString('base64')}!`, 'ab cd', '====', 'a=b'];

    for (const text of cases) {
      assert.throws(
        () => decodeMasterKey(text, 'my origin'),
        (error: unknown) => error instanceof StartupError && error.message.startsWith('my origin: ') && error.message.includes('not base64'),
        JSON.stringify(text),
      );
    }
  });

  it('rejects all-equal bytes', () => {
    for (const byte of [0, 0x41, 0xff]) {
      const text = Buffer.alloc(32, byte).toString('base64');
      assert.throws(() => decodeMasterKey(text, 'origin-x'), /^StartupError: origin-x: the master key is weak/, `byte ${byte}`);
    }
  });

  it('rejects sequential bytes', () => {
    const cases = [sequentialKey(0, 1), sequentialKey(200, 1), sequentialKey(31, 255), sequentialKey(5, 7)];

    for (const key of cases) {
      assert.throws(() => decodeMasterKey(key.toString('base64'), 'origin-y'), /^StartupError: origin-y: the master key is weak/, key.toString('hex'));
    }
  });

  it('rejects few distinct bytes', () => {
    const key = Buffer.from(Array.from({ length: 32 }, () => crypto.randomInt(8)));

    assert.throws(() => decodeMasterKey(key.toString('base64'), 'origin-z'), /^StartupError: origin-z: the master key is weak/);
  });
});

describe('key files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-key-material-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function writeKeyFile(name: string, text: string, mode: number): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    fs.chmodSync(file, mode);
    return file;
  }

  it('reads keys with mode 0600', () => {
    const first = crypto.randomBytes(32);
    const second = crypto.randomBytes(32);
    const file = writeKeyFile('good.key', `# comment\n\n${first.toString('base64')}\n  ${second.toString('base64')}  \n`, 0o600);

    assert.deepEqual(readKeyFile(file), [first, second]);
  });

  it('rejects mode 0644', () => {
    const file = writeKeyFile('open.key', `${crypto.randomBytes(32).toString('base64')}\n`, 0o644);

    assert.throws(() => readKeyFile(file), (error: unknown) => {
      assert.ok(error instanceof StartupError);
      assert.match(error.message, /mode 644/);
      assert.ok(error.message.includes(`chmod 600 ${file}`), error.message);
      return true;
    });
  });

  it('rejects group or other access', () => {
    for (const mode of [0o640, 0o604, 0o660, 0o700 | 0o007]) {
      const file = writeKeyFile(`mode-${mode.toString(8)}.key`, `${crypto.randomBytes(32).toString('base64')}\n`, mode);
      assert.throws(() => readKeyFile(file), /chmod 600/, mode.toString(8));
    }
  });

  it('rejects a missing file', () => {
    const file = path.join(dir, 'missing.key');

    assert.throws(() => readKeyFile(file), (error: unknown) => error instanceof StartupError && error.message.includes(`Key file ${file} does not exist`));
  });

  it('rejects a folder', () => {
    const folder = fs.mkdtempSync(path.join(dir, 'folder-'));

    assert.throws(() => readKeyFile(folder), (error: unknown) => error instanceof StartupError && error.message.includes('is a folder or another kind of file'));
  });

  it('appends in place through a link', () => {
    const first = crypto.randomBytes(32);
    const second = crypto.randomBytes(32);
    const target = writeKeyFile('linked.key', first.toString('base64'), 0o600);
    const link = path.join(dir, 'link.key');
    fs.symlinkSync(target, link);
    const inode = fs.statSync(target).ino;

    appendKeyToFile(link, second);

    assert.ok(fs.lstatSync(link).isSymbolicLink());
    assert.equal(fs.statSync(target).ino, inode);
    assert.equal(fs.statSync(target).mode & 0o777, 0o600);
    assert.deepEqual(readKeyFile(link), [first, second]);
  });

  it('rejects a file without keys', () => {
    const file = writeKeyFile('empty.key', '# only a comment\n\n', 0o600);

    assert.throws(() => readKeyFile(file), /contains no key/);
  });

  it('names the line of a bad key', () => {
    const file = writeKeyFile('bad-line.key', `${crypto.randomBytes(32).toString('base64')}\n${Buffer.alloc(32, 1).toString('base64')}\n`, 0o600);

    assert.throws(() => readKeyFile(file), (error: unknown) => error instanceof StartupError && error.message.startsWith(`${file} line 2: `));
  });
});

describe('environment key source', () => {
  it('reads comma-separated keys', () => {
    const first = crypto.randomBytes(32);
    const second = crypto.randomBytes(32);
    const candidates = readKeyCandidates({ kind: 'env', variable: 'AEGIS_MASTER_KEY', value: `${first.toString('base64')}, ${second.toString('base64')},` }, []);

    assert.deepEqual(
      candidates.map((candidate) => candidate.key),
      [first, second],
    );
  });

  it('names the bad entry', () => {
    const value = `${crypto.randomBytes(32).toString('base64')},${crypto.randomBytes(31).toString('base64')}`;

    assert.throws(() => readKeyCandidates({ kind: 'env', variable: 'AEGIS_MASTER_KEY', value }, []), /^StartupError: AEGIS_MASTER_KEY entry 2: /);
  });
});

describe('passphrase keys', () => {
  it('rejects passphrases under 16 characters', () => {
    for (const passphrase of ['', 'short', 'abcdefghijklmno', '🔐🔑🗝️abcdefghij']) {
      assert.throws(
        () => rejectWeakPassphrase(passphrase, 'AEGIS_MASTER_PASSPHRASE'),
        (error: unknown) =>
          error instanceof StartupError && error.message.startsWith('AEGIS_MASTER_PASSPHRASE: ') && error.message.includes('at least 16 characters'),
        JSON.stringify(passphrase),
      );
    }
  });

  it('rejects few distinct characters', () => {
    assert.throws(() => rejectWeakPassphrase('abababababababababababab', 'AEGIS_MASTER_PASSPHRASE'), StartupError);
  });

  it('accepts a 16-character passphrase', () => {
    assert.doesNotThrow(() => rejectWeakPassphrase('abcdefghijklmnop', 'AEGIS_MASTER_PASSPHRASE'));
  });

  it('rejects a weak passphrase source', () => {
    assert.throws(() => readKeyCandidates({ kind: 'passphrase', variable: 'AEGIS_MASTER_PASSPHRASE', value: 'too short' }, [newSalt()]), StartupError);
  });

  it('derives deterministically per salt', () => {
    const salt = newSalt();
    const passphrase = 'correct horse battery staple';

    const first = derivePassphraseKey(passphrase, salt);
    const second = derivePassphraseKey(passphrase, salt);

    assert.equal(first.length, 32);
    assert.deepEqual(first, second);
    assert.equal(keyCheckValue(first), keyCheckValue(second));
  });

  it('differs across salts and passphrases', () => {
    const passphrase = 'correct horse battery staple';
    const salt = newSalt();
    const otherSalt = newSalt();

    const key = derivePassphraseKey(passphrase, salt);

    assert.notEqual(salt, otherSalt);
    assert.notDeepEqual(derivePassphraseKey(passphrase, otherSalt), key);
    assert.notDeepEqual(derivePassphraseKey(`${passphrase}!`, salt), key);
  });

  it('normalizes passphrases to NFC', () => {
    const salt = newSalt();

    assert.deepEqual(derivePassphraseKey('caf\u00e9 au lait, bien s\u00fbr', salt), derivePassphraseKey('cafe\u0301 au lait, bien su\u0302r', salt));
  });
});

describe('keyCheckValue', () => {
  it('differs across keys', () => {
    const key = crypto.randomBytes(32);

    assert.match(keyCheckValue(key), /^[0-9a-f]{32}$/);
    assert.equal(keyCheckValue(Buffer.from(key)), keyCheckValue(key));
    assert.notEqual(keyCheckValue(crypto.randomBytes(32)), keyCheckValue(key));
  });
});
