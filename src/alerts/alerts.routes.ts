import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit/audit.service.js';
import { requireCaller } from '../http/auth.js';
import { errorResponses, plainTextPattern } from '../http/shared-schemas.js';
import { CREDENTIAL_NAME_FILTER_PATTERN } from '../lib/names.js';
import type { AlertService } from './alert.service.js';
import type { DeliveryState } from './deliveries.repository.js';

const deliveryEntry = {
  type: 'object',
  properties: {
    sink: { type: 'string' },
    state: { type: 'string', enum: ['pending', 'delivered', 'dead'] },
    attempts: { type: 'integer' },
    next_attempt_at: { type: 'string' },
    last_error: { type: ['string', 'null'] },
    delivered_at: { type: ['string', 'null'] },
  },
} as const;

const alertEntry = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    alert_type: { type: 'string' },
    credential_name: { type: 'string' },
    message: { type: 'string' },
    priority: { type: 'string' },
    channel: { type: 'string' },
    details: { type: 'object', additionalProperties: true },
    created_at: { type: 'string' },
    state: { type: 'string', enum: ['pending', 'delivered', 'dead'] },
    delivered_at: { type: ['string', 'null'] },
    deliveries: { type: 'array', items: deliveryEntry },
  },
} as const;

interface AlertsQuery {
  alert_type?: string;
  credential_name?: string;
  state?: DeliveryState;
  limit: number;
  offset: number;
}

/** Alert endpoints: the list with each sink's delivery state, and a delivery run on demand. */
export function registerAlertRoutes(app: FastifyInstance, deps: { alerts: AlertService; audit: AuditLog }): void {
  app.get<{ Querystring: AlertsQuery }>(
    '/alerts',
    {
      config: { scope: 'audit:read', action: 'alerts_read' },
      schema: {
        tags: ['alerts'],
        summary: 'Alerts newest first, with their delivery state at each sink',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            alert_type: { type: 'string', minLength: 1, maxLength: 64, pattern: plainTextPattern },
            credential_name: { type: 'string', pattern: CREDENTIAL_NAME_FILTER_PATTERN, maxLength: 128 },
            state: { type: 'string', enum: ['pending', 'delivered', 'dead'] },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0 },
          },
        },
        response: { 200: { type: 'object', properties: { alerts: { type: 'array', items: alertEntry }, total: { type: 'integer' } } }, ...errorResponses },
      },
    },
    async (request) => {
      const caller = requireCaller(request);
      const query = request.query;
      const { alerts, total } = await deps.alerts.list({
        alertType: query.alert_type,
        credentialName: query.credential_name,
        state: query.state,
        reach: caller,
        limit: query.limit,
        offset: query.offset,
      });
      await deps.audit.record({
        credentialName: query.credential_name ?? '*',
        action: 'alerts_read',
        actor: caller.actor,
        ipAddress: caller.ipAddress,
        success: true,
        details: { returned: alerts.length, total },
      });
      return {
        total,
        alerts: alerts.map((alert) => ({
          id: alert.id,
          alert_type: alert.alertType,
          credential_name: alert.credentialName,
          message: alert.message,
          priority: alert.priority,
          channel: alert.channel,
          details: alert.details,
          created_at: alert.createdAt,
          state: alert.state,
          delivered_at: alert.deliveredAt,
          deliveries: alert.deliveries.map((delivery) => ({
            sink: delivery.sink,
            state: delivery.state,
            attempts: delivery.attempts,
            next_attempt_at: delivery.nextAttemptAt,
            last_error: delivery.lastError,
            delivered_at: delivery.deliveredAt,
          })),
        })),
      };
    },
  );

  app.post(
    '/alerts/deliver',
    {
      config: { scope: 'admin', action: 'alerts_delivered' },
      schema: {
        tags: ['alerts'],
        summary: 'Send every alert delivery that is due now, as the scheduler does every few seconds',
        response: {
          200: { type: 'object', properties: { delivered: { type: 'integer' }, failed: { type: 'integer' }, pending: { type: 'integer' } } },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const caller = requireCaller(request);
      const run = await deps.alerts.deliverDue();
      await deps.audit.record({ credentialName: '*', action: 'alerts_delivered', actor: caller.actor, ipAddress: caller.ipAddress, success: true, details: { ...run } });
      return run;
    },
  );
}
