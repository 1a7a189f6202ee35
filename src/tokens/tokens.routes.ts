import type { FastifyInstance } from 'fastify';
import { AuditAction } from '../audit/audit.types.js';
import { requireCaller } from '../http/auth.js';
import { errorResponses, nullableDateTime, pagingQuery, plainTextPattern } from '../http/shared-schemas.js';
import { TAG_PATTERN } from '../lib/names.js';
import { SCOPES } from './scopes.js';
import type { TokenService, TokenView } from './tokens.service.js';

const tokenSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    actor: { type: 'string' },
    description: { type: ['string', 'null'] },
    scopes: { type: 'array', items: { type: 'string' } },
    name_patterns: { type: 'array', items: { type: 'string' } },
    tags: { type: 'array', items: { type: 'string' } },
    created_at: { type: 'string' },
    created_by: { type: 'string' },
    expires_at: { type: ['string', 'null'] },
    last_used_at: { type: ['string', 'null'] },
    revoked_at: { type: ['string', 'null'] },
  },
} as const;

export function tokenView(token: TokenView) {
  return {
    id: token.id,
    actor: token.actor,
    description: token.description,
    scopes: token.scopes,
    name_patterns: token.namePatterns,
    tags: token.tags,
    created_at: token.createdAt,
    created_by: token.createdBy,
    expires_at: token.expiresAt,
    last_used_at: token.lastUsedAt,
    revoked_at: token.revokedAt,
  };
}

interface CreateTokenBody {
  actor: string;
  scopes: string[];
  name_patterns?: string[];
  tags?: string[];
  description?: string | null;
  expires_at?: string | null;
}

/** Token management for admins: create (the plaintext is returned once), list, revoke. */
export function registerTokenRoutes(app: FastifyInstance, tokens: TokenService): void {
  app.get<{ Querystring: { limit: number; offset: number } }>(
    '/tokens',
    {
      config: { scope: 'admin', action: AuditAction.tokensListed },
      schema: {
        tags: ['tokens'],
        summary: 'List tokens, oldest first, revoked ones included (never their secrets); `total` counts them all',
        querystring: { type: 'object', additionalProperties: false, properties: { ...pagingQuery } },
        response: { 200: { type: 'object', properties: { tokens: { type: 'array', items: tokenSchema }, total: { type: 'integer' } } }, ...errorResponses },
      },
    },
    async (request) => {
      const page = await tokens.list(requireCaller(request), { limit: request.query.limit, offset: request.query.offset });
      return { tokens: page.tokens.map(tokenView), total: page.total };
    },
  );

  app.post<{ Body: CreateTokenBody }>(
    '/tokens',
    {
      config: { scope: 'admin', action: AuditAction.tokenCreated },
      schema: {
        tags: ['tokens'],
        summary: 'Create a token; its plaintext is in this response only',
        body: {
          type: 'object',
          required: ['actor', 'scopes'],
          additionalProperties: false,
          properties: {
            actor: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:@/-]+$' },
            scopes: { type: 'array', minItems: 1, maxItems: SCOPES.length, uniqueItems: true, items: { type: 'string', enum: SCOPES } },
            name_patterns: { type: 'array', maxItems: 64, uniqueItems: true, items: { type: 'string', pattern: '^(?!.*\\.\\.)[A-Za-z0-9._/*-]{1,128}$' } },
            tags: { type: 'array', maxItems: 64, uniqueItems: true, items: { type: 'string', pattern: TAG_PATTERN } },
            description: { type: ['string', 'null'], maxLength: 500, pattern: plainTextPattern },
            expires_at: nullableDateTime,
          },
        },
        response: { 201: { type: 'object', properties: { token: { type: 'string' }, details: tokenSchema } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const created = await tokens.create(requireCaller(request), {
        actor: body.actor,
        scopes: body.scopes,
        namePatterns: body.name_patterns ?? [],
        tags: body.tags ?? [],
        description: body.description ?? null,
        expiresAt: body.expires_at ?? null,
      });
      reply.code(201);
      return { token: created.token, details: tokenView(created.view) };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/tokens/:id',
    {
      config: { scope: 'admin', action: AuditAction.tokenRevoked },
      schema: {
        tags: ['tokens'],
        summary: 'Revoke a token',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{12}$' } } },
        response: { 200: tokenSchema, ...errorResponses },
      },
    },
    async (request) => tokenView(await tokens.revoke(requireCaller(request), request.params.id)),
  );
}
