import type { FastifyInstance } from 'fastify';
import type { Db } from '../db/database.js';
import { isDatabaseUnavailable } from '../db/database-errors.js';
import type { Clock } from '../lib/clock.js';
import { HealthCounts } from './health-counts.js';
import { databaseUnavailableProblem, sendProblem } from './problem.js';
import { problemSchema } from './shared-schemas.js';

export const AEGIS_VERSION = '0.1.0';

/**
 * `GET /health`: liveness, database state and counts, the one route without a token. It reads no
 * credential names. While the database is unreachable it returns 503 `database_unavailable` with
 * `database_state: "unreachable"`, so a load balancer can take the process out of rotation. The counts
 * may be up to a second old (see HealthCounts).
 */
export function registerHealthRoute(app: FastifyInstance, deps: { db: Db; clock: Clock }): void {
  const healthCounts = new HealthCounts(deps);
  app.get(
    '/health',
    {
      config: { scope: null },
      schema: {
        tags: ['health'],
        summary: 'Service status and credential counts (no token needed)',
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string' },
              agent: { type: 'string' },
              version: { type: 'string' },
              database: { type: 'string' },
              database_state: { type: 'string', enum: ['ok'] },
              credentials_count: { type: 'integer' },
              healthy_count: { type: 'integer' },
              expiring_count: { type: 'integer' },
            },
          },
          503: problemSchema,
        },
      },
    },
    async (_request, reply) => {
      let byStatus: Awaited<ReturnType<HealthCounts['read']>>;
      try {
        byStatus = await healthCounts.read();
      } catch (error) {
        if (!isDatabaseUnavailable(error)) throw error;
        return sendProblem(reply, { ...databaseUnavailableProblem(), agent: 'AEGIS', version: AEGIS_VERSION, database: deps.db.dialect, database_state: 'unreachable' });
      }
      const total = Object.values(byStatus).reduce((sum, count) => sum + count, 0);
      return {
        status: 'ok',
        agent: 'AEGIS',
        version: AEGIS_VERSION,
        database: deps.db.dialect,
        database_state: 'ok',
        credentials_count: total,
        healthy_count: byStatus.active,
        expiring_count: byStatus.expiring,
      };
    },
  );
}
