import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { ValidationError } from '../lib/errors.js';

/**
 * Checks query parameters that route schemas let through:
 * - A parameter given more than once (`?limit=1&limit=2`) on a route whose schema takes it once gets
 *   a message that names that mistake. Otherwise the parser makes it an array, and the schema's
 *   message ("must be an integer") describes another one.
 * - An integer parameter must be written in decimal digits.
 * - A route without a query schema takes no parameters, so that `DELETE /credentials/{name}?dry_run=true`
 *   is a 400 instead of a real retirement. The dashboard's pages and /openapi.json, which are not part
 *   of the API description, are left alone.
 */
export function checkQueryParameters(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as { querystring?: { properties?: Record<string, { type?: unknown }> }; hide?: boolean } | undefined;
    if (schema?.hide === true) return;
    const properties = schema?.querystring?.properties;
    const names = Object.keys(properties ?? {});
    const check =
      properties === undefined
        ? rejectAny
        : checkGiven(
            new Set(names.filter((name) => properties[name]?.type !== 'array')),
            new Set(names.filter((name) => properties[name]?.type === 'integer')),
          );
    const existing = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [check, ...existing];
  });
}

async function rejectAny(request: FastifyRequest): Promise<void> {
  const [name] = Object.keys(request.query as Record<string, unknown>);
  if (name === undefined) return;
  const route = `${request.method} ${request.routeOptions.url}`;
  // The name is repeated only when it looks like a parameter name, short and lowercase, so neither a
  // control character nor a token sent by mistake (aegis_..., 62 characters) reaches the response or the audit log.
  if (!/^[a-z][a-z0-9_]{0,31}$/.test(name)) throw new ValidationError('querystring', `must be empty: ${route} takes no parameters. Send the request without them.`);
  throw new ValidationError(`querystring.${name}`, `is not a parameter of ${route}, which takes none. Send the request without it.`);
}

function checkGiven(single: ReadonlySet<string>, integers: ReadonlySet<string>) {
  return async (request: FastifyRequest): Promise<void> => {
    for (const [name, value] of Object.entries(request.query as Record<string, unknown>)) {
      if (Array.isArray(value) && single.has(name)) throw new ValidationError(`querystring.${name}`, `is given ${value.length} times. Give it once.`);
      // The schema's coercion would read " " as 0 and "1e2" or "0x10" as numbers.
      if (typeof value === 'string' && integers.has(name) && !/^-?[0-9]{1,15}$/.test(value)) {
        throw new ValidationError(`querystring.${name}`, 'must be a whole number written in decimal digits, such as 50');
      }
    }
  };
}
