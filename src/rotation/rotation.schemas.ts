import { plainTextPattern } from '../http/shared-schemas.js';
import { MAX_VALUE_BYTES } from '../registry/credential.types.js';

/** The body of a rotation request. The CLI checks `aegis rotate` against it too, because the engine does not check the reason. */
export const rotateBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    trigger: { type: 'string', enum: ['manual', 'emergency'], default: 'manual' },
    reason: { type: 'string', maxLength: 500, pattern: plainTextPattern },
    // The byte limit is checked after parsing (413 naming `value`), as for credentials.
    value: { type: 'string', description: `At most ${MAX_VALUE_BYTES} bytes of UTF-8` },
  },
} as const;
