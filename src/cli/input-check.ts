import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { createCredentialBody, updateCredentialBody } from '../registry/credentials.schemas.js';
import { CommandError } from './context.js';

// The registry service trusts the HTTP layer to have checked its input against these schemas, so the
// CLI, which calls the service directly, applies the same schemas with the same settings as the API's
// body validator.
const ajv = new Ajv.default({ coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, strict: false });
addFormats.default(ajv, { mode: 'full', formats: ['date-time', 'uri', 'uuid'] });

const createValidator = ajv.compile(createCredentialBody);
const updateValidator = ajv.compile(updateCredentialBody);

/** The command-line spelling of each request field, so an error names what the user typed. */
const optionNames: Record<string, string> = {
  name: 'NAME',
  credential_type: '--type',
  provider: '--provider',
  description: '--description',
  provider_credential_id: '--provider-id',
  provider_config: '--provider-config',
  value: 'the value',
  expires_at: '--expires-at',
  rotation_enabled: '--rotation',
  rotation_interval_hours: '--rotation-interval',
  rotation_strategy: '--rotation-strategy',
  alert_threshold_hours: '--alert-threshold',
  tags: '--tag',
  metadata: '--metadata',
};

export function checkCreateInput(input: object): void {
  check(createValidator, input);
}

export function checkUpdateInput(input: object): void {
  check(updateValidator, input);
}

/** What a value must look like, in words, for the fields whose schema rule is a regular expression. */
const patternRules: Record<string, string> = {
  name: 'use 1 to 128 letters, digits, . _ - /, without ..',
  credential_type: 'use 1 to 128 letters, digits or . _ : / -',
  tags: 'use 1 to 64 letters, digits or . _ : / -',
  description: 'must not contain control characters other than tab and newline',
  provider_credential_id: 'must not contain control characters',
};

function check(validate: ValidateFunction, input: object): void {
  if (validate(input)) return;
  const error = validate.errors![0]!;
  throw new CommandError(`invalid ${describeField(error)}: ${describeRule(error)}`, 2);
}

function topField(error: ErrorObject): string | undefined {
  return error.instancePath.split('/').filter(Boolean)[0];
}

function describeField(error: ErrorObject): string {
  const [field, ...rest] = error.instancePath.split('/').filter(Boolean);
  if (field === undefined) return 'input';
  const option = optionNames[field] ?? field;
  return rest.length > 0 ? `${option} (${rest.join('.')})` : option;
}

function describeRule(error: ErrorObject): string {
  if (error.keyword !== 'pattern') return error.message ?? 'invalid';
  return patternRules[topField(error) ?? ''] ?? error.message ?? 'invalid';
}
