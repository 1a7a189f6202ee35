import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { ValidationError } from '../lib/errors.js';
import { CREDENTIAL_TYPE_RULE } from '../lib/names.js';
import { escapeControls } from '../lib/text.js';
import { createCredentialBody, updateCredentialBody } from '../registry/credentials.schemas.js';
import { rotateBody } from '../rotation/rotation.schemas.js';
import { CommandError, USAGE_EXIT_CODE } from './context.js';

// The registry service and the rotation engine trust the HTTP layer to have checked their input against
// these schemas, so the CLI, which calls them directly, applies the same schemas with the same settings
// as the API's body validator.
const ajv = new Ajv.default({ coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, strict: false });
addFormats.default(ajv, { mode: 'full', formats: ['date-time', 'uri', 'uuid'] });

const createValidator = ajv.compile(createCredentialBody);
const updateValidator = ajv.compile(updateCredentialBody);
const rotateValidator = ajv.compile(rotateBody);

/** The command-line spelling of each request field, so an error names what the user typed. */
const optionNames: Record<string, string> = {
  name: 'NAME',
  credential_type: '--type',
  provider: '--provider',
  description: '--description',
  provider_credential_id: '--provider-id',
  provider_config: '--provider-config',
  value: 'value',
  expires_at: '--expires-at',
  rotation_enabled: '--rotation',
  rotation_interval_hours: '--rotation-interval',
  rotation_strategy: '--rotation-strategy',
  rotation_cron: '--rotation-cron',
  rotation_timezone: '--rotation-timezone',
  value_policy: '--value-policy',
  alert_threshold_hours: '--alert-threshold',
  tags: '--tag',
  metadata: '--metadata',
  reason: '--reason',
};

export function checkCreateInput(input: object): void {
  check(createValidator, input);
}

export function checkUpdateInput(input: object): void {
  check(updateValidator, input);
}

export function checkRotateInput(input: object): void {
  check(rotateValidator, input);
}

/** Rethrows a ValidationError about a field of a credential or rotation request as a usage error that names the option. */
export function nameCredentialOption(error: unknown): never {
  return rethrowWithOptionName(optionNames, error);
}

/**
 * Rethrows a ValidationError about one of `names`' fields as a CommandError with exit code 2 that names
 * the option, as the CLI's own checks do, because a service's messages name the API's fields. A field
 * such as `provider_config.file` is named `--provider-config (file)`. Other errors pass unchanged.
 */
export function rethrowWithOptionName(names: Record<string, string>, error: unknown): never {
  if (!(error instanceof ValidationError) || error.field === undefined) throw error;
  const [field = '', ...rest] = error.field.split('.');
  const option = names[field];
  if (option === undefined) throw error;
  // ValidationError's message is the field, a colon and a space, then the problem.
  const problem = error.message.slice(error.field.length + 2);
  const described = rest.length > 0 ? `${option} (${rest.join('.')})` : option;
  // The problem may quote what the user typed, which may contain terminal escapes.
  throw new CommandError(escapeControls(`invalid ${described}: ${problem}`), USAGE_EXIT_CODE);
}

/** What a value must look like, in words, for the fields whose schema rule is a regular expression. */
const patternRules: Record<string, string> = {
  name: 'use 1 to 128 letters, digits, . _ - /, without ..',
  credential_type: `use ${CREDENTIAL_TYPE_RULE}`,
  tags: 'use 1 to 64 letters, digits or . _ : / -',
  description: 'must not contain control characters other than tab and newline',
  provider_credential_id: 'must not contain control characters',
  reason: 'must not contain control characters',
};

function check(validate: ValidateFunction, input: object): void {
  if (validate(input)) return;
  const error = validate.errors![0]!;
  throw new CommandError(`invalid ${describeField(error)}: ${describeRule(error)}`, USAGE_EXIT_CODE);
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
