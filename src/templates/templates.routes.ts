import type { FastifyInstance } from 'fastify';
import { requireCaller } from '../http/auth.js';
import { errorResponses, multilineTextPattern, plainTextPattern } from '../http/shared-schemas.js';
import { CREDENTIAL_NAME_PATTERN, CREDENTIAL_TYPE_MAX_LENGTH, CREDENTIAL_TYPE_PATTERN, TAG_PATTERN } from '../lib/names.js';
import { credentialView } from '../registry/credential-view.js';
import { credentialView as credentialViewSchema } from '../registry/credentials.schemas.js';
import { PROVIDERS, ROTATION_STRATEGIES } from '../registry/credential.types.js';
import type { CredentialTemplate } from './template.types.js';
import type { ImportRequest, NewTemplate, TemplateService } from './templates.service.js';

const rotationDefaults = {
  type: 'object',
  additionalProperties: false,
  required: ['rotation_enabled', 'rotation_strategy', 'rotation_interval_hours'],
  properties: {
    rotation_enabled: { type: 'boolean' },
    rotation_strategy: { type: 'string', enum: ROTATION_STRATEGIES },
    rotation_interval_hours: { type: 'integer', minimum: 1, maximum: 87_600 },
  },
} as const;

const templateSchemaDocument = {
  type: 'object',
  additionalProperties: false,
  required: ['fields', 'secret_field', 'provider_config'],
  properties: {
    fields: { type: 'object', additionalProperties: true },
    secret_field: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' },
    base_url: { type: ['string', 'null'], maxLength: 2048, pattern: '^https?://[^\\s{}]+$' },
    provider_config: { type: 'object', additionalProperties: true },
  },
} as const;

const templateView = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    credential_type: { type: 'string' },
    n8n_credential_type: { type: 'string' },
    provider: { type: 'string' },
    description: { type: ['string', 'null'] },
    schema: { type: 'object', additionalProperties: true },
    rotation_defaults: { type: 'object', additionalProperties: true },
    builtin: { type: 'boolean' },
    created_at: { type: ['string', 'null'] },
  },
} as const;

function templateResponse(template: CredentialTemplate) {
  return { ...template, n8n_credential_type: template.credential_type };
}

/** Template endpoints: list, add (admins) and import a template's values as a credential. */
export function registerTemplateRoutes(app: FastifyInstance, templates: TemplateService): void {
  app.get(
    '/templates',
    {
      config: { scope: 'credentials:read', action: 'templates_listed' },
      schema: {
        tags: ['templates'],
        summary: 'Credential templates: the built-in catalogue and the ones admins added',
        response: { 200: { type: 'object', properties: { templates: { type: 'array', items: templateView } } }, ...errorResponses },
      },
    },
    async (request) => ({ templates: (await templates.list(requireCaller(request))).map(templateResponse) }),
  );

  app.post<{ Body: NewTemplate }>(
    '/templates',
    {
      config: { scope: 'admin', action: 'template_created' },
      schema: {
        tags: ['templates'],
        summary: 'Add a credential template',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'credential_type', 'provider', 'schema'],
          properties: {
            name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' },
            credential_type: { type: 'string', minLength: 1, maxLength: CREDENTIAL_TYPE_MAX_LENGTH, pattern: CREDENTIAL_TYPE_PATTERN },
            provider: { type: 'string', enum: PROVIDERS },
            description: { type: ['string', 'null'], maxLength: 2000, pattern: multilineTextPattern },
            schema: templateSchemaDocument,
            rotation_defaults: rotationDefaults,
          },
        },
        response: { 201: templateView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const template = await templates.add(requireCaller(request), request.body);
      return reply.code(201).send(templateResponse(template));
    },
  );

  app.post<{ Body: ImportRequest }>(
    '/import/template',
    {
      config: { scope: 'credentials:write', action: 'imported' },
      schema: {
        tags: ['templates'],
        summary: 'Create a credential from a template and its values; the secret field becomes version 1',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['template_name', 'values'],
          properties: {
            template_name: { type: 'string', minLength: 1, maxLength: 64, pattern: plainTextPattern },
            values: { type: 'object', additionalProperties: true },
            name: { type: 'string', pattern: CREDENTIAL_NAME_PATTERN, minLength: 1, maxLength: 128 },
            tags: { type: 'array', maxItems: 32, uniqueItems: true, items: { type: 'string', pattern: TAG_PATTERN } },
          },
        },
        response: {
          200: { type: 'object', properties: { credential: credentialViewSchema, created: { type: 'boolean' } } },
          201: { type: 'object', properties: { credential: credentialViewSchema, created: { type: 'boolean' } } },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const outcome = await templates.import(requireCaller(request), request.body);
      return reply.code(outcome.created ? 201 : 200).send({ credential: credentialView(outcome.credential), created: outcome.created });
    },
  );
}
