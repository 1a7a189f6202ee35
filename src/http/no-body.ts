import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { ValidationError } from '../lib/errors.js';

const methodsWithBody = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Rejects a body sent to a route that takes none, so that a client that sends `{"dry_run": true}` to
 * POST /rotation/run-scheduled gets 400 instead of a real run. An empty object or `null` is accepted,
 * because some clients send one with every POST.
 */
export function rejectUnexpectedBodies(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (route.schema?.body !== undefined || !methods.some((method) => methodsWithBody.has(method))) return;
    const existing = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [checkNoBody, ...existing];
  });
}

async function checkNoBody(request: FastifyRequest): Promise<void> {
  const body: unknown = request.body;
  if (body === undefined || body === null) return;
  const route = `${request.method} ${request.routeOptions.url}`;
  if (typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('body', `must be empty, {} or null, because ${route} takes no body. Send the request without one.`);
  const [field] = Object.keys(body);
  if (field !== undefined) throw new ValidationError(field, `is not a field of this request, because ${route} takes no body. Send the request without one.`);
}
