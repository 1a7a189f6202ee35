import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../db/database-errors.js';
import { KeyUnavailableError } from '../crypto/keyring.js';
import { AegisError } from '../lib/errors.js';
import { CREDENTIAL_NAME_FILTER_PATTERN, CREDENTIAL_NAME_PATTERN, CREDENTIAL_TYPE_PATTERN, CREDENTIAL_TYPE_RULE, TAG_PATTERN } from '../lib/names.js';
import { multilineTextPattern, plainTextPattern } from './shared-schemas.js';

/** An RFC 9457 problem document, plus AEGIS's stable `code` and, for bad input, the `field`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  field?: string;
  [extra: string]: unknown;
}

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export function problem(status: number, code: string, detail: string, extra: Record<string, unknown> = {}): Problem {
  return { type: `urn:aegis:problem:${code}`, title: titles[status] ?? 'Error', status, detail, code, ...extra };
}

/** Turns any error into a problem. Unknown errors become a 500 whose detail says nothing of the cause. */
export function toProblem(error: unknown): Problem {
  if (error instanceof AegisError) {
    return problem(error.status, error.code, error.message, { ...(error.field ? { field: error.field } : {}), ...error.extra });
  }
  const fastifyError = error as Partial<FastifyError> & { validation?: ValidationIssue[]; validationContext?: string };
  if (fastifyError.validation) return validationProblem(fastifyError.validation, fastifyError.validationContext ?? 'body');
  if (isDatabaseUnavailable(error)) return databaseUnavailableProblem();
  // Typically another process rotated the master key to one that this process's key source lacks.
  if (error instanceof KeyUnavailableError) {
    return problem(
      500,
      'key_unavailable',
      `Master key ${error.keyId}, which the vault uses, is not in this process's key source. Add that key to the configured key source, then restart this process.`,
    );
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problem(413, 'body_too_large', 'body: the request body is larger than the server accepts (AEGIS_BODY_LIMIT_BYTES).', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem(415, 'unsupported_media_type', 'body: send JSON with "Content-Type: application/json".', { field: 'body' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return problem(400, 'invalid_json', 'body: the body is empty but Content-Type is application/json; send a JSON object.', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      // Fastify raises this code for a syntax error and for a "__proto__" or "constructor" key alike.
      return problem(400, 'invalid_json', 'body: the body is not valid JSON, or it contains a "__proto__" or "constructor" key, which AEGIS rejects.', {
        field: 'body',
      });
  }
  if (fastifyError.statusCode === 400 && error instanceof SyntaxError) {
    return problem(400, 'invalid_json', 'body: the body is not valid JSON.', { field: 'body' });
  }
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return problem(fastifyError.statusCode, 'bad_request', fastifyError.message ?? 'The request was rejected.');
  }
  return problem(500, 'internal_error', 'AEGIS failed to handle this request. The error was logged with the request id; nothing secret is in it.');
}

interface ValidationIssue {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

function validationProblem(issues: ValidationIssue[], context: string): Problem {
  const errors = issues.map((issue) => {
    const field = issueField(issue, context);
    return { field, message: issueMessage(issue) };
  });
  const first = errors[0] ?? { field: context, message: 'is invalid' };
  return problem(400, 'invalid_input', `${first.field}: ${first.message}`, { field: first.field, errors });
}

/**
 * An unknown field's name is repeated only when it looks like a field name: a letter, then at most 31
 * letters, digits or underscores. So neither a token pasted by mistake (aegis_..., 62 characters) nor a
 * control character reaches the response or the audit log, while a misspelt `credentialType` is still
 * named. Missing fields are named by the schema and always repeated.
 */
const repeatableFieldName = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;

/** Returns the unknown field's name when it may be repeated, or undefined. */
function repeatableUnknownField(issue: ValidationIssue): string | undefined {
  const name = issue.params.additionalProperty;
  return typeof name === 'string' && repeatableFieldName.test(name) ? name : undefined;
}

function issueField(issue: ValidationIssue, context: string): string {
  const path = issue.instancePath.split('/').filter(Boolean).join('.');
  const child = (issue.params.missingProperty as string | undefined) ?? repeatableUnknownField(issue);
  const parts = [path, child].filter((part) => part !== undefined && part !== '');
  if (parts.length === 0) return context;
  return context === 'body' ? parts.join('.') : `${context}.${parts.join('.')}`;
}

function issueMessage(issue: ValidationIssue): string {
  switch (issue.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return repeatableUnknownField(issue) === undefined ? 'contains a field that is not known. Send only the fields that /openapi.json lists.' : 'is not a known field';
    case 'enum':
      return `must be one of ${(issue.params.allowedValues as unknown[]).join(', ')}`;
    case 'pattern':
      return patternDescriptions[issue.params.pattern as string] ?? issue.message ?? 'is invalid';
    case 'type':
      return `must be ${typeNames(issue.params.type)}`;
    case 'uniqueItems':
      return `must not list the same item twice (items ${Math.min(Number(issue.params.i), Number(issue.params.j))} and ${Math.max(Number(issue.params.i), Number(issue.params.j))} are the same)`;
    case 'minLength':
      return issue.params.limit === 1 ? 'must not be empty' : `must be at least ${issue.params.limit} characters long`;
    case 'maxLength':
      return `must be at most ${issue.params.limit} characters long`;
    default:
      return issue.message ?? 'is invalid';
  }
}

const typeWords: Record<string, string> = { string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false', object: 'a JSON object', array: 'an array', null: 'null' };

/** Names the JSON types a schema allows in words: "a string or null" for Ajv's "string,null". */
function typeNames(type: unknown): string {
  const types = (Array.isArray(type) ? type : String(type).split(',')).map((name) => typeWords[String(name)] ?? String(name));
  return types.length > 1 ? `${types.slice(0, -1).join(', ')} or ${types[types.length - 1]}` : (types[0] ?? 'valid');
}

/**
 * Plain descriptions of the patterns in route schemas, so a rejected field gets a sentence rather than
 * a regular expression. A test checks that every pattern in a request schema has one.
 */
export const patternDescriptions: Record<string, string> = {
  [CREDENTIAL_NAME_PATTERN]: 'must be 1 to 128 letters, digits, ".", "_", "-" or "/", without ".."',
  [CREDENTIAL_NAME_FILTER_PATTERN]: 'must be * or 1 to 128 letters, digits, ".", "_", "-" or "/", without ".."',
  [TAG_PATTERN]: 'must be 1 to 64 letters, digits, ".", "_", ":", "/" or "-"',
  [plainTextPattern]: 'must not contain control characters (such as NUL or ESC) or unpaired surrogates',
  [multilineTextPattern]: 'must not contain control characters other than tab and line breaks, or unpaired surrogates',
  '^[A-Za-z0-9._:@/-]+$': 'must be letters, digits, ".", "_", ":", "@", "/" or "-"',
  [CREDENTIAL_TYPE_PATTERN]: `must be ${CREDENTIAL_TYPE_RULE}`,
  '^[A-Za-z0-9_+/-]+$': 'must be an IANA time zone name, such as Europe/Berlin',
  '^[0-9a-f]{12}$': 'must be a token id: 12 lowercase hexadecimal digits, as GET /tokens lists them',
  '^(?!.*\\.\\.)[A-Za-z0-9._/*-]{1,128}$': 'must be 1 to 128 name characters or *, without ".."',
  '^[0-9A-Za-z*/,\\- ?#LW]+$': 'must be a cron expression of five fields, such as "30 2 * * *"',
  '^[\\x21-\\x7e]+$': 'must be printable ASCII characters without spaces',
  '^[A-Za-z0-9_.:-]*$': 'must be letters, digits, "_", ".", ":" or "-"',
  '^[A-Za-z0-9_-]+$': 'must be letters, digits, "_" or "-"',
  '^[a-z0-9][a-z0-9_-]{0,63}$': 'must be 1 to 64 lowercase letters, digits, "_" or "-", starting with a letter or digit',
  '^[A-Za-z_][A-Za-z0-9_]{0,63}$': 'must be 1 to 64 letters, digits or "_", not starting with a digit',
  '^https?://[^\\s{}]+$': 'must be an http:// or https:// URL without spaces or braces',
};

/**
 * Builds the 503 for a request that failed because the database was unreachable. A change and its audit entry
 * commit in one transaction, so a change that did not commit left no entry either. A rotation that
 * reached the provider first is finished or undone by rotation recovery once the database is back.
 */
export function databaseUnavailableProblem(): Problem {
  return problem(
    503,
    'database_unavailable',
    `The database is unreachable, so the request was not completed. Retry in ${DATABASE_RETRY_AFTER_SECONDS} seconds.`,
    { retry_after_seconds: DATABASE_RETRY_AFTER_SECONDS },
  );
}

/**
 * Builds the problem for a request whose audit entry could not be written: `database_unavailable` when the
 * database was unreachable, `audit_unavailable` otherwise. Either way the request fails closed.
 */
export function auditFailureProblem(auditError: unknown): Problem {
  if (isDatabaseUnavailable(auditError)) return databaseUnavailableProblem();
  return problem(503, 'audit_unavailable', 'The audit log could not be written, so the request was not completed. Retry later.');
}

export function sendProblem(reply: FastifyReply, body: Problem): FastifyReply {
  // 429 for too many failed authentications, 503 while the database is unreachable.
  if (typeof body.retry_after_seconds === 'number') reply.header('retry-after', String(body.retry_after_seconds));
  return reply.code(body.status).type('application/problem+json').send(body);
}

export function requestLabel(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? request.url}`;
}
