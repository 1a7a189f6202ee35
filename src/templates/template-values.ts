import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import ret, { types, type Root, type Tokens } from 'ret';
import { ValidationError } from '../lib/errors.js';
import type { CredentialTemplate } from './template.types.js';

/** Strict, so a user template with a misspelled keyword is rejected when it is added, not ignored. */
const ajv = new Ajv.default({ allErrors: false, useDefaults: true, strict: true, removeAdditional: false });
addFormats.default(ajv, { formats: ['uri', 'email'] });

/** ret's tokenizer. The package's types describe an ES module default export, but at run time the CommonJS module is the function itself. */
const tokenize = ret as unknown as (pattern: string) => Root;

/** Compiled field schemas by their JSON text, so a template read again from the database is not compiled again. */
const compiled = new Map<string, ValidateFunction>();

/** Compiles a template's field schema; a schema ajv rejects is a 400 naming `field`. */
export function compileFields(field: string, fields: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(fields);
  const cached = compiled.get(key);
  if (cached) return cached;
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(fields);
  } catch (error) {
    throw new ValidationError(field, `is not a valid JSON schema: ${(error as Error).message}`);
  }
  compiled.set(key, validate);
  return validate;
}

/** Repetitions allowed around a part of variable length: {3} (an IPv4 address) passes, {1,64} does not. */
const maxOuterRepetitions = 10;

/**
 * Rejects a field schema with a pattern that repeats, more than a few times, a part that itself
 * repeats a variable number of times, such as ^(a+)+$ or ^(a{1,64}){1,64}$. Such a pattern
 * backtracks exponentially on a long value that almost matches, and the event loop would serve
 * nothing while it runs. Parts of fixed length pass (^([0-9a-f]{2}:){5}[0-9a-f]{2}$), and so does
 * ^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}...$. Overlapping alternatives such as ^(a|a)*$ backtrack too and are
 * not found. A pattern the tokenizer cannot read (lookbehind) is rejected, since it cannot be
 * checked. Runs when a template is added, so templates stored before the check still import.
 */
export function checkFieldPatterns(field: string, fields: Record<string, unknown>): void {
  for (const pattern of schemaPatterns(fields)) {
    const problem = patternProblem(pattern);
    if (problem !== undefined) throw new ValidationError(field, `has the pattern ${JSON.stringify(pattern)}, which ${problem}`);
  }
}

/** Describes why a pattern may backtrack without end, or returns undefined when it passes the check above. */
function patternProblem(pattern: string): string | undefined {
  let root: Root;
  try {
    root = tokenize(pattern);
  } catch {
    return 'AEGIS cannot check for slow backtracking (lookbehind and some other syntax). Rewrite it without them.';
  }
  const walk = (token: Tokens, insideRepeated: boolean): boolean => {
    if (token.type === types.REPETITION) {
      if (insideRepeated && token.min !== token.max) return true;
      return walk(token.value, insideRepeated || token.max > maxOuterRepetitions);
    }
    if (token.type === types.ROOT || token.type === types.GROUP) {
      const branches = token.options ?? (token.stack ? [token.stack] : []);
      return branches.some((branch) => branch.some((child) => walk(child, insideRepeated)));
    }
    return false;
  };
  if (!walk(root, false)) return undefined;
  return 'repeats a part of variable length (such as (a+)+ or (a{1,9}){1,64}) and can take exponential time on some values. Rewrite it so that the repeated part has a fixed length, or repeat it at most 10 times.';
}

/** Lists the regular expressions of a JSON schema: the values of `pattern` and the keys of `patternProperties`, up to 64 levels deep. */
function schemaPatterns(schema: unknown, depth = 0): string[] {
  if (schema === null || typeof schema !== 'object' || depth > 64) return [];
  const patterns: string[] = [];
  for (const [keyword, value] of Object.entries(schema)) {
    if (keyword === 'pattern' && typeof value === 'string') patterns.push(value);
    if (keyword === 'patternProperties' && value !== null && typeof value === 'object') patterns.push(...Object.keys(value));
    patterns.push(...schemaPatterns(value, depth + 1));
  }
  return patterns;
}

/**
 * Checks an import's values against the template's field schema and fills in defaults (such as the
 * base URL). Returns a copy; the error names the field as `values.FIELD` and never repeats a value.
 */
