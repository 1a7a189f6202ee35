import { AegisError } from '../../lib/errors.js';
import { ProviderError } from '../adapter.js';

/** Connection settings of n8n's public REST API (`{url}/api/v1`) and the API key it sends. */
export interface N8nSettings {
  url: string;
  apiKey: string;
  timeoutMs: number;
}

/** A credential as n8n's public API lists it: metadata only, never its data. */
export interface N8nCredentialSummary {
  id: string;
  name: string;
  type: string;
}

/** A workflow node, with the fields AEGIS reads; every other field is kept as n8n sent it. */
export interface N8nNode {
  name: string;
  credentials?: Record<string, { id: string | null; name: string }>;
  [field: string]: unknown;
}

export interface N8nWorkflow {
  id: string;
  name: string;
  nodes: N8nNode[];
  connections: Record<string, unknown>;
  settings?: Record<string, unknown>;
  staticData?: unknown;
  [field: string]: unknown;
}

/**
 * An endpoint this n8n does not have. Older n8n versions have no credential list (GET /credentials) and
 * no PATCH /credentials/{id}; n8n responds with 405 to a method missing on a known path.
 */
export class N8nUnsupportedError extends AegisError {
  constructor(endpoint: string, status: number) {
    super(501, 'n8n_unsupported', `This n8n does not support ${endpoint} (it returned HTTP ${status}). Upgrade n8n to a version whose public API has this endpoint.`, {
      extra: { endpoint },
    });
  }
}

/** n8n rejected or failed a call; the message contains the endpoint, the status and n8n's message, never credential data. */
export class N8nRequestError extends ProviderError {
  readonly status: number;

  constructor(endpoint: string, status: number, message: string) {
    super(`n8n ${endpoint} returned HTTP ${status}${message ? `: ${message}` : ''}`);
    this.status = status;
  }
}

/** A response from n8n that is JSON of the wrong shape, such as a page without a `data` list. The message names the endpoint and the fault. */
export class N8nResponseError extends ProviderError {
  constructor(endpoint: string, fault: string) {
    super(`n8n ${endpoint} returned ${fault}`);
  }
}

/** Most characters of an n8n error text that AEGIS passes on in a message. */
const maxMessageLength = 300;

/**
 * Cuts a message that carries n8n's text to a readable length. Callers that may hold a credential's
 * data cut only after scrubbing it, because a cut through a quoted token would leave a prefix that no
 * longer matches the token.
 */
export function shortenN8nText(text: string): string {
  return text.length > maxMessageLength + 100 ? `${text.slice(0, maxMessageLength + 100)}...` : text;
}

/** A thin client of n8n's public API (/api/v1, header X-N8N-API-KEY). */
export class N8nClient {
  readonly url: string;
  readonly #apiKey: string;
  readonly #timeoutMs: number;

  constructor(settings: N8nSettings) {
    this.url = settings.url.replace(/\/+$/, '');
    this.#apiKey = settings.apiKey;
    this.#timeoutMs = settings.timeoutMs;
  }

