import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { AegisError, ValidationError } from '../lib/errors.js';

/**
 * Parses JSON bodies with Fastify's own parser (prototype keys rejected), after three checks of its own:
 * - A body that is not UTF-8 is a 400. Fastify decodes it with U+FFFD for each bad byte, so a value
 *   sent in Latin-1 would be stored changed instead of byte for byte.
 * - A charset other than UTF-8 in Content-Type is a 415, for the same reason.
 * - An empty body with a JSON Content-Type counts as no body on a route that takes none, since many
 *   clients send the header with every request. Elsewhere it stays a 400.
 */
export function parseJsonBodies(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(request.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      done(new AegisError(415, 'unsupported_media_type', `body: the charset ${JSON.stringify(charset.slice(0, 32))} is not supported; send UTF-8 JSON with "Content-Type: application/json".`, { field: 'body' }), undefined);
      return;
    }
    if (body.length === 0 && request.routeOptions.schema?.body === undefined) {
      done(null, undefined);
      return;
    }
    if (!isUtf8(body)) {
      done(new ValidationError('body', 'must be UTF-8; it contains bytes that are not. Send the JSON encoded as UTF-8.'), undefined);
      return;
    }
    parseJson(request, body.toString('utf8'), done);
  });
}
