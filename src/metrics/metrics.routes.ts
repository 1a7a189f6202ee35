import type { FastifyInstance } from 'fastify';
import { requireCaller } from '../http/auth.js';
import { errorResponses } from '../http/shared-schemas.js';
import type { Vault } from '../vault.js';
import { readDatabaseState, type DatabaseState } from './database-state.js';
import { SCRAPE_AUDIT_WINDOW_MS, ScrapeAuditWindow } from './scrape-audit.js';

/** The audit action of a scrape. */
export const METRICS_READ_ACTION = 'metrics_read';

/**
 * Registers GET /metrics (Prometheus text format) and the hook that counts every response. The hook is
 * added after the other routes and still covers them, because Fastify 5 applies a context's hooks to
 * all of its routes when the app becomes ready (metrics.test.ts checks routes declared earlier).
 */
export function registerMetricsRoutes(app: FastifyInstance, vault: Vault): void {
  const { metrics } = vault;
  const auditWindow = new ScrapeAuditWindow();
  let databaseReadFailing = false;

  app.addHook('onResponse', (request, reply, done) => {
    metrics.recordRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime);
    done();
  });

  /** Reads the stored state, or returns null and logs once per outage when the database cannot be read. */
  async function readState(): Promise<DatabaseState | null> {
    try {
      const state = await readDatabaseState(vault.db, vault.alerts.sinkNames, vault.clock.now());
      if (databaseReadFailing) vault.log.info('metrics database read succeeded again; aegis_database_up is 1');
      databaseReadFailing = false;
      return state;
    } catch (error) {
      const err = { type: (error as Error).name, code: (error as { code?: unknown }).code, message: (error as Error).message };
      if (databaseReadFailing) vault.log.debug({ err }, 'metrics database read failed again');
      else vault.log.warn({ err }, 'metrics database read failed; aegis_database_up is 0 until a read succeeds');
      databaseReadFailing = true;
      return null;
    }
  }

  app.get(
    '/metrics',
    {
      config: { scope: 'metrics:read', action: METRICS_READ_ACTION },
      // A HEAD request would run the database reads only to drop the body.
      exposeHeadRoute: false,
      schema: {
        tags: ['metrics'],
        summary: 'Metrics in Prometheus text format: requests, rotations, health checks, alert queues and credential counts',
        response: { 200: { type: 'string', description: 'Prometheus text exposition format 0.0.4' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const caller = requireCaller(request);
      const body = await metrics.render(await readState(), vault.scheduler.isLeader);

      // One audit entry per token per hour; see ScrapeAuditWindow for why and what it records.
      const tokenKey = caller.tokenId ?? caller.actor;
      const unrecorded = auditWindow.admit(tokenKey, vault.clock.now().getTime());
      if (unrecorded !== null) {
        try {
          await vault.audit.record({
            credentialName: '*',
            action: METRICS_READ_ACTION,
            actor: caller.actor,
            ipAddress: caller.ipAddress,
            success: true,
            details: { unrecorded_scrapes: unrecorded, window_seconds: SCRAPE_AUDIT_WINDOW_MS / 1000 },
          });
        } catch (error) {
          auditWindow.retract(tokenKey, unrecorded);
          throw error;
        }
      }
      return reply.type(metrics.contentType).send(body);
    },
  );
}
