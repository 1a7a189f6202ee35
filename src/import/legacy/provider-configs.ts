import { ValidationError } from '../../lib/errors.js';
import { describeJsonError } from '../../lib/json.js';
import { readImportFile } from '../import-report.js';

/**
 * Reads the `--provider-config` file: a JSON object that maps legacy credential names to the
 * `provider_config` AEGIS needs and the legacy tables lack, e.g.
 * `{"billing/stripe": {"file": "/srv/app/.env", "variable": "STRIPE_KEY"}}`.
 */
export function readProviderConfigs(file: string): Record<string, Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readImportFile(file).toString('utf8'));
  } catch (error) {
    if (error instanceof ValidationError) throw error;
    throw new ValidationError('--provider-config', `${file} is ${describeJsonError(error)}`);
  }
  if (!isObject(parsed)) throw new ValidationError('--provider-config', `${file} must contain a JSON object of credential names to provider settings`);
  for (const [name, config] of Object.entries(parsed)) {
    if (!isObject(config)) throw new ValidationError('--provider-config', `the entry for "${name}" in ${file} must be a JSON object`);
  }
  return parsed as Record<string, Record<string, unknown>>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
