import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit/audit.service.js';
import { requireCaller } from '../http/auth.js';
import { errorResponses } from '../http/shared-schemas.js';
import type { Scheduler } from './scheduler.js';

const nullableString = { type: ['string', 'null'] } as const;

const jobSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    schedule: { type: 'string', description: 'Cron expression, or `every N s` for alert delivery' },
    timezone: { ...nullableString, description: 'IANA time zone of the cron expression' },
    last_run_at: nullableString,
    last_status: { type: ['string', 'null'], enum: ['running', 'succeeded', 'failed', 'interrupted', null] },
    last_error: nullableString,
    last_duration_ms: { type: ['integer', 'null'] },
    next_run_at: { ...nullableString, description: 'In the past when a run is overdue; the leader starts it at its next tick' },
  },
} as const;

/**
 * `GET /scheduler`: the leader, and each job's schedule, last run and next run. It needs `audit:read`
 * (or `admin`), like the audit log, because it shows operations rather than credentials.
 */
export function registerSchedulerRoutes(app: FastifyInstance, deps: { scheduler: Scheduler; audit: AuditLog }): void {
  app.get(
    '/scheduler',
    {
      config: { scope: 'audit:read', action: 'scheduler_read' },
      schema: {
        tags: ['scheduler'],
        summary: 'Scheduler leader, and each job with its schedule, last run and next run',
        response: {
          200: {
            type: 'object',
            properties: {
              leader: {
                type: ['object', 'null'],
                description: 'The process holding the leader lease, or null when no process holds an unexpired one',
                properties: { owner: { type: 'string' }, fencing_token: { type: 'integer' }, expires_at: { type: 'string' } },
              },
              this_process: {
                type: 'object',
                properties: {
                  owner: { type: 'string' },
                  is_leader: { type: 'boolean' },
                  scheduler_running: { type: 'boolean', description: 'False when this process was started with AEGIS_SCHEDULER=off' },
                },
              },
              jobs: { type: 'array', items: jobSchema },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const caller = requireCaller(request);
      const state = await deps.scheduler.state();
      await deps.audit.record({ credentialName: '*', action: 'scheduler_read', actor: caller.actor, ipAddress: caller.ipAddress, success: true, details: {} });
      return {
        leader: state.leader ? { owner: state.leader.owner, fencing_token: state.leader.fencingToken, expires_at: state.leader.expiresAt } : null,
        this_process: { owner: state.owner, is_leader: state.isLeader, scheduler_running: state.running },
        jobs: state.jobs.map((job) => ({
          name: job.name,
          schedule: job.schedule,
          timezone: job.timezone,
          last_run_at: job.lastRunAt,
          last_status: job.lastStatus,
          last_error: job.lastError,
          last_duration_ms: job.lastDurationMs,
          next_run_at: job.nextRunAt,
        })),
      };
    },
  );
}
