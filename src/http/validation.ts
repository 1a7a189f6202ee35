import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { fullFormats } from 'ajv-formats/dist/formats.js';
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
  addFormats.default(ajv, { mode: 'full', formats: ['uri', 'uuid'] });
  ajv.addFormat('date-time', { type: 'string', validate: isStorableDateTime });
  return ajv;
}

const rfc3339DateTime = fullFormats['date-time'] as { validate: (text: string) => boolean };

/**
 * Accepts an RFC 3339 date-time only when `Date` can parse it and both databases can store it.
 * ajv-formats alone accepts a leap second (23:59:60), which `Date.parse` turns into NaN, and
 * year 0000, which PostgreSQL's timestamptz rejects.
 */
export function isStorableDateTime(text: string): boolean {
  if (!rfc3339DateTime.validate(text)) return false;
  const millis = Date.parse(text);
  if (Number.isNaN(millis)) return false;
  const year = new Date(millis).getUTCFullYear();
  return year >= 1 && year <= 9999;
}

const bodyAjv = makeAjv(false);
const parameterAjv = makeAjv(true);

type Validator = ((data: unknown, context?: object) => boolean) & { errors?: unknown; schemaEnv?: unknown };

/**
 * Compiles a route's schema on its first request, not at start-up, which saved about 14 MiB of idle
 * memory (B8.2 in BENCHMARKS.md). Fastify reads `errors` and `schemaEnv` from the returned function,
 * so both come from the compiled one.
 */
export const validatorCompiler: FastifySchemaCompiler<Record<string, unknown>> = ({ schema, httpPart }) => {
  let compiled: Validator | undefined;
  const compile = () => (compiled ??= (httpPart === 'body' ? bodyAjv : parameterAjv).compile(schema) as Validator);
  const validate: Validator = (data, context) => {
    const valid = compile()(data, context);
    validate.errors = compiled!.errors;
    return valid;
  };
  Object.defineProperty(validate, 'schemaEnv', { get: () => compile().schemaEnv });
  return validate as ReturnType<FastifySchemaCompiler<Record<string, unknown>>>;
};
