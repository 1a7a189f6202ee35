import type { Dispatcher } from 'undici';
import { ValidationError } from '../../lib/errors.js';
import { scrubSecrets } from '../../lib/redact.js';
import type { Credential } from '../../registry/credential.types.js';
import { ProviderError, type ProviderAdapter, type TestResult } from '../adapter.js';
import { checkApiConfig, fill, fillJson, headerThatCannotCarry, readPointer, type ApiConfig, type Placeholders, type RequestTemplate } from './api-template.js';

/**
 * A credential of an HTTP API, described by request templates: a test request, and optionally a
 * rotation request whose JSON response contains the new value and a revoke request for the old one.
 */
export function createApiAdapter(options: { defaultTimeoutMs?: number } = {}): ProviderAdapter {
  return {
    provider: 'api',
    capabilities: { test: true, setValue: false, issueValue: true, revoke: true, apply: false, list: false },

    checkConfig(config) {
      return checkApiConfig(config) as unknown as Record<string, unknown>;
    },

    // A header cannot carry such a value, so create and change reject it as rotation does.
    checkValueOnStore: true,

    checkValue(value, credential) {
      const header = headerThatCannotCarry(apiConfig(credential), value);
      if (header !== undefined) {
        throw new ValidationError('value', `cannot be sent in ${header}: it contains a line break, a control character or a character past U+00FF, which HTTP headers cannot carry`);
      }
    },

    async test(credential, value): Promise<TestResult> {
      const config = apiConfig(credential);
      const started = performance.now();
      if (!config.test) return { healthy: false, skipped: true, responseTimeMs: 0, details: {}, error: 'no test request is configured (provider_config.test)' };
      const testRequest = config.test;
      try {
        const response = await send(testRequest, { value }, config.timeout_ms ?? options.defaultTimeoutMs);
        const responseTimeMs = Math.round(performance.now() - started);
        // The status decides the check, so a slow body neither delays it nor counts in its time.
        void discardBody(response);
        const healthy = statusMatches(testRequest, response.status);
        return {
          healthy,
          responseTimeMs,
          details: { status: response.status },
          error: healthy ? null : `test request answered HTTP ${response.status}`,
        };
      } catch (error) {
        return { healthy: false, responseTimeMs: Math.round(performance.now() - started), details: {}, error: scrubSecrets(describe(error), [value ?? '']) };
      }
    },

    async issueValue(credential, current) {
      const config = apiConfig(credential);
      if (!config.rotate) throw new ProviderError('this api credential has no rotation request; rotate it with a new value in the request');
      let response: ApiResponse;
      try {
        response = await send(config.rotate, { value: current, old_value: current }, config.timeout_ms ?? options.defaultTimeoutMs);
      } catch (error) {
        // A request that timed out may still be processed, and an issued key may be live.
        throw new ProviderError(`rotation request failed: ${scrubSecrets(describe(error), [current ?? ''])}`, (error as Error).name === 'TimeoutError' ? 'unknown' : undefined);
      }
      if (!statusMatches(config.rotate, response.status)) {
        await discardBody(response);
        throw new ProviderError(`rotation request answered HTTP ${response.status}`);
      }
      let text: string;
      try {
        text = await response.body.text();
      } catch (error) {
        // The time limit covers the body too, so a server that stalls after the headers ends up here.
        throw new ProviderError(`reading the rotation response failed: ${scrubSecrets(describe(error), [current ?? ''])}`, 'unknown');
      }
      let document: unknown;
      try {
        document = JSON.parse(text);
      } catch {
        throw new ProviderError('rotation response is not JSON');
      }
      const value = readPointer(document, config.rotate.value_pointer!);
      if (typeof value !== 'string' || value === '') throw new ProviderError(`rotation response holds no string at ${config.rotate.value_pointer}`);
      return value;
    },

    async revoke(credential, oldValue, newValue) {
      const config = apiConfig(credential);
      if (!config.revoke) return;
      let response: ApiResponse;
      try {
        response = await send(config.revoke, { value: newValue, old_value: oldValue, new_value: newValue }, config.timeout_ms ?? options.defaultTimeoutMs);
      } catch (error) {
        throw new ProviderError(`revoke request failed: ${scrubSecrets(describe(error), [oldValue, newValue])}`);
      }
      await discardBody(response);
      if (!statusMatches(config.revoke, response.status)) throw new ProviderError(`revoke request answered HTTP ${response.status}`);
    },
  };
}

function apiConfig(credential: Credential): ApiConfig {
  return credential.providerConfig as unknown as ApiConfig;
}

/** The status and body of a response; the body is read or discarded by the caller. */
interface ApiResponse {
  status: number;
  body: Dispatcher.ResponseData['body'];
}

/**
 * Sends one templated request. The time limit covers the body too, so a caller that reads the body
 * after a server stalls gets the timeout error. Redirects are not followed: a 3xx is the response.
 *
 * undici's request() rather than fetch(): a health check of 10,000 API credentials (B4 in
 * BENCHMARKS.md) spent most of its CPU in fetch's web streams, about 360 us per request against 80 to
 * 130 us with request() on the same machine.
 */
let request: typeof import('undici').request | undefined;

async function send(template: RequestTemplate, values: Placeholders, timeoutMs = 10_000): Promise<ApiResponse> {
  const url = new URL(fill(template.url, values, true));
  for (const [key, entry] of Object.entries(template.query ?? {})) url.searchParams.set(key, fill(entry, values));
  const headers = Object.fromEntries(Object.entries(template.headers ?? {}).map(([key, entry]) => [key, fill(entry, values)]));
  let body: string | undefined;
  if (template.body !== undefined) {
    body = JSON.stringify(fillJson(template.body, values));
    headers['content-type'] ??= 'application/json';
  }
  // Loaded on the first request, so that start-up skips it (B8 in BENCHMARKS.md).
  request ??= (await import('undici')).request;
  const response = await request(url, { method: template.method as Dispatcher.HttpMethod, headers, body, signal: AbortSignal.timeout(timeoutMs) });
  return { status: response.statusCode, body: response.body };
}

/** Reads and drops a response body so the connection can serve the next request; a failure changes nothing. */
async function discardBody(response: ApiResponse): Promise<void> {
  await response.body.dump().catch(() => {});
}

function statusMatches(template: RequestTemplate, status: number): boolean {
  if (template.expected_status === undefined) return status >= 200 && status < 300;
  return (Array.isArray(template.expected_status) ? template.expected_status : [template.expected_status]).includes(status);
}

function describe(error: unknown): string {
  if ((error as Error).name === 'TimeoutError') return 'the request timed out';
  // undici puts a system error's code (ECONNREFUSED) or its own (UND_ERR_SOCKET) on the error itself.
  const code = (error as { code?: unknown }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' ? `the request failed (${code})` : 'the request failed';
}
