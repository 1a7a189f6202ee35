import crypto from 'node:crypto';
import { ValidationError } from '../../lib/errors.js';
import { scrubSecrets } from '../../lib/redact.js';
import type { Credential } from '../../registry/credential.types.js';
import { ProviderError, type ProviderAdapter, type TestResult } from '../adapter.js';
import { isLegacyKeyType, legacyKeyReason, supabaseKeyTypes, type SupabaseConfig } from './supabase-config.js';
import { ManagementApi } from './management-api.js';

export interface SupabaseAdapterOptions {
  /** Personal access token of the Management API; without it, keys can be tested but not rotated. */
  accessToken?: string | undefined;
  /** Base URL of the Management API, https://api.supabase.com by default. */
  apiUrl?: string | undefined;
  timeoutMs?: number;
}

const projectRefPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** The marker the rotation engine reads in provider_config to choose a provider-issued value (see checkConfig). */
const managementApi = 'management_api';

/**
 * A Supabase project's API key. The health check calls the project's REST endpoint with the key.
 * New-style secret keys rotate through the Management API: a new secret key is created, tested, made
 * current, and the old key is deleted by its value. Legacy JWT keys (anon, service_role) are not
 * rotatable here, because only a change of the project's JWT secret replaces them.
 */
export function createSupabaseAdapter(options: SupabaseAdapterOptions = {}): ProviderAdapter {
  const timeoutMs = options.timeoutMs ?? 10_000;

  function api(): ManagementApi {
    if (!options.accessToken) {
      throw new ProviderError('SUPABASE_ACCESS_TOKEN is not set, so AEGIS cannot call the Supabase Management API');
    }
    return new ManagementApi(options.apiUrl ?? 'https://api.supabase.com', options.accessToken, timeoutMs);
  }

  return {
    provider: 'supabase',
    capabilities: { test: true, setValue: false, issueValue: true, revoke: true, apply: false, list: false, revokeAfterRotation: true },

    checkConfig(config) {
      return checkSupabaseConfig(config) as unknown as Record<string, unknown>;
    },

    async test(credential, value): Promise<TestResult> {
      const config = supabaseConfig(credential);
      const started = performance.now();
      if (value === null) return { healthy: false, responseTimeMs: 0, details: {}, error: 'AEGIS holds no key for this credential' };
      const headers: Record<string, string> = { apikey: value };
      // Legacy keys are JWTs that PostgREST also reads from Authorization. New-style keys must not be sent
      // there, because the API gateway rejects a bearer token that is not a JWT.
      if (isLegacyKeyType(config.key_type)) headers.authorization = `Bearer ${value}`;
      try {
        const response = await fetch(new URL('rest/v1/', withSlash(config.project_url)), { headers, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
        await response.body?.cancel().catch(() => {});
        const healthy = response.status >= 200 && response.status < 300;
        return {
          healthy,
          responseTimeMs: Math.round(performance.now() - started),
          details: { status: response.status },
          error: healthy ? null : `the project's REST endpoint answered HTTP ${response.status}`,
        };
      } catch (error) {
        return { healthy: false, responseTimeMs: Math.round(performance.now() - started), details: {}, error: scrubSecrets(describe(error), [value]) };
      }
    },

    async issueValue(credential) {
      const config = supabaseConfig(credential);
      if (config.key_type !== 'secret') throw new ProviderError(`AEGIS issues only secret keys; ${config.key_type} keys cannot be issued`);
      const name = `aegis_${Date.now().toString(36)}_${crypto.randomBytes(3).toString('hex')}`;
      return api().createSecretKey(config.project_ref, name);
    },

    async revoke(credential, oldValue, newValue) {
      const config = supabaseConfig(credential);
      if (config.key_type !== 'secret') throw new ProviderError(`AEGIS deletes only secret keys, not ${config.key_type} keys`);
      const client = api();
      const keys = await client.listKeys(config.project_ref, [oldValue, newValue]);
      const old = keys.find((key) => key.type === 'secret' && sameSecret(key.api_key, oldValue));
      if (!old) throw new ProviderError('the key to delete is not among the project\'s secret keys, so nothing was deleted');
      // Deleting the old key while its replacement is missing would leave the project without a working key.
      if (newValue !== '' && !keys.some((key) => key.type === 'secret' && sameSecret(key.api_key, newValue))) {
        throw new ProviderError('the replacement key is not among the project\'s secret keys, so the old key was kept');
      }
      await client.deleteKey(config.project_ref, old.id, [oldValue, newValue]);
    },
  };
}

/** Checks a supabase provider_config; errors name the field, e.g. `provider_config.key_type`. */
export function checkSupabaseConfig(config: Record<string, unknown>): SupabaseConfig {
  const allowed = ['project_ref', 'key_type', 'project_url', 'rotate', 'revoke'];
  const unknown = Object.keys(config).find((key) => !allowed.includes(key));
  if (unknown !== undefined) throw new ValidationError(`provider_config.${unknown}`, 'is not a setting of supabase credentials (project_ref, key_type, project_url)');
  const { project_ref: projectRef, key_type: keyType, project_url: projectUrl } = config;
  if (typeof projectRef !== 'string' || !projectRefPattern.test(projectRef)) {
    throw new ValidationError('provider_config.project_ref', 'must be the project reference (lowercase letters and digits, e.g. abcdefghijklmnopqrst)');
  }
  if (typeof keyType !== 'string' || !(supabaseKeyTypes as ReadonlyArray<string>).includes(keyType)) {
    throw new ValidationError('provider_config.key_type', `must be one of ${supabaseKeyTypes.join(', ')}`);
  }
  if (typeof projectUrl !== 'string') throw new ValidationError('provider_config.project_url', 'is required (the project URL, e.g. https://abcdefghijklmnopqrst.supabase.co)');
  let url: URL;
  try {
    url = new URL(projectUrl);
  } catch {
    throw new ValidationError('provider_config.project_url', `"${projectUrl}" is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValidationError('provider_config.project_url', 'must use http or https');
  for (const field of ['rotate', 'revoke'] as const) {
    if (config[field] !== undefined && config[field] !== managementApi) {
      throw new ValidationError(`provider_config.${field}`, `is set by AEGIS and can only be "${managementApi}"`);
    }
  }
  const checked: SupabaseConfig = { project_ref: projectRef, key_type: keyType as SupabaseConfig['key_type'], project_url: projectUrl };
  // NOTE: the rotation engine requests a provider-issued value only when provider_config has `rotate`,
  // and revokes a rejected issued value only when it has `revoke`. Secret keys get both markers so the
  // engine takes that path; other key types get neither and are not rotated by AEGIS.
  if (keyType === 'secret') return { ...checked, rotate: managementApi, revoke: managementApi };
  return checked;
}

/** The reason a rotation without a supplied value is rejected for this credential, or null when AEGIS can rotate it. */
export function supabaseRotationBlocker(credential: Credential): string | null {
  if (credential.provider !== 'supabase') return null;
  const keyType = String(credential.providerConfig.key_type);
  if (isLegacyKeyType(keyType)) return legacyKeyReason(credential.name, keyType);
  if (keyType === 'publishable') {
    return `"${credential.name}" is a publishable key. AEGIS rotates only secret keys; create a new publishable key in Supabase and send it as the new value.`;
  }
  return null;
}

function supabaseConfig(credential: Credential): SupabaseConfig {
  return credential.providerConfig as unknown as SupabaseConfig;
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** Compares two secrets in constant time, through their SHA-256 digests so lengths may differ. */
function sameSecret(candidate: unknown, secret: string): boolean {
  if (typeof candidate !== 'string') return false;
  const digest = (text: string) => crypto.createHash('sha256').update(text, 'utf8').digest();
  return crypto.timingSafeEqual(digest(candidate), digest(secret));
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause?.code;
  if ((error as Error).name === 'TimeoutError') return 'the request to the project timed out';
  return cause ? `the request to the project failed (${cause})` : 'the request to the project failed';
}
