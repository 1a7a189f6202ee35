import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';

/** Adds the security headers every response carries. */
export function registerSecurityHeaders(app: FastifyInstance, _config: Config): void {
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
  });
}
