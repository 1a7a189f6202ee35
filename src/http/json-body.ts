import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { AegisError, ValidationError } from '../lib/errors.js';
import { findDuplicateKey } from '../lib/duplicate-keys.js';

/**
 * Parses JSON bodies with Fastify's own parser (prototype keys rejected), after three checks of its own:
 * - A body that is not UTF-8 is a 400. Fastify decodes it with U+FFFD for each bad byte, so a value
 *   sent in Latin-1 would be stored changed instead of byte for byte.
 * - A charset other than UTF-8 in Content-Type is a 415, for the same reason.
 * - An empty body with a JSON Content-Type counts as no body on a route that takes none, since many
 *   clients send the header with every request. Elsewhere it stays a 400.
 * After parsing, a key given twice in one object is a 400 naming it (see findDuplicateKey).
 */
export function parseJsonBodies(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    const charset = mediaTypeParameters(request.headers['content-type'] ?? '').get('charset')?.toLowerCase();
    // ASCII is a subset of UTF-8, so a body declared as ASCII is checked as UTF-8 below.
    if (charset !== undefined && !utf8Charsets.has(charset)) {
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
    const text = body.toString('utf8');
    parseJson(request, text, (error, parsed) => {
      if (error) {
        done(error, undefined);
        return;
      }
      const duplicate = findDuplicateKey(text);
      if (duplicate !== undefined) {
        done(duplicateKeyError(duplicate.join('.')), undefined);
        return;
      }
      done(null, parsed);
    });
  });
}

const utf8Charsets = new Set(['utf-8', 'utf8', 'us-ascii']);

/**
 * Builds the 400 for a key given twice in one object. The problem names the path only when it looks like field
 * names, so that control characters from a key of `metadata` reach neither the response nor the audit log.
 */
function duplicateKeyError(path: string): ValidationError {
  if (!/^[A-Za-z0-9_.:/-]{1,200}$/.test(path)) return new ValidationError('body', 'contains a key given twice in one object. Give each key once.');
  return new ValidationError(path, 'is given twice in one JSON object. Give each key once.');
}

/**
 * Reads the parameters of a Content-Type value (RFC 9110, section 5.6.6): `; name=value` pairs after
 * the media type, where a value is a token or a quoted string, so a `;` or `charset=` inside quotes
 * belongs to its value. Names are lowercased; a later repeat of a name is ignored.
 */
function mediaTypeParameters(header: string): Map<string, string> {
  const parameters = new Map<string, string>();
  const pattern = /;\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))\s*/gy;
  pattern.lastIndex = header.indexOf(';') === -1 ? header.length : header.indexOf(';');
  for (let match = pattern.exec(header); match !== null; match = pattern.exec(header)) {
    const name = match[1]!.toLowerCase();
    const value = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3]!;
    if (!parameters.has(name)) parameters.set(name, value);
  }
  return parameters;
}
