import { ProviderError, type ProviderAdapter } from '../providers/adapter.js';
import type { Credential } from '../registry/credential.types.js';
import { scrubSecrets } from '../lib/redact.js';
import type { HealthStatus } from './health.types.js';

export interface ProviderTestOutcome {
  status: HealthStatus;
  responseTimeMs: number | null;
  details: Record<string, unknown>;
  error: string | null;
}

/**
 * Runs the adapter's test of a value and maps it to a health status: healthy, unhealthy, or unknown when
 * the provider has no test (n8n and supabase today) or the credential has none configured. The test
 * is cut off after `limitMs`; the response time is the wall time of the adapter call. The error text has
 * the value removed in plain, base64 and URL-encoded form.
 */
export async function runProviderTest(adapter: ProviderAdapter, credential: Credential, value: string | null, limitMs: number): Promise<ProviderTestOutcome> {
  if (!adapter.test || !adapter.capabilities.test) {
    return { status: 'unknown', responseTimeMs: null, details: {}, error: adapter.unavailableReason ?? `provider ${credential.provider} has no health check yet` };
  }
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timed_out'>((resolve) => {
    timer = setTimeout(() => resolve('timed_out'), limitMs);
  });
  try {
    const result = await Promise.race([adapter.test(credential, value), timedOut]);
    if (result === 'timed_out') {
      return { status: 'unhealthy', responseTimeMs: elapsed(), details: { timeout_ms: limitMs }, error: `the ${credential.provider} test timed out after ${limitMs} ms` };
    }
    const error = result.error === null ? null : scrubSecrets(result.error, value === null ? [] : [value]);
    if (result.skipped) return { status: 'unknown', responseTimeMs: null, details: result.details, error };
    return { status: result.healthy ? 'healthy' : 'unhealthy', responseTimeMs: elapsed(), details: result.details, error };
  } catch (error) {
    // Adapters report failures in their result. A ProviderError message is stripped of values by contract;
    // of any other error only the class is kept, because its message may quote upstream text.
    if (error instanceof ProviderError) {
      return { status: 'unhealthy', responseTimeMs: elapsed(), details: {}, error: `the ${credential.provider} test failed: ${scrubSecrets(error.message, value === null ? [] : [value])}` };
    }
    const kind = error instanceof Error ? error.name : typeof error;
    return { status: 'unhealthy', responseTimeMs: elapsed(), details: {}, error: `the ${credential.provider} test failed with ${kind}` };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Returns the time limit of a whole test: twice the provider call limit (the credential's own `timeout_ms` when
 * larger), so that an adapter's own limits fire first and name their cause. The postgres test may spend
 * the limit once on connecting and once on the query.
 */
export function testLimitMs(credential: Credential, providerTimeoutMs: number): number {
  const own = credential.providerConfig.timeout_ms;
  const base = typeof own === 'number' && own > providerTimeoutMs ? own : providerTimeoutMs;
  return 2 * base;
}
