import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scrubSecrets } from '../../src/lib/redact.js';

describe('scrubSecrets', () => {
  it('removes whole secrets', () => {
    assert.equal(scrubSecrets('key abcdef rejected', ['abcdef']), 'key [REDACTED] rejected');
  });

  it('removes JSON object members', () => {
    const secret = JSON.stringify({ accessToken: 'xoxb-123', oauth: { refresh: 'r-456789', scopes: ['chat:write'] } });
    const text = 'token xoxb-123, refresh r-456789, scope chat:write';
    assert.equal(scrubSecrets(text, [secret]), 'token [REDACTED], refresh [REDACTED], scope [REDACTED]');
  });

  it('removes encoded members', () => {
    const secret = JSON.stringify({ apiKey: 'k/ey+value' });
    const text = `${Buffer.from('k/ey+value').toString('base64')} ${encodeURIComponent('k/ey+value')}`;
    assert.equal(scrubSecrets(text, [secret]), '[REDACTED] [REDACTED]');
  });

  it('removes longer members whole', () => {
    const secret = JSON.stringify({ short: 'abcd', long: 'abcdefgh' });
    assert.equal(scrubSecrets('abcdefgh', [secret]), '[REDACTED]');
  });

  it('keeps short members', () => {
    const secret = JSON.stringify({ region: 'eu', apiKey: 'secret-key' });
    assert.equal(scrubSecrets('region eu: secret-key', [secret]), 'region eu: [REDACTED]');
  });

  it('ignores members of non-objects', () => {
    assert.equal(scrubSecrets('abcd', ['["abcd"]']), 'abcd');
  });
});
