import type { FastifyInstance } from 'fastify';
import { requireCaller } from '../../http/auth.js';
import { errorResponses, plainTextPattern, problemSchema } from '../../http/shared-schemas.js';
import { CREDENTIAL_NAME_PATTERN } from '../../lib/names.js';
import type { ApplyRequest, N8nService } from './n8n.service.js';

const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: CREDENTIAL_NAME_PATTERN, maxLength: 128 } },
} as const;

const n8nErrors = { ...errorResponses, 501: problemSchema, 502: problemSchema } as const;

/** n8n endpoints: apply a credential to a workflow node, and sync with n8n's credential list. */
export function registerN8nRoutes(app: FastifyInstance, n8n: N8nService): void {
  app.post<{ Params: { name: string }; Body: ApplyRequest }>(
    '/credentials/:name/apply',
    {
      config: { scope: 'credentials:apply', action: 'applied' },
      schema: {
        tags: ['n8n'],
        summary: "Attach an n8n credential to a workflow node; the value never leaves AEGIS",
        params: nameParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['workflow_id', 'node_name'],
          properties: {
            workflow_id: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' },
            node_name: { type: 'string', minLength: 1, maxLength: 256, pattern: plainTextPattern },
            requested_by: { type: 'string', maxLength: 128, pattern: plainTextPattern, description: 'Recorded in the audit details; the actor is the token’s' },
          },
        },
        response: {
          200: { type: 'object', properties: { status: { type: 'string' }, credential: { type: 'string' }, workflow_id: { type: 'string' }, node: { type: 'string' } } },
          ...n8nErrors,
        },
      },
    },
    async (request) => n8n.apply(requireCaller(request), request.params.name, request.body),
  );

  const named = { type: 'array', items: { type: 'object', additionalProperties: true, properties: { name: { type: 'string' }, n8n_id: { type: 'string' } } } } as const;
  app.post(
    '/sync/n8n',
    {
      config: { scope: 'credentials:write', action: 'synced' },
      schema: {
        tags: ['n8n'],
        summary: "Register n8n's credentials (metadata only), update changed names and types, report missing ones",
        response: {
          200: {
            type: 'object',
            properties: {
              synced: { type: 'integer' },
              new: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, n8n_id: { type: 'string' }, type: { type: 'string' } } } },
              updated: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, n8n_id: { type: 'string' }, changes: { type: 'array', items: { type: 'string' } } } } },
              missing: named,
              skipped: { type: 'array', items: { type: 'object', properties: { n8n_id: { type: 'string' }, n8n_name: { type: 'string' }, reason: { type: 'string' } } } },
            },
          },
          ...n8nErrors,
        },
      },
    },
    async (request) => n8n.sync(requireCaller(request)),
  );
}
