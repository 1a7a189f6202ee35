import type { FastifyInstance } from 'fastify';
import { requireCaller } from '../http/auth.js';
import { errorResponses, problemSchema } from '../http/shared-schemas.js';
import { CREDENTIAL_NAME_PATTERN } from '../lib/names.js';
import { checkValue } from '../registry/credential-input.js';
import { historyEntryView } from './history-view.js';
import { rotateBody } from './rotation.schemas.js';
import type { Rotation } from './rotation.service.js';

const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: CREDENTIAL_NAME_PATTERN, maxLength: 128 } },
} as const;

const historyEntry = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    credential_name: { type: 'string' },
    rotated_at: { type: 'string' },
    previous_version: { type: ['integer', 'null'] },
    new_version: { type: ['integer', 'null'] },
    trigger: { type: 'string' },
    duration_ms: { type: ['integer', 'null'] },
    success: { type: 'boolean' },
    error_message: { type: ['string', 'null'] },
    rolled_back: { type: 'boolean' },
    rollback_at: { type: ['string', 'null'] },
    actor: { type: ['string', 'null'] },
    reason: { type: ['string', 'null'] },
    attempts: { type: 'integer' },
  },
} as const;

const scheduleEntry = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    provider: { type: 'string' },
    rotation_strategy: { type: 'string' },
    next_rotation_at: { type: 'string' },
    overdue_hours: { type: 'integer' },
  },
} as const;

/** Rotation endpoints: rotate, rollback, the schedule, the scheduled run and the history. */
export function registerRotationRoutes(app: FastifyInstance, rotation: Rotation): void {
  app.post<{ Params: { name: string }; Body: { trigger?: 'manual' | 'emergency'; reason?: string; value?: string } }>(
    '/credentials/:name/rotate',
    {
      config: { scope: 'credentials:rotate', action: 'rotated' },
      schema: {
        tags: ['rotation'],
        summary: 'Rotate now (manual or emergency); the new value is generated, issued by the provider, or given',
        params: nameParams,
        body: rotateBody,
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string' },
              previous_version: { type: 'integer' },
              new_version: { type: 'integer' },
              duration_ms: { type: 'integer' },
              attempts: { type: 'integer' },
              revoked_old_value: { type: 'boolean' },
            },
          },
          ...errorResponses,
          502: problemSchema,
        },
      },
    },
    async (request) => {
      const body = request.body ?? {};
      if (body.value !== undefined) checkValue(body.value);
      const outcome = await rotation.engine.rotate(requireCaller(request), request.params.name, {
        trigger: body.trigger ?? 'manual',
        reason: body.reason,
        value: body.value,
      });
      return {
        status: 'rotated',
        previous_version: outcome.previousVersion,
        new_version: outcome.newVersion,
        duration_ms: outcome.durationMs,
        attempts: outcome.attempts,
        revoked_old_value: outcome.revoked,
      };
    },
  );

  app.post<{ Params: { name: string }; Body: { version?: number } | null }>(
    '/credentials/:name/rollback',
    {
      config: { scope: 'credentials:rotate', action: 'rolled_back' },
      schema: {
        tags: ['rotation'],
        summary: 'Make an earlier version current again (the previous one by default)',
        params: nameParams,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { version: { type: 'integer', minimum: 1, maximum: 2_147_483_647 } } },
        response: {
          200: { type: 'object', properties: { status: { type: 'string' }, from_version: { type: 'integer' }, to_version: { type: 'integer' } } },
          ...errorResponses,
          410: problemSchema,
          502: problemSchema,
        },
      },
    },
    async (request) => {
      const outcome = await rotation.rollback(requireCaller(request), request.params.name, request.body?.version);
      return { status: 'rolled_back', from_version: outcome.fromVersion, to_version: outcome.toVersion };
    },
  );

  app.get<{ Querystring: { limit: number } }>(
    '/rotation/schedule',
    {
      config: { scope: 'credentials:read', action: 'schedule_read' },
      schema: {
        tags: ['rotation'],
        summary: 'Upcoming and overdue automatic rotations',
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } },
        response: {
          200: { type: 'object', properties: { upcoming_rotations: { type: 'array', items: scheduleEntry }, overdue_rotations: { type: 'array', items: scheduleEntry } } },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const schedule = await rotation.schedule(requireCaller(request), request.query.limit);
      return { upcoming_rotations: schedule.upcoming, overdue_rotations: schedule.overdue };
    },
  );

  app.post(
    '/rotation/run-scheduled',
    {
      config: { scope: 'credentials:rotate', action: 'scheduled_run' },
      schema: {
        tags: ['rotation'],
        summary: 'Rotate every credential whose scheduled or expiry rotation is due',
        response: {
          200: {
            type: 'object',
            properties: {
              rotated: { type: 'integer' },
              failed: { type: 'integer' },
              skipped: { type: 'integer' },
              details: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    credential: { type: 'string' },
                    status: { type: 'string' },
                    trigger: { type: 'string' },
                    previous_version: { type: 'integer' },
                    new_version: { type: 'integer' },
                    error: { type: 'string' },
                  },
                },
              },
              recovered: {
                type: 'array',
                description: 'Rotations a stopped process left rotating, closed before this run: completed keeps the new value, restored puts the old one back, failed means putting it back failed',
                items: { type: 'object', properties: { credential: { type: 'string' }, outcome: { type: 'string', enum: ['completed', 'restored', 'failed'] } } },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => rotation.runScheduled(requireCaller(request)),
  );

  app.get<{ Querystring: { credential_name?: string; limit: number; offset: number } }>(
    '/rotation/history',
    {
      config: { scope: 'credentials:read', action: 'history_read' },
      schema: {
        tags: ['rotation'],
        summary: 'Rotations, rollbacks and failures, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            credential_name: { type: 'string', pattern: CREDENTIAL_NAME_PATTERN, maxLength: 128 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0 },
          },
        },
        response: { 200: { type: 'object', properties: { history: { type: 'array', items: historyEntry }, total: { type: 'integer' } } }, ...errorResponses },
      },
    },
    async (request) => {
      const { history, total } = await rotation.history(requireCaller(request), {
        credentialName: request.query.credential_name,
        limit: request.query.limit,
        offset: request.query.offset,
      });
      return { total, history: history.map(historyEntryView) };
    },
  );
}
