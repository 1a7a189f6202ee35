import type http from 'node:http';
import { sendJson, startHttpStub, type HttpStub, type RecordedRequest } from './http-stub.js';

export interface StubCredential {
  id: string;
  name: string;
  type: string;
  data: Record<string, unknown>;
}

export interface StubWorkflow {
  id: string;
  name: string;
  nodes: Array<{ name: string; type: string; credentials?: Record<string, { id: string; name: string }>; [field: string]: unknown }>;
  connections: Record<string, unknown>;
  settings: Record<string, unknown>;
}

export interface N8nStubOptions {
  apiKey: string;
  /** Whether the stub has GET /credentials (list) and PATCH /credentials/{id}; without them it models an older n8n and returns 405. */
  recentApi: boolean;
  /** Items per page of the list endpoints, kept small so tests page through several. */
  pageSize?: number;
  /**
   * Whether GET /credentials/{id} exists when `recentApi` is set. n8n 2.8.4 returns 405 for it although
   * it has the list and PATCH, so the default is false and health checks look the id up in the list.
   */
  getCredentialById?: boolean;
}

/**
 * A response a test puts in place of the stub's own, such as a failure part-way through a replace. It
 * is sent for `times` (default 1) requests with this method and path (without /api/v1 and the query),
 * after `skip` (default 0) of them are handled as usual.
 */
export interface InjectedAnswer {
  method: string;
  path: string;
  status: number;
  body: unknown;
  times?: number;
  skip?: number;
}

/** The fields n8n's PUT /workflows/{id} accepts; any other field gets 400, as n8n's request validator does. */
const updatableWorkflowFields = new Set(['name', 'nodes', 'connections', 'settings', 'staticData']);

/**
 * A stand-in for n8n's public API (/api/v1) on 127.0.0.1, following the contract of n8n's OpenAPI
 * document: API key checking, cursor pagination, 405 for a method missing on a known path, and strict
 * rejection of unknown workflow fields on update.
 */
export class N8nStub {
  readonly credentials = new Map<string, StubCredential>();
  readonly workflows = new Map<string, StubWorkflow>();
  readonly options: Required<N8nStubOptions>;
  #nextId = 100;
  #injected: Array<InjectedAnswer & { times: number; skip: number }> = [];
  #held: Array<{ method: string; path: string; until: Promise<void> }> = [];
  /** Called with each request as it arrives, before it is held or handled. */
  onRequest: ((request: RecordedRequest) => void) | undefined;
  #http!: HttpStub;

  constructor(options: N8nStubOptions) {
    this.options = { pageSize: 2, getCredentialById: false, ...options };
  }

  static async start(options: N8nStubOptions): Promise<N8nStub> {
    const stub = new N8nStub(options);
    stub.#http = await startHttpStub((request, response) => stub.#route(request, response));
    return stub;
  }

  get url(): string {
    return this.#http.url;
  }

  get requests(): RecordedRequest[] {
    return this.#http.requests;
  }

  close(): Promise<void> {
    return this.#http.close();
  }

  addCredential(credential: StubCredential): void {
    this.credentials.set(credential.id, structuredClone(credential));
  }

  addWorkflow(workflow: StubWorkflow): void {
    this.workflows.set(workflow.id, structuredClone(workflow));
  }

  /** Sends `answer` to matching requests instead of handling them, as InjectedAnswer describes. */
  inject(answer: InjectedAnswer): void {
    this.#injected.push({ ...answer, times: answer.times ?? 1, skip: answer.skip ?? 0 });
  }

  /** Handles the next request with this method and path (without /api/v1 and the query) once `until` resolves. */
  hold(method: string, path: string, until: Promise<void>): void {
    this.#held.push({ method, path, until });
  }

  /** Drops injected responses that were not used up. */
  clearInjected(): void {
    this.#injected = [];
  }

