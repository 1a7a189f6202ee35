/**
 * The errors AEGIS raises on purpose. Each carries an HTTP status and a stable `code`;
 * the HTTP layer maps them to application/problem+json and the CLI prints their message.
 * Messages name the record and, where there is one, the next step. They never contain a value.
 */
export class AegisError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  readonly extra: Record<string, unknown>;

  constructor(status: number, code: string, message: string, options: { field?: string; extra?: Record<string, unknown> } = {}) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.field = options.field;
    this.extra = options.extra ?? {};
  }
}

/** Bad input: names the field and what is wrong with it. */
export class ValidationError extends AegisError {
  constructor(field: string, message: string, code = 'invalid_input') {
    super(400, code, `${field}: ${message}`, { field });
  }
}

export class UnauthorizedError extends AegisError {
  constructor(message: string) {
    super(401, 'unauthorized', message);
  }
}

export class ForbiddenError extends AegisError {
  constructor(message: string) {
    super(403, 'forbidden', message);
  }
}

export class NotFoundError extends AegisError {
  constructor(message: string, code = 'not_found') {
    super(404, code, message);
  }
}

export class ConflictError extends AegisError {
  constructor(code: string, message: string, extra?: Record<string, unknown>) {
    super(409, code, message, extra ? { extra } : {});
  }
}

export class PayloadTooLargeError extends AegisError {
  constructor(field: string, message: string) {
    super(413, 'payload_too_large', `${field}: ${message}`, { field });
  }
}

export class RateLimitedError extends AegisError {
  constructor(message: string, retryAfterSeconds: number) {
    super(429, 'rate_limited', message, { extra: { retry_after_seconds: retryAfterSeconds } });
  }
}

export class UnavailableError extends AegisError {
  constructor(message: string) {
    super(503, 'unavailable', message);
  }
}

/** A deployment problem found at start-up (configuration, keys, file modes). The process stops with its message. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}
