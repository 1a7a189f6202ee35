import { ValidationError } from '../../lib/errors.js';

/** One HTTP request of an `api` credential. Strings may hold `{{value}}`, `{{old_value}}` and `{{new_value}}`. */
export interface RequestTemplate {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
  /** Status codes that count as success; 2xx when unset. */
  expected_status?: number | number[];
  /** For the rotation request: the JSON pointer (RFC 6901) of the new value in the response. */
  value_pointer?: string;
}

export interface ApiConfig {
  test?: RequestTemplate;
  rotate?: RequestTemplate;
  revoke?: RequestTemplate;
  timeout_ms?: number;
}

const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
/** An HTTP header name: a token of RFC 9110, section 5.6.2. */
const headerNamePattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers that the HTTP client (undici) rejects in a request, or sets from the body itself. */
const clientHeaders = new Set(['content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'expect']);
/** A character the HTTP client rejects in a header value: anything but tab, printable ASCII and U+0080 to U+00FF. */
const badHeaderCharacter = /[^\t\x20-\x7e\x80-\xff]/;

/** Checks an `api` provider_config; errors name the field, e.g. `provider_config.rotate.value_pointer`. */
export function checkApiConfig(config: Record<string, unknown>): ApiConfig {
  const unknown = Object.keys(config).filter((key) => !['test', 'rotate', 'revoke', 'timeout_ms'].includes(key));
  if (unknown.length > 0) throw new ValidationError(`provider_config.${unknown[0]}`, 'is not a setting of api credentials (test, rotate, revoke, timeout_ms)');
  const checked: ApiConfig = {};
  if (config.test !== undefined) checked.test = checkTemplate('provider_config.test', config.test);
  if (config.rotate !== undefined) {
    checked.rotate = checkTemplate('provider_config.rotate', config.rotate);
    // Each reference token excludes `/`, so the pattern cannot backtrack exponentially on a long pointer.
    if (typeof checked.rotate.value_pointer !== 'string' || !/^(\/([^~/]|~[01])*)+$/.test(checked.rotate.value_pointer)) {
      throw new ValidationError('provider_config.rotate.value_pointer', 'must be a JSON pointer to the new value in the response, e.g. /key');
    }
  }
  if (config.revoke !== undefined) checked.revoke = checkTemplate('provider_config.revoke', config.revoke);
  if (config.timeout_ms !== undefined) {
    if (!Number.isInteger(config.timeout_ms) || (config.timeout_ms as number) < 100 || (config.timeout_ms as number) > 60_000) {
      throw new ValidationError('provider_config.timeout_ms', 'must be an integer from 100 to 60000');
    }
    checked.timeout_ms = config.timeout_ms as number;
  }
  return checked;
}

function checkTemplate(field: string, value: unknown): RequestTemplate {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ValidationError(field, 'must be an object with method and url');
  const template = value as Record<string, unknown>;
  const unknown = Object.keys(template).filter((key) => !['method', 'url', 'headers', 'query', 'body', 'expected_status', 'value_pointer'].includes(key));
  if (unknown.length > 0) throw new ValidationError(`${field}.${unknown[0]}`, 'is not a field of a request template');
  if (typeof template.method !== 'string' || !methods.includes(template.method)) throw new ValidationError(`${field}.method`, `must be one of ${methods.join(', ')}`);
  if (typeof template.url !== 'string') throw new ValidationError(`${field}.url`, 'is required');
  let url: URL;
  try {
    url = new URL(template.url.replace(/\{\{(value|old_value|new_value)\}\}/g, 'placeholder'));
  } catch {
    throw new ValidationError(`${field}.url`, `"${template.url}" is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValidationError(`${field}.url`, 'must use http or https');
  // The HTTP client drops a user name and password from the URL rather than sending them.
  if (url.username !== '' || url.password !== '') {
    throw new ValidationError(`${field}.url`, 'must not contain a user name or password; send the value in a header, e.g. "authorization": "Bearer {{value}}"');
  }
  for (const part of ['headers', 'query'] as const) {
    const map = template[part];
    if (map === undefined) continue;
    if (typeof map !== 'object' || map === null || Array.isArray(map) || !Object.values(map).every((entry) => typeof entry === 'string')) {
      throw new ValidationError(`${field}.${part}`, 'must be an object of strings');
    }
  }
  // Checked here so a bad header name fails at create time, not at the first rotation.
  for (const [name, headerValue] of Object.entries((template.headers as Record<string, string> | undefined) ?? {})) {
    if (!headerNamePattern.test(name)) throw new ValidationError(`${field}.headers`, `"${name}" is not a valid HTTP header name`);
    const lower = name.toLowerCase();
    if (clientHeaders.has(lower)) throw new ValidationError(`${field}.headers.${name}`, 'is set by the HTTP client from the request and cannot be given');
    if (lower === 'connection' && !['close', 'keep-alive'].includes(headerValue.toLowerCase())) throw new ValidationError(`${field}.headers.${name}`, 'must be close or keep-alive');
    if (badHeaderCharacter.test(headerValue)) {
      throw new ValidationError(`${field}.headers.${name}`, 'must contain only tabs, printable ASCII and characters U+0080 to U+00FF (no line break, control character or other Unicode)');
    }
  }
  if (template.body !== undefined && template.method === 'GET') throw new ValidationError(`${field}.body`, 'is not allowed on a GET request');
  const statuses = template.expected_status;
  if (statuses !== undefined) {
    const list = Array.isArray(statuses) ? statuses : [statuses];
    if (list.length === 0 || !list.every((status) => Number.isInteger(status) && status >= 100 && status <= 599)) {
      throw new ValidationError(`${field}.expected_status`, 'must be an HTTP status code or a list of them');
    }
  }
  return template as unknown as RequestTemplate;
}

/**
 * Names the first header of the credential's requests that would carry `value` as it is (through
 * `{{value}}`, `{{old_value}}` or `{{new_value}}`) when the value has a character that the HTTP client
 * rejects in a header, or returns undefined when none would. `{{basic_auth:USER}}` sends it in base64.
 */
export function headerThatCannotCarry(config: ApiConfig, value: string): string | undefined {
  if (!badHeaderCharacter.test(value)) return undefined;
  for (const part of ['test', 'rotate', 'revoke'] as const) {
    for (const [name, headerValue] of Object.entries(config[part]?.headers ?? {})) {
      if (/\{\{(value|old_value|new_value)\}\}/.test(headerValue)) return `provider_config.${part}.headers.${name}`;
    }
  }
  return undefined;
}

export interface Placeholders {
  value?: string | null;
  old_value?: string | null;
  new_value?: string | null;
}

/**
 * Replaces placeholders in a string; `encode` URL-encodes the inserted values (for URL paths).
 * `{{basic_auth:USER}}` becomes an HTTP Basic credential (RFC 7617) of USER with the value as password.
 */
export function fill(text: string, values: Placeholders, encode = false): string {
  const withBasic = text.replace(/\{\{basic_auth:([^{}:]*)\}\}/g, (_match, user: string) => `Basic ${Buffer.from(`${user}:${values.value ?? ''}`, 'utf8').toString('base64')}`);
  return withBasic.replace(/\{\{(value|old_value|new_value)\}\}/g, (_match, name: keyof Placeholders) => {
    const inserted = values[name] ?? '';
    return encode ? encodeURIComponent(inserted) : inserted;
  });
}

/** Replaces placeholders in every string of a JSON body. */
export function fillJson(value: unknown, values: Placeholders): unknown {
  if (typeof value === 'string') return fill(value, values);
  if (Array.isArray(value)) return value.map((entry) => fillJson(entry, values));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, fillJson(entry, values)]));
  }
  return value;
}

/**
 * Reads the value at a JSON pointer (RFC 6901); undefined when the path does not exist. An array takes
 * only decimal indexes without leading zeros, so `/keys/length` or `/keys/01` find nothing.
 */
export function readPointer(document: unknown, pointer: string): unknown {
  let current = document;
  for (const token of pointer.split('/').slice(1)) {
    const key = token.replace(/~1/g, '/').replace(/~0/g, '~');
    if (current === null || typeof current !== 'object') return undefined;
    if (Array.isArray(current) && !/^(0|[1-9][0-9]*)$/.test(key)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
