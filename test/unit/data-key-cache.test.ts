import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { DataKeyCache } from '../../src/crypto/data-key-cache.js';
import { Keyring } from '../../src/crypto/keyring.js';
import { RandomPool } from '../../src/crypto/random-pool.js';

describe('data key cache', () => {
  it('forgets a key after its lifetime', () => {
    let now = 0;
    const cache = new DataKeyCache({ lifetimeMs: 1_000, maxEntries: 10, now: () => now });
    cache.set('a', Buffer.alloc(32, 7));
    now = 999;
    assert.deepEqual(cache.get('a'), Buffer.alloc(32, 7));
    now = 1_000;
    assert.equal(cache.get('a'), undefined);
  });

  it('keeps at most maxEntries and zeroes what it drops', () => {
    const cache = new DataKeyCache({ lifetimeMs: 60_000, maxEntries: 4, now: () => 0 });
    const keys = Array.from({ length: 7 }, (_, index) => Buffer.alloc(32, index + 1));
    keys.forEach((key, index) => cache.set(`k${index}`, key));
    assert.ok(cache.size <= 4);
    assert.equal(cache.get('k0'), undefined);
    assert.deepEqual(keys[0], Buffer.alloc(32, 0));
    assert.deepEqual(cache.get('k6'), Buffer.alloc(32, 7));
  });

  it('zeroes keys at once when turned off', () => {
    const cache = new DataKeyCache({ lifetimeMs: 0, maxEntries: 10 });
    const key = Buffer.alloc(32, 9);
    cache.set('a', key);
    assert.equal(cache.get('a'), undefined);
    assert.deepEqual(key, Buffer.alloc(32, 0));
  });

  it('rejects a copied envelope despite a cached key', async () => {
    const keyring = new Keyring(new Map([['mk_a', crypto.randomBytes(32)]]));
    const context = { credentialId: 'c1', version: 1 };
    const sealed = await keyring.seal('first value', context, 'mk_a');
    assert.equal(await keyring.open(sealed, context), 'first value');
    await assert.rejects(keyring.open(sealed, { credentialId: 'c2', version: 1 }), /authentication failed/);
    await assert.rejects(keyring.open(sealed, { credentialId: 'c1', version: 2 }), /authentication failed/);
  });

  it('rejects a changed ciphertext despite a cached key', async () => {
    const keyring = new Keyring(new Map([['mk_a', crypto.randomBytes(32)]]));
    const context = { credentialId: 'c1', version: 1 };
    const sealed = await keyring.seal('some value', context, 'mk_a');
    assert.equal(await keyring.open(sealed, context), 'some value');
    const fields = sealed.split('.');
    const ciphertext = Buffer.from(fields[5]!, 'base64url');
    ciphertext[0] = ciphertext[0]! ^ 1;
    fields[5] = ciphertext.toString('base64url');
    await assert.rejects(keyring.open(fields.join('.'), context), /authentication failed/);
  });
});

describe('random pool', () => {
  it('never hands out the same bytes twice', () => {
    const pool = new RandomPool();
    const seen = new Set<string>();
    for (let index = 0; index < 2_000; index += 1) seen.add(pool.take(12).toString('hex'));
    assert.equal(seen.size, 2_000);
  });

  it('serves requests larger than the pool', () => {
    assert.equal(new RandomPool().take(10_000).length, 10_000);
  });
});
