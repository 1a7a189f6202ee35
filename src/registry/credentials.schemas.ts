import { CREDENTIAL_NAME_PATTERN, CREDENTIAL_TYPE_MAX_LENGTH, CREDENTIAL_TYPE_PATTERN, TAG_PATTERN } from '../lib/names.js';
import { dateTime, multilineTextPattern, nullableDateTime, plainTextPattern } from '../http/shared-schemas.js';
import { MAX_VALUE_BYTES, PROVIDERS, ROTATION_STRATEGIES, STATUSES } from './credential.types.js';
import { CREDENTIAL_SORT_COLUMNS } from './credentials.repository.js';

const name = { type: 'string', pattern: CREDENTIAL_NAME_PATTERN, minLength: 1, maxLength: 128 } as const;
const tags = { type: 'array', maxItems: 32, uniqueItems: true, items: { type: 'string', pattern: TAG_PATTERN } } as const;
const metadata = { type: 'object', additionalProperties: true } as const;
const providerConfig = { type: 'object', additionalProperties: true } as const;
const credentialType = { type: 'string', minLength: 1, maxLength: CREDENTIAL_TYPE_MAX_LENGTH, pattern: CREDENTIAL_TYPE_PATTERN } as const;
const providerCredentialId = { type: ['string', 'null'], minLength: 1, maxLength: 256, pattern: plainTextPattern } as const;
const description = { type: ['string', 'null'], maxLength: 2000, pattern: multilineTextPattern } as const;
// The 64 KiB limit counts UTF-8 bytes, which the schema cannot measure, so it is checked after
// parsing and rejected with 413 naming `value`. A character cap here would give 400 for some
// of the same values. The body limit bounds what reaches that check.
const value = { type: 'string', description: `At most ${MAX_VALUE_BYTES} bytes of UTF-8; a longer value gets 413.` } as const;
const hours = { type: 'integer', minimum: 1, maximum: 87_600 } as const;
const thresholdHours = { type: 'integer', minimum: 0, maximum: 87_600 } as const;
// The expression and zone are parsed by the service (croner and Intl), which names the field on error.
const rotationCron = { type: ['string', 'null'], minLength: 9, maxLength: 128, pattern: '^[0-9A-Za-z*/,\\- ?#LW]+$' } as const;
const rotationTimezone = { type: ['string', 'null'], minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_+/-]+$' } as const;
const valuePolicy = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    length: { type: 'integer', minimum: 16, maximum: 1024 },
    alphabet: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$' },
    prefix: { type: 'string', maxLength: 32, pattern: '^[A-Za-z0-9_.:-]*$' },
    validity_hours: { type: 'integer', minimum: 1, maximum: 87_600 },
  },
} as const;

export const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name },
} as const;

export const createCredentialBody = {
  type: 'object',
  required: ['name', 'credential_type'],
  additionalProperties: false,
  properties: {
    name,
    credential_type: credentialType,
    provider: { type: 'string', enum: PROVIDERS, description: 'Where the credential lives; n8n when omitted.' },
    description,
    provider_credential_id: providerCredentialId,
    provider_config: providerConfig,
    value,
    expires_at: nullableDateTime,
    rotation_enabled: { type: 'boolean' },
    rotation_interval_hours: hours,
    rotation_strategy: { type: 'string', enum: ROTATION_STRATEGIES },
    rotation_cron: rotationCron,
    rotation_timezone: rotationTimezone,
    value_policy: valuePolicy,
    alert_threshold_hours: thresholdHours,
    tags,
    metadata,
  },
} as const;

export const updateCredentialBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    description,
    expires_at: nullableDateTime,
    rotation_enabled: { type: 'boolean' },
    rotation_interval_hours: hours,
    rotation_strategy: { type: 'string', enum: ROTATION_STRATEGIES },
    rotation_cron: rotationCron,
    rotation_timezone: rotationTimezone,
    value_policy: valuePolicy,
    alert_threshold_hours: thresholdHours,
    tags,
    metadata,
    provider_credential_id: providerCredentialId,
    provider_config: providerConfig,
    value,
  },
} as const;

export const listCredentialsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: STATUSES },
    provider: { type: 'string', enum: PROVIDERS },
    type: credentialType,
    tag: { type: 'string', pattern: TAG_PATTERN },
    search: {
      type: 'string',
      minLength: 1,
      maxLength: 128,
      pattern: plainTextPattern,
      description: 'Case-insensitive substring of the name. The characters % and _ match themselves.',
    },
    sort: { type: 'string', enum: CREDENTIAL_SORT_COLUMNS, default: 'name', description: 'Rows without a value in this column come last in either order.' },
    order: { type: 'string', enum: ['asc', 'desc'], default: 'asc' },
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0 },
  },
} as const;

export const revealQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { version: { type: 'integer', minimum: 1, maximum: 2_147_483_647 } },
} as const;

/** A credential as the API shows it: never its value or ciphertext. */
export const credentialView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    credential_type: { type: 'string' },
    provider: { type: 'string' },
    description: { type: ['string', 'null'] },
    provider_credential_id: { type: ['string', 'null'] },
    provider_config: { type: 'object', additionalProperties: true },
    status: { type: 'string', enum: STATUSES },
    created_at: dateTime,
    updated_at: dateTime,
    expires_at: nullableDateTime,
    last_rotated_at: nullableDateTime,
    last_used_at: nullableDateTime,
    last_health_check: nullableDateTime,
    rotation_enabled: { type: 'boolean' },
    rotation_interval_hours: { type: 'integer' },
    rotation_strategy: { type: 'string' },
    next_rotation_at: nullableDateTime,
    rotation_cron: { type: ['string', 'null'] },
    rotation_timezone: { type: ['string', 'null'] },
    value_policy: { type: ['object', 'null'], additionalProperties: true },
    alert_threshold_hours: { type: 'integer' },
    alert_sent: { type: 'boolean' },
    has_value: { type: 'boolean' },
    tags: { type: 'array', items: { type: 'string' } },
    metadata: { type: 'object', additionalProperties: true },
  },
} as const;

export const versionView = {
  type: 'object',
  properties: {
    version: { type: 'integer' },
    created_at: dateTime,
    created_by: { type: ['string', 'null'] },
    reason: { type: ['string', 'null'] },
    is_current: { type: 'boolean' },
    state: { type: 'string' },
    has_value: { type: 'boolean' },
    encryption_key_id: { type: ['string', 'null'] },
    provider_credential_id: { type: ['string', 'null'] },
  },
} as const;
