import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

/**
 * Two validators: bodies are checked strictly (no type coercion, unknown fields rejected, nothing
 * removed silently), while path and query parameters, which arrive as text, are coerced to the declared
 * types. Fastify's default would strip unknown body fields and coerce "1" to 1.
 */
function makeAjv(coerce: boolean): Ajv.default {
  const ajv = new Ajv.default({
    coerceTypes: coerce,
    removeAdditional: false,
    useDefaults: true,
    allErrors: false,
    strict: false,
  });
  addFormats.default(ajv, { mode: 'full', formats: ['date-time', 'uri', 'uuid'] });
  return ajv;
}

const bodyAjv = makeAjv(false);
const parameterAjv = makeAjv(true);

export const validatorCompiler: FastifySchemaCompiler<Record<string, unknown>> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : parameterAjv).compile(schema) as ReturnType<FastifySchemaCompiler<Record<string, unknown>>>;