  /**
   * Sends one call and returns its JSON body. A 405, or a 404 when `missingMeansUnsupported` is set
   * (collection paths, where 404 cannot mean a missing record), raises N8nUnsupportedError.
   */
  async request<T>(method: string, path: string, options: { body?: unknown; missingMeansUnsupported?: boolean } = {}): Promise<T> {
    const endpoint = `${method} ${path.split('?')[0]}`;
    const headers: Record<string, string> = { 'x-n8n-api-key': this.#apiKey, accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${this.url}/api/v1${path}`, {
        method,
        headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      });
    } catch (error) {
      // n8n may still apply a request that timed out.
      throw new ProviderError(`n8n ${endpoint} failed: ${describeFetchError(error)}`, (error as Error).name === 'TimeoutError' ? 'unknown' : undefined);
    }
    const text = await response.text().catch(() => '');
    if (response.status === 405 || (response.status === 404 && options.missingMeansUnsupported)) {
      throw new N8nUnsupportedError(endpoint, response.status);
    }
    if (!response.ok) throw new N8nRequestError(endpoint, response.status, n8nMessage(text));
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ProviderError(`n8n ${endpoint} returned a body that is not JSON`);
    }
  }

  /** Pages through a list endpoint that returns `{data, nextCursor}`. */
  async listAll<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    // A cursor that repeats would loop forever, so each one is followed only once.
    const seen = new Set<string>();
    do {
      const query: string = `?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = checkPage<T>(`GET ${path}`, await this.request('GET', `${path}${query}`, { missingMeansUnsupported: true }));
      items.push(...page.data);
      cursor = page.nextCursor;
      if (cursor !== null && seen.has(cursor)) throw new ProviderError(`n8n GET ${path} returned the cursor ${cursor} twice`);
      if (cursor !== null) seen.add(cursor);
    } while (cursor !== null);
    return items;
  }

  /** Lists every credential, having checked every entry, so that a caller never acts on part of a bad listing. */
  async listCredentials(): Promise<N8nCredentialSummary[]> {
    const entries = await this.listAll<unknown>('/credentials');
    return entries.map((entry, index) => checkCredentialSummary(entry, index));
  }

  /** Lists every workflow. An entry may leave out `nodes`, which then counts as no nodes. */
  async listWorkflows(): Promise<N8nWorkflow[]> {
    const entries = await this.listAll<unknown>('/workflows');
    return entries.map((entry, index) => {
      const workflow = checkWorkflow('GET /workflows', entry, `entry ${index}`, { nodesOptional: true });
      if ((typeof workflow.id !== 'string' && typeof workflow.id !== 'number') || workflow.id === '') throw new N8nResponseError('GET /workflows', `entry ${index} without an id`);
      return { ...workflow, id: String(workflow.id) };
    });
  }

  async getWorkflow(id: string): Promise<N8nWorkflow> {
    return checkWorkflow('GET /workflows/{id}', await this.request('GET', `/workflows/${encodeURIComponent(id)}`), `workflow ${id}`);
  }

  /** Writes a workflow back with only the fields n8n's update accepts, because n8n rejects any other field. */
  updateWorkflow(workflow: N8nWorkflow): Promise<N8nWorkflow> {
    const body: Record<string, unknown> = {
      name: workflow.name,
      nodes: workflow.nodes,
      connections: workflow.connections,
      settings: workflow.settings ?? {},
    };
    if (workflow.staticData !== undefined && workflow.staticData !== null) body.staticData = workflow.staticData;
    return this.request('PUT', `/workflows/${encodeURIComponent(workflow.id)}`, { body });
  }
}

/** Returns a list page, or raises N8nResponseError when it has no `data` list or a cursor that is not a string. */
function checkPage<T>(endpoint: string, page: unknown): { data: T[]; nextCursor: string | null } {
  if (!isObject(page) || !Array.isArray(page.data)) throw new N8nResponseError(endpoint, 'a page without a "data" list');
  const cursor = page.nextCursor ?? null;
  if (cursor !== null && typeof cursor !== 'string') throw new N8nResponseError(endpoint, 'a page whose "nextCursor" is not a string');
  return { data: page.data as T[], nextCursor: cursor };
}

/** Returns a credential list entry, or raises N8nResponseError unless its id is a string or number and its name and type are strings. */
function checkCredentialSummary(entry: unknown, index: number): N8nCredentialSummary {
  const fault = (problem: string) => new N8nResponseError('GET /credentials', `credential entry ${index} ${problem}`);
  if (!isObject(entry)) throw fault('that is not a JSON object');
  if ((typeof entry.id !== 'string' && typeof entry.id !== 'number') || entry.id === '') throw fault('without an id');
  if (typeof entry.name !== 'string') throw fault(`(id ${entry.id}) without a string "name"`);
  if (typeof entry.type !== 'string') throw fault(`(id ${entry.id}) without a string "type"`);
  return { id: String(entry.id), name: entry.name, type: entry.type };
}

/**
 * Returns a workflow, or raises N8nResponseError unless it is a JSON object whose `nodes` is a list of
 * objects that each have a string `name` and, if any, a `credentials` object.
 */
function checkWorkflow(endpoint: string, body: unknown, label: string, options: { nodesOptional?: boolean } = {}): N8nWorkflow {
  if (!isObject(body)) throw new N8nResponseError(endpoint, `${label}, which is not a JSON object`);
  if (body.nodes === undefined && options.nodesOptional) return body as N8nWorkflow;
  if (!Array.isArray(body.nodes)) throw new N8nResponseError(endpoint, `${label} without a "nodes" list`);
  body.nodes.forEach((node: unknown, index: number) => {
    if (!isObject(node) || typeof node.name !== 'string') throw new N8nResponseError(endpoint, `${label} whose node ${index} is not an object with a string "name"`);
    if (node.credentials !== undefined && !isObject(node.credentials)) {
      throw new N8nResponseError(endpoint, `${label} whose node "${node.name}" has "credentials" that are not a JSON object`);
    }
  });
  return body as N8nWorkflow;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Returns n8n's own error message (a JSON `message` field), which may quote the credential data of the request. */
function n8nMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    // Kept whole: it is cut only once secrets have been scrubbed from it (shortenN8nText).
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // Not JSON: no message is kept, because an HTML error page contains nothing useful.
  }
  return '';
}

function describeFetchError(error: unknown): string {
  if ((error as Error).name === 'TimeoutError') return 'the request timed out';
  const cause = (error as { cause?: { code?: string } }).cause?.code;
  return cause ? `the request failed (${cause})` : 'the request failed';
}
