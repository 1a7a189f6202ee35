/** JSON schemas used by several features' routes. */

export const problemSchema = {
  type: 'object',
  description: 'An RFC 9457 problem document.',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    field: { type: 'string' },
  },
  additionalProperties: true,
} as const;

/** Problem responses every authenticated route can give. */
export const errorResponses = {
  400: problemSchema,
  401: problemSchema,
  403: problemSchema,
  404: problemSchema,
  409: problemSchema,
  413: problemSchema,
  429: problemSchema,
  503: problemSchema,
} as const;

/**
 * Printable text without control characters or unpaired surrogates. PostgreSQL rejects NUL in text, and
 * an unpaired surrogate cannot be encoded as UTF-8, so the driver would store U+FFFD instead. Ajv
 * compiles patterns with the `u` flag, so a surrogate pair is one code point and still matches.
 */
export const plainTextPattern = '^[^\\u0000-\\u001f\\u007f\\ud800-\\udfff]*$';

/** Free text that may span lines: no control character but tab, newline and carriage return, and no unpaired surrogate. */
export const multilineTextPattern = '^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f\\ud800-\\udfff]*$';

export const dateTime = { type: 'string', format: 'date-time' } as const;
export const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;

export const pagingQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
  offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0 },
} as const;
