import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { ValidationError } from '../lib/errors.js';

/**
 * Rejects a query parameter given more than once (`?limit=1&limit=2`) on a route whose schema takes
 * it once, with a message that says so. Without this check the parser makes such a parameter an
 * array, and the schema's message ("must be integer") describes the wrong mistake.
 */
export function rejectRepeatedQueryParameters(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const properties = (route.schema?.querystring as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties;
    if (properties === undefined) return;
    const single = new Set(Object.keys(properties).filter((name) => properties[name]?.type !== 'array'));
    const check = async (request: FastifyRequest): Promise<void> => {
      for (const [name, value] of Object.entries(request.query as Record<string, unknown>)) {
        if (Array.isArray(value) && single.has(name)) throw new ValidationError(`querystring.${name}`, `is given ${value.length} times. Give it once.`);
      }
    };
    const existing = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [check, ...existing];
  });
}
