import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AegisError } from '../lib/errors.js';
import { CREDENTIAL_NAME_PATTERN, TAG_PATTERN } from '../lib/names.js';
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
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
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
  if (databaseUnavailable(error)) {
    return problem(503, 'database_unavailable', 'The database is unreachable. Nothing was changed; retry once it is back.');
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

function issueField(issue: ValidationIssue, context: string): string {
  const path = issue.instancePath.split('/').filter(Boolean).join('.');
  const child = (issue.params.missingProperty ?? issue.params.additionalProperty) as string | undefined;
  const parts = [path, child].filter((part) => part !== undefined && part !== '');
  if (parts.length === 0) return context;
  return context === 'body' ? parts.join('.') : `${context}.${parts.join('.')}`;
}

function issueMessage(issue: ValidationIssue): string {
  switch (issue.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a known field';
    case 'enum':
      return `must be one of ${(issue.params.allowedValues as unknown[]).join(', ')}`;
    case 'pattern':
      return patternDescriptions[issue.params.pattern as string] ?? issue.message ?? 'is invalid';
    default:
      return issue.message ?? 'is invalid';
  }
}

/** Plain descriptions of the shared patterns, so a rejected field gets a sentence rather than a regular expression. */
const patternDescriptions: Record<string, string> = {
  [CREDENTIAL_NAME_PATTERN]: 'must be 1 to 128 letters, digits, ".", "_", "-" or "/", without ".."',
  [TAG_PATTERN]: 'must be 1 to 64 letters, digits, ".", "_", ":", "/" or "-"',
  [plainTextPattern]: 'must not contain control characters (such as NUL or ESC) or unpaired surrogates',
  [multilineTextPattern]: 'must not contain control characters other than tab and line breaks, or unpaired surrogates',
};

/** Connection-level failures of PostgreSQL or a busy SQLite file: the request may succeed later. */
export function databaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'SQLITE_BUSY', 'SQLITE_LOCKED'].includes(code) ||
    code.startsWith('08') || // PostgreSQL connection exceptions
    code === '57P01' || // admin shutdown
    code === '57P02' ||
    code === '57P03'
  );
}

export function sendProblem(reply: FastifyReply, body: Problem): FastifyReply {
  if (body.status === 429 && typeof body.retry_after_seconds === 'number') reply.header('retry-after', String(body.retry_after_seconds));
  return reply.code(body.status).type('application/problem+json').send(body);
}

export function requestLabel(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? request.url}`;
}
