import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { ValidationError } from '../lib/errors.js';

const methodsWithBody = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const methodsWithoutBody = new Set(['GET', 'HEAD']);

/**
 * Rejects a body sent to a route that takes none, so that a client that sends `{"dry_run": true}` to
 * POST /rotation/run-scheduled gets 400 instead of a real run. An empty object or `null` is accepted,
 * because some clients send one with every POST. A GET or HEAD request with any body is a 400 as well,
 * so that `{"version": 1}` sent to GET /credentials/{name}/value does not return the current value.
 */
export function rejectUnexpectedBodies(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.schema?.body !== undefined) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const check = methods.some((method) => methodsWithBody.has(method)) ? checkNoBody : methods.some((method) => methodsWithoutBody.has(method)) ? checkNoContent : undefined;
    if (check === undefined) return;
    const existing = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [check, ...existing];
  });
}

/** Fastify never reads the body of a GET or HEAD request, so the headers tell whether one was sent. */
async function checkNoContent(request: FastifyRequest): Promise<void> {
  const length = request.headers['content-length'];
  if (request.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return;
  const route = `${request.method} ${request.routeOptions.url}`;
  throw new ValidationError('body', `must be empty, because ${route} takes no body. Send its options as query parameters, which /openapi.json lists.`);
}

async function checkNoBody(request: FastifyRequest): Promise<void> {
  const body: unknown = request.body;
  if (body === undefined || body === null) return;
  const route = `${request.method} ${request.routeOptions.url}`;
  if (typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('body', `must be empty, {} or null, because ${route} takes no body. Send the request without one.`);
  const [field] = Object.keys(body);
  if (field !== undefined) throw new ValidationError(field, `is not a field of this request, because ${route} takes no body. Send the request without one.`);
}
