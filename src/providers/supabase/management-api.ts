import { scrubSecrets } from '../../lib/redact.js';
import { ProviderError } from '../adapter.js';

/** One API key as `GET /v1/projects/{ref}/api-keys?reveal=true` returns it (the fields AEGIS reads). */
export interface ProjectApiKey {
  id: string;
  type: string | null;
  name: string;
  api_key: string | null;
}

/**
 * The few Supabase Management API calls AEGIS makes: list, create and delete a project's API keys.
 * Every error message is scrubbed of the access token and of the key values in play.
 */
export class ManagementApi {
  readonly #baseUrl: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(baseUrl: string, token: string, timeoutMs: number) {
    this.#baseUrl = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    this.#token = token;
    this.#timeoutMs = timeoutMs;
  }

  /** Creates a secret key with the service_role template and returns its value. */
  async createSecretKey(projectRef: string, name: string): Promise<string> {
    const body = { type: 'secret', name, description: 'Created by AEGIS rotation', secret_jwt_template: { role: 'service_role' } };
    const document = await this.#send('POST', `v1/projects/${encodeURIComponent(projectRef)}/api-keys?reveal=true`, body, [], 'creating a secret key');
    const value = (document as { api_key?: unknown } | null)?.api_key;
    if (typeof value !== 'string' || value === '') throw new ProviderError('creating a secret key returned no api_key');
    return value;
  }

  /** Lists the project's keys with their values revealed, so a key can be found by its value. */
  async listKeys(projectRef: string, secrets: string[]): Promise<ProjectApiKey[]> {
    const document = await this.#send('GET', `v1/projects/${encodeURIComponent(projectRef)}/api-keys?reveal=true`, undefined, secrets, 'listing the API keys');
    if (!Array.isArray(document)) throw new ProviderError('listing the API keys returned no list');
    return document.filter((entry): entry is ProjectApiKey => entry !== null && typeof entry === 'object' && typeof (entry as ProjectApiKey).id === 'string');
  }

  async deleteKey(projectRef: string, id: string, secrets: string[]): Promise<void> {
    await this.#send('DELETE', `v1/projects/${encodeURIComponent(projectRef)}/api-keys/${encodeURIComponent(id)}`, undefined, secrets, `deleting API key ${id}`);
  }

  async #send(method: string, path: string, body: unknown, secrets: string[], action: string): Promise<unknown> {
    const hidden = [this.#token, ...secrets];
    let response: Response;
    try {
      response = await fetch(new URL(path, this.#baseUrl), {
        method,
        headers: { authorization: `Bearer ${this.#token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      const reason = (error as Error).name === 'TimeoutError' ? 'timed out' : `failed (${(error as { cause?: { code?: string } }).cause?.code ?? 'network error'})`;
      // The API may still process a request that timed out.
      throw new ProviderError(scrubSecrets(`${action} at the Supabase Management API ${reason}`, hidden), (error as Error).name === 'TimeoutError' ? 'unknown' : undefined);
    }
    const text = await response.text().catch(() => '');
    if (response.status < 200 || response.status >= 300) {
      // The body is not included: an error body may echo the request, and the request may carry a key.
      throw new ProviderError(`${action} at the Supabase Management API answered HTTP ${response.status}`);
    }
    if (text === '') return null;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ProviderError(`${action} at the Supabase Management API returned a body that is not JSON`);
    }
  }
}
