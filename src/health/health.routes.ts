import type { FastifyInstance } from 'fastify';
import { requireCaller } from '../http/auth.js';
import { errorResponses, pagingQuery } from '../http/shared-schemas.js';
import { CREDENTIAL_NAME_PATTERN } from '../lib/names.js';
import { STATUSES, type CredentialStatus } from '../registry/credential.types.js';
import type { HealthMonitor } from './health-monitor.js';

const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: CREDENTIAL_NAME_PATTERN, maxLength: 128 } },
} as const;

const nullableString = { type: ['string', 'null'] } as const;
const nullableInteger = { type: ['integer', 'null'] } as const;

const dashboardEntry = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    status: { type: 'string' },
    health: { type: 'string' },
    colour: { type: 'string' },
    label: { type: 'string' },
    expires_in_hours: nullableInteger,
    expires_at: nullableString,
    last_used: nullableString,
    last_rotated_at: nullableString,
    next_rotation_at: nullableString,
    last_health_check: nullableString,
    provider: { type: 'string' },
    credential_type: { type: 'string' },
  },
} as const;

const expiringEntry = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    status: { type: 'string' },
    expires_at: { type: 'string' },
    expires_in_hours: { type: 'integer' },
    alert_threshold_hours: { type: 'integer' },
    provider: { type: 'string' },
    credential_type: { type: 'string' },
    rotation_enabled: { type: 'boolean' },
    rotation_strategy: { type: 'string' },
    next_rotation_at: nullableString,
  },
} as const;

/**
 * Registers the health endpoints: test one credential, list its checks, check all, the dashboard and the
 * expiring list.
 * Checking all needs credentials:rotate, like the scheduled rotation run, because it sends every stored
 * value to its provider and can mark any credential failed. A read token may test one credential at a time.
 */
export function registerHealthMonitorRoutes(app: FastifyInstance, health: HealthMonitor): void {
  app.post<{ Params: { name: string } }>(
    '/credentials/:name/test',
    {
      config: { scope: 'credentials:read', action: 'tested' },
      schema: {
        tags: ['health'],
        summary: "Test the current value at its provider now, record the check and update the credential's status",
        params: nameParams,
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string', enum: ['healthy', 'unhealthy', 'unknown'] },
              response_time_ms: nullableInteger,
              details: { type: 'object', additionalProperties: true },
              error: nullableString,
              checked_at: { type: 'string' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const result = await health.checkOne(requireCaller(request), request.params.name);
      return { status: result.status, response_time_ms: result.responseTimeMs, details: result.details, error: result.error, checked_at: result.checkedAt };
    },
  );

  app.get<{ Params: { name: string }; Querystring: { limit: number; offset: number } }>(
    '/credentials/:name/health-checks',
    {
      config: { scope: 'credentials:read', action: 'health_checks_read' },
      schema: {
        tags: ['health'],
        summary: "List a credential's stored health checks, newest first",
        params: nameParams,
        querystring: { type: 'object', additionalProperties: false, properties: { ...pagingQuery } },
        response: {
          200: {
            type: 'object',
            properties: {
              credential_name: { type: 'string' },
              checks: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    checked_at: { type: 'string' },
                    status: { type: 'string', enum: ['healthy', 'unhealthy', 'unknown'] },
                    response_time_ms: nullableInteger,
                    error_message: nullableString,
                  },
                },
              },
              total: { type: 'integer' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const history = await health.history(requireCaller(request), request.params.name, { limit: request.query.limit, offset: request.query.offset });
      return {
        credential_name: history.credential.name,
        checks: history.checks.map((check) => ({
          checked_at: check.checkedAt,
          status: check.status,
          response_time_ms: check.responseTimeMs,
          error_message: check.errorMessage,
        })),
        total: history.total,
      };
    },
  );

  app.post(
    '/health/check-all',
    {
      config: { scope: 'credentials:rotate', action: 'checked_all' },
      schema: {
        tags: ['health'],
        summary: 'Test every non-retired credential the token reaches, a bounded number at a time',
        response: {
          200: {
            type: 'object',
            properties: {
              checked: { type: 'integer' },
              healthy: { type: 'integer' },
              unhealthy: { type: 'integer' },
              details: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { name: { type: 'string' }, status: { type: 'string' }, response_time_ms: nullableInteger, error: nullableString },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => health.checkAll(requireCaller(request)),
  );

  app.get<{ Querystring: { limit: number; offset: number; status?: CredentialStatus; alert_limit: number } }>(
    '/health/dashboard',
    {
      config: { scope: 'credentials:read', action: 'dashboard_read' },
      schema: {
        tags: ['health'],
        summary: 'Counts by status, credentials with their traffic-light colour, and the newest alerts',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pagingQuery,
            status: { type: 'string', enum: [...STATUSES] },
            alert_limit: { type: 'integer', minimum: 0, maximum: 100, default: 20 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              summary: {
                type: 'object',
                properties: {
                  total: { type: 'integer' },
                  healthy: { type: 'integer' },
                  expiring: { type: 'integer' },
                  expired: { type: 'integer' },
                  failed: { type: 'integer' },
                  rotating: { type: 'integer' },
                  retired: { type: 'integer' },
                },
              },
              credentials: { type: 'array', items: dashboardEntry },
              total: { type: 'integer' },
              alerts: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { credential: { type: 'string' }, alert_type: { type: 'string' }, message: { type: 'string' }, created_at: { type: 'string' } },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) =>
      health.dashboard(requireCaller(request), {
        limit: request.query.limit,
        offset: request.query.offset,
        status: request.query.status,
        alertLimit: request.query.alert_limit,
      }),
  );

  app.get<{ Querystring: { threshold_hours?: number; limit: number; offset: number } }>(
    '/health/expiring',
    {
      config: { scope: 'credentials:read', action: 'expiring_read' },
      schema: {
        tags: ['health'],
        summary: "Credentials that expire within threshold_hours (default: each credential's alert_threshold_hours), soonest first",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { threshold_hours: { type: 'integer', minimum: 0, maximum: 87_600 }, ...pagingQuery },
        },
        response: {
          200: { type: 'object', properties: { credentials: { type: 'array', items: expiringEntry }, count: { type: 'integer' } } },
          ...errorResponses,
        },
      },
    },
    async (request) =>
      health.expiring(requireCaller(request), { thresholdHours: request.query.threshold_hours, limit: request.query.limit, offset: request.query.offset }),
  );
}