  #takeInjected(method: string, path: string): InjectedAnswer | undefined {
    const found = this.#injected.find((answer) => answer.method === method && answer.path === path);
    if (found === undefined) return undefined;
    if (found.skip > 0) {
      found.skip -= 1;
      return undefined;
    }
    found.times -= 1;
    if (found.times <= 0) this.#injected.splice(this.#injected.indexOf(found), 1);
    return found;
  }

  #route(request: RecordedRequest & { released?: boolean }, response: http.ServerResponse): void {
    if (request.headers['x-n8n-api-key'] !== this.options.apiKey) return sendJson(response, 401, { message: "'X-N8N-API-KEY' header required" });
    const url = new URL(request.url, 'http://stub');
    const path = url.pathname.replace(/^\/api\/v1/, '');
    if (!request.released) this.onRequest?.(request);
    const holdIndex = this.#held.findIndex((entry) => entry.method === request.method && entry.path === path);
    if (holdIndex >= 0) {
      const [entry] = this.#held.splice(holdIndex, 1);
      void entry!.until.then(() => this.#route(Object.assign(request, { released: true }), response));
      return;
    }
    const injected = this.#takeInjected(request.method, path);
    if (injected) return sendJson(response, injected.status, injected.body);
    const parts = url.pathname.replace(/^\/api\/v1\//, '').split('/');
    const body = request.body ? (JSON.parse(request.body) as Record<string, unknown>) : {};
    const key = `${request.method} ${parts[0]}${parts.length > 1 ? '/:id' : ''}${parts.length > 2 ? `/${parts[2]}` : ''}`;
    const id = parts[1] ?? '';
    const recent = this.options.recentApi;
    const notAllowed = () => sendJson(response, 405, { message: `${request.method} method not allowed` });

    switch (key) {
      case 'GET credentials':
        if (!recent) return notAllowed();
        return sendJson(response, 200, this.#page([...this.credentials.values()].map(({ id, name, type }) => ({ id, name, type })), url));
      case 'POST credentials': {
        const created = { id: String(this.#nextId++), name: String(body.name), type: String(body.type), data: body.data as Record<string, unknown> };
        this.credentials.set(created.id, created);
        return sendJson(response, 200, { id: created.id, name: created.name, type: created.type, createdAt: '2026-06-01T12:00:00.000Z', updatedAt: '2026-06-01T12:00:00.000Z' });
      }
      case 'GET credentials/:id':
      case 'PATCH credentials/:id': {
        if (!recent || (request.method === 'GET' && !this.options.getCredentialById)) return notAllowed();
        const credential = this.credentials.get(id);
        if (!credential) return sendJson(response, 404, { message: 'Credential not found' });
        if (request.method === 'PATCH' && body.data !== undefined) credential.data = body.data as Record<string, unknown>;
        return sendJson(response, 200, { id, name: credential.name, type: credential.type });
      }
      case 'DELETE credentials/:id': {
        const credential = this.credentials.get(id);
        if (!credential) return sendJson(response, 404, { message: 'Not Found' });
        this.credentials.delete(id);
        return sendJson(response, 200, { id, name: credential.name, type: credential.type });
      }
      case 'GET workflows':
        return sendJson(response, 200, this.#page([...this.workflows.values()].map((workflow) => this.#withReadOnlyFields(workflow)), url));
      case 'GET workflows/:id': {
        const workflow = this.workflows.get(id);
        if (!workflow) return sendJson(response, 404, { message: 'Not Found' });
        return sendJson(response, 200, this.#withReadOnlyFields(workflow));
      }
      case 'PUT workflows/:id': {
        const workflow = this.workflows.get(id);
        if (!workflow) return sendJson(response, 404, { message: 'Not Found' });
        if (Object.keys(body).some((field) => !updatableWorkflowFields.has(field))) {
          return sendJson(response, 400, { message: 'request/body must NOT have additional properties' });
        }
        for (const field of ['name', 'nodes', 'connections', 'settings']) {
          if (body[field] === undefined) return sendJson(response, 400, { message: `request/body must have required property '${field}'` });
        }
        const updated = { ...workflow, name: body.name, nodes: body.nodes, connections: body.connections, settings: body.settings } as StubWorkflow;
        this.workflows.set(id, updated);
        return sendJson(response, 200, this.#withReadOnlyFields(updated));
      }
      default:
        return sendJson(response, 404, { message: 'not found' });
    }
  }

  /** A workflow as n8n returns it: with the read-only fields that its update rejects. */
  #withReadOnlyFields(workflow: StubWorkflow): Record<string, unknown> {
    return { ...structuredClone(workflow), active: false, createdAt: '2026-06-01T12:00:00.000Z', updatedAt: '2026-06-01T12:00:00.000Z', versionId: 'v1', tags: [], shared: [], pinData: {} };
  }

  /** One page of a list and the cursor of the next, as n8n encodes it (base64 of offset and limit). */
  #page<T>(items: T[], url: URL): { data: T[]; nextCursor: string | null } {
    const cursor = url.searchParams.get('cursor');
    const offset = cursor ? (JSON.parse(Buffer.from(cursor, 'base64').toString('utf8')) as { offset: number }).offset : 0;
    const limit = Math.min(Number(url.searchParams.get('limit') ?? 100), this.options.pageSize);
    const next = offset + limit < items.length ? Buffer.from(JSON.stringify({ offset: offset + limit, limit })).toString('base64') : null;
    return { data: items.slice(offset, offset + limit), nextCursor: next };
  }
}
