import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runProviderTest } from '../../src/health/provider-test.js';
import { noCapabilities, ProviderError, type ProviderAdapter, type TestResult } from '../../src/providers/adapter.js';
import type { Credential } from '../../src/registry/credential.types.js';

const credential = { id: 'c1', name: 'unit/key', provider: 'api', providerConfig: {} } as unknown as Credential;
const value = 'unit-secret-value';

function adapterWith(test: ProviderAdapter['test']): ProviderAdapter {
  return { provider: 'api', capabilities: { ...noCapabilities, test: true }, checkConfig: (config) => config, test };
}

describe('provider test mapping', () => {
  it('stuck test times out', async () => {
    const outcome = await runProviderTest(adapterWith(() => new Promise<TestResult>(() => {})), credential, value, 20);
    assert.equal(outcome.status, 'unhealthy');
    assert.equal(outcome.error, 'the api test timed out after 20 ms');
    assert.ok(outcome.responseTimeMs !== null && outcome.responseTimeMs >= 19);
  });

  it('thrown error keeps class only', async () => {
    const outcome = await runProviderTest(adapterWith(async () => { throw new TypeError(`bad ${value}`); }), credential, value, 1_000);
    assert.equal(outcome.status, 'unhealthy');
    assert.equal(outcome.error, 'the api test failed with TypeError');
  });

  it('provider error is scrubbed', async () => {
    const outcome = await runProviderTest(adapterWith(async () => { throw new ProviderError(`login with ${value} failed`); }), credential, value, 1_000);
    assert.equal(outcome.error, 'the api test failed: login with [REDACTED] failed');
  });

  it('skipped test is unknown', async () => {
    const skipped = adapterWith(async () => ({ healthy: false, skipped: true, responseTimeMs: 0, details: {}, error: 'no test request is configured' }));
    const outcome = await runProviderTest(skipped, credential, value, 1_000);
    assert.equal(outcome.status, 'unknown');
    assert.equal(outcome.responseTimeMs, null);
    assert.equal(outcome.error, 'no test request is configured');
  });

  it('adapter without test is unknown', async () => {
    const outcome = await runProviderTest({ provider: 'n8n', capabilities: noCapabilities, checkConfig: (config) => config }, { ...credential, provider: 'n8n' }, null, 1_000);
    assert.equal(outcome.status, 'unknown');
    assert.equal(outcome.error, 'provider n8n has no health check yet');
  });

  it('unconfigured adapter names its settings', async () => {
    const unconfigured = { provider: 'n8n' as const, capabilities: noCapabilities, unavailableReason: 'n8n is not configured. Set N8N_URL and N8N_API_KEY and restart AEGIS.', checkConfig: (config: Record<string, unknown>) => config };
    const outcome = await runProviderTest(unconfigured, { ...credential, provider: 'n8n' }, null, 1_000);
    assert.equal(outcome.status, 'unknown');
    assert.equal(outcome.error, 'n8n is not configured. Set N8N_URL and N8N_API_KEY and restart AEGIS.');
  });

  it('error text drops the value', async () => {
    const leaky = adapterWith(async () => ({ healthy: false, responseTimeMs: 1, details: {}, error: `rejected ${value}` }));
    const outcome = await runProviderTest(leaky, credential, value, 1_000);
    assert.equal(outcome.status, 'unhealthy');
    assert.equal(outcome.error, 'rejected [REDACTED]');
  });
});