export function checkValues(template: CredentialTemplate, values: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(values);
  const validate = compileFields('schema.fields', template.schema.fields);
  if (!validate(copy)) throw valuesError(template, validate.errors?.[0]);
  for (const [field, value] of Object.entries(copy)) {
    // A placeholder inside a value would be filled again when the provider_config is built or used.
    // Arrays and objects are checked as JSON text, because a placeholder turns them into strings too.
    if (field !== template.schema.secret_field && JSON.stringify(value).includes('{{')) {
      throw new ValidationError(`values.${field}`, 'must not contain "{{"');
    }
  }
  // metadata.template records where a credential came from, and a repeated import compares it with the template name.
  if (Object.hasOwn(copy, 'template')) throw new ValidationError('values.template', 'is reserved for the template name in metadata. Rename the field.');
  if (typeof copy[template.schema.secret_field] !== 'string') {
    throw new ValidationError(`values.${template.schema.secret_field}`, 'is required and must be a string');
  }
  return copy;
}

function valuesError(template: CredentialTemplate, error: ErrorObject | undefined): ValidationError {
  if (!error) return new ValidationError('values', `do not match template ${template.name}`);
  if (error.keyword === 'required') {
    return new ValidationError(`values.${String(error.params.missingProperty)}`, `is required by template ${template.name}`);
  }
  if (error.keyword === 'additionalProperties') {
    const known = Object.keys((template.schema.fields.properties as Record<string, unknown> | undefined) ?? {}).join(', ');
    return new ValidationError(`values.${String(error.params.additionalProperty)}`, `is not a field of template ${template.name} (fields: ${known})`);
  }
  const path = error.instancePath.split('/').slice(1).map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
  const field = path.length > 0 ? `values.${path.join('.')}` : 'values';
  if (error.keyword === 'pattern') {
    const description = (error.parentSchema as { description?: unknown } | undefined)?.description;
    return new ValidationError(field, typeof description === 'string' ? `has the wrong format (expected: ${description})` : `must match the pattern ${String(error.params.pattern)}`);
  }
  return new ValidationError(field, error.message ?? 'is invalid');
}

const valuePlaceholder = /\{\{values\.([A-Za-z_][A-Za-z0-9_]*)\}\}/g;
const wholePlaceholder = /^\{\{values\.([A-Za-z_][A-Za-z0-9_]*)\}\}$/;

/** A template's provider_config filled from an import's values. */
export interface FilledProviderConfig {
  config: Record<string, unknown>;
  /** Fields without a value whose placeholder members were left out, by the member's path (`provider_config.test.url`). */
  omitted: Map<string, string>;
}

/**
 * Fills `{{values.FIELD}}` in every string of a template's provider_config. A member that is only a
 * placeholder for a field the import left out is dropped, so optional settings stay unset. A placeholder
 * inside a longer string needs its field: the error names `values.FIELD`, because an empty part would
 * change the string's meaning. `https://{{values.host}}/x` would become `https:///x`, which the WHATWG
 * URL parser reads as `https://x/`.
 */
export function fillProviderConfig(config: Record<string, unknown>, values: Record<string, unknown>): FilledProviderConfig {
  const omitted = new Map<string, string>();
  const filled = fillNode(config, values, 'provider_config', omitted) as Record<string, unknown>;
  return { config: filled, omitted };
}

function fillNode(node: unknown, values: Record<string, unknown>, path: string, omitted: Map<string, string>): unknown {
  if (typeof node === 'string') {
    return node.replace(valuePlaceholder, (_match, field: string) => {
      const value = valueOf(values, field);
      if (value === undefined) throw new ValidationError(`values.${field}`, `is required, because the template's ${path} uses it`);
      return String(value);
    });
  }
  if (Array.isArray(node)) return node.map((entry, index) => fillNode(entry, values, `${path}.${index}`, omitted));
  if (node !== null && typeof node === 'object') {
    const filled: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(node)) {
      const whole = typeof entry === 'string' ? wholePlaceholder.exec(entry) : null;
      if (whole && valueOf(values, whole[1]!) === undefined) {
        omitted.set(`${path}.${key}`, whole[1]!);
        continue;
      }
      filled[key] = fillNode(entry, values, `${path}.${key}`, omitted);
    }
    return filled;
  }
  return node;
}

/** Reads a field of the values, own keys only, so a field named `constructor` that was left out stays undefined. */
function valueOf(values: Record<string, unknown>, field: string): unknown {
  return Object.hasOwn(values, field) ? values[field] : undefined;
}

/** The `{{values.FIELD}}` names a provider_config refers to. */
export function referencedFields(node: unknown): string[] {
  const text = JSON.stringify(node);
  return [...text.matchAll(valuePlaceholder)].map((match) => match[1]!);
}
