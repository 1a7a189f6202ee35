import type { FastifyInstance } from 'fastify';
import { AuditAction } from '../audit/audit.types.js';
import { errorResponses, pagingQuery, problemSchema } from '../http/shared-schemas.js';
import { requireCaller } from '../http/auth.js';
import type { CreateCredentialInput, UpdateCredentialInput } from './credential-input.js';
import type { CredentialStatus } from './credential.types.js';
import { credentialView, versionView } from './credential-view.js';
import {
  createCredentialBody,
  credentialView as credentialViewSchema,
  listCredentialsQuery,
  nameParams,
  revealQuery,
  updateCredentialBody,
  versionView as versionViewSchema,
} from './credentials.schemas.js';
import type { CredentialSortColumn } from './credentials.repository.js';
import type { RegistryService } from './registry.service.js';

interface NameParams {
  name: string;
}

interface ListCredentialsQuery {
  status?: CredentialStatus;
  provider?: string;
  type?: string;
  tag?: string;
  search?: string;
  sort: CredentialSortColumn;
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

/** The registry endpoints: list, read, create, change, retire, versions and the audited reveal. */
export function registerCredentialRoutes(app: FastifyInstance, registry: RegistryService): void {
  app.get<{ Querystring: ListCredentialsQuery }>(
    '/credentials',
    {
      config: { scope: 'credentials:read', action: AuditAction.listed },
      schema: {
        tags: ['registry'],
        summary: 'List credentials with totals by status; search names and sort by a column',
        querystring: listCredentialsQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              credentials: { type: 'array', items: credentialViewSchema },
              total: { type: 'integer' },
              healthy: { type: 'integer' },
              expiring: { type: 'integer' },
              expired: { type: 'integer' },
              failed: { type: 'integer' },
              rotating: { type: 'integer' },
              retired: { type: 'integer' },
              limit: { type: 'integer' },
              offset: { type: 'integer' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { status, provider, type, tag, search, sort, order, limit, offset } = request.query;
      const page = await registry.list(requireCaller(request), { status, provider, credentialType: type, tag, search }, { limit, offset, sort, order });
      return {
        credentials: page.credentials.map(credentialView),
        total: page.total,
        healthy: page.byStatus.active,
        expiring: page.byStatus.expiring,
        expired: page.byStatus.expired,
        failed: page.byStatus.failed,
        rotating: page.byStatus.rotating,
        retired: page.byStatus.retired,
        limit,
        offset,
      };
    },
  );

  app.get<{ Params: NameParams }>(
    '/credentials/:name',
    {
      config: { scope: 'credentials:read', action: AuditAction.read },
      schema: {
        tags: ['registry'],
        summary: 'Read one credential (never its value)',
        params: nameParams,
        response: {
          200: {
            type: 'object',
            properties: {
              credential_details: credentialViewSchema,
              health_status: {
                type: 'object',
                properties: {
                  status: { type: 'string' },
                  checked_at: { type: ['string', 'null'] },
                  response_time_ms: { type: ['integer', 'null'] },
                  error_message: { type: ['string', 'null'] },
                },
              },
              rotation_info: {
                type: 'object',
                properties: {
                  rotation_enabled: { type: 'boolean' },
                  rotation_strategy: { type: 'string' },
                  rotation_interval_hours: { type: 'integer' },
                  last_rotated_at: { type: ['string', 'null'] },
                  next_rotation_at: { type: ['string', 'null'] },
                  current_version: { type: ['integer', 'null'] },
                  version_count: { type: 'integer' },
                },
              },
              usage_stats: {
                type: 'object',
                properties: { last_used_at: { type: ['string', 'null'] } },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const detail = await registry.get(requireCaller(request), request.params.name);
      const { credential } = detail;
      return {
        credential_details: credentialView(credential),
        health_status: {
          status: detail.health.status,
          checked_at: detail.health.checkedAt,
          response_time_ms: detail.health.responseTimeMs,
          error_message: detail.health.errorMessage,
        },
        rotation_info: {
          rotation_enabled: credential.rotationEnabled,
          rotation_strategy: credential.rotationStrategy,
          rotation_interval_hours: credential.rotationIntervalHours,
          last_rotated_at: credential.lastRotatedAt,
          next_rotation_at: credential.nextRotationAt,
          current_version: detail.currentVersion,
          version_count: detail.versionCount,
        },
        usage_stats: { last_used_at: credential.lastUsedAt },
      };
    },
  );

  app.post<{ Body: CreateCredentialInput }>(
    '/credentials',
    {
      config: { scope: 'credentials:write', action: AuditAction.created },
      schema: {
        tags: ['registry'],
        summary: 'Register a credential; a value is sealed as version 1',
        body: createCredentialBody,
        response: {
          201: {
            type: 'object',
            properties: { id: { type: 'string' }, name: { type: 'string' }, status: { type: 'string' }, created_at: { type: 'string' }, version: { type: 'integer' } },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const credential = await registry.create(requireCaller(request), request.body);
      reply.code(201);
      return { id: credential.id, name: credential.name, status: credential.status, created_at: credential.createdAt, version: 1 };
    },
  );

  app.patch<{ Params: NameParams; Body: UpdateCredentialInput }>(
    '/credentials/:name',
    {
      config: { scope: 'credentials:write', action: AuditAction.updated },
      schema: {
        tags: ['registry'],
        summary: 'Change settings; a new value writes a new version',
        params: nameParams,
        body: updateCredentialBody,
        response: {
          200: {
            type: 'object',
            properties: { credential: credentialViewSchema, updated_fields: { type: 'array', items: { type: 'string' } } },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { credential, updatedFields } = await registry.update(requireCaller(request), request.params.name, request.body ?? {});
      return { credential: credentialView(credential), updated_fields: updatedFields };
    },
  );

  app.delete<{ Params: NameParams }>(
    '/credentials/:name',
    {
      config: { scope: 'credentials:write', action: AuditAction.retired },
      schema: {
        tags: ['registry'],
        summary: 'Retire a credential (kept, never deleted)',
        params: nameParams,
        response: {
          200: { type: 'object', properties: { status: { type: 'string' }, credential_name: { type: 'string' } } },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { credential } = await registry.retire(requireCaller(request), request.params.name);
      return { status: 'retired', credential_name: credential.name };
    },
  );

  app.get<{ Params: NameParams; Querystring: { limit: number; offset: number } }>(
    '/credentials/:name/versions',
    {
      config: { scope: 'credentials:read', action: AuditAction.versionsRead },
      schema: {
        tags: ['registry'],
        summary: 'List the versions of a credential, newest first (never their values); `total` counts them all',
        params: nameParams,
        querystring: { type: 'object', additionalProperties: false, properties: { ...pagingQuery } },
        response: {
          200: {
            type: 'object',
            properties: { credential_name: { type: 'string' }, versions: { type: 'array', items: versionViewSchema }, total: { type: 'integer' } },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { credential, versions, total } = await registry.versions(requireCaller(request), request.params.name, { limit: request.query.limit, offset: request.query.offset });
      return { credential_name: credential.name, versions: versions.map(versionView), total };
    },
  );

  app.get<{ Params: NameParams; Querystring: { version?: number } }>(
    '/credentials/:name/value',
    {
      // HEAD would reveal too (audited, with the value's length in Content-Length) while sending nothing back.
      exposeHeadRoute: false,
      config: { scope: 'credentials:reveal', action: AuditAction.revealed },
      schema: {
        tags: ['registry'],
        summary: 'Reveal a value (needs credentials:reveal; audited)',
        params: nameParams,
        querystring: revealQuery,
        response: {
          200: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'integer' }, value: { type: 'string' } } },
          ...errorResponses,
          500: problemSchema,
        },
      },
    },
    async (request) => {
      const revealed = await registry.reveal(requireCaller(request), request.params.name, request.query.version);
      return { name: revealed.credential.name, version: revealed.version, value: revealed.value };
    },
  );
}
