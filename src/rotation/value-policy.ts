import crypto from 'node:crypto';
import { ValidationError } from '../lib/errors.js';
import type { ValuePolicy } from '../registry/credential.types.js';

/**
 * Named alphabets. `symbols` leaves out quotes, backslash, `#`, `$` and space, so values need no quoting in
 * .env files. It keeps `%`, `&`, `?`, `/`, `@` and `:`, so a value placed in a URL must be URL-encoded.
 */
const alphabets: Record<string, string> = {
  alphanumeric: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
  hex: '0123456789abcdef',
  base64url: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
  symbols: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!%&()*+,-./:;<=>?@[]^_{|}~',
};

export const DEFAULT_VALUE_POLICY = { length: 40, alphabet: 'alphanumeric', prefix: '' } as const;

const prefixPattern = /^[A-Za-z0-9_.:-]{0,32}$/;

/** Checks a value policy; errors name the field inside `value_policy`. */
export function checkValuePolicy(policy: ValuePolicy): void {
  if (policy.length !== undefined && (!Number.isInteger(policy.length) || policy.length < 16 || policy.length > 1024)) {
    throw new ValidationError('value_policy.length', 'must be an integer from 16 to 1024');
  }
  if (policy.alphabet !== undefined) alphabetOf(policy.alphabet);
  if (policy.prefix !== undefined && !prefixPattern.test(policy.prefix)) {
    throw new ValidationError('value_policy.prefix', 'must be up to 32 letters, digits or _ . : -');
  }
  if (policy.validity_hours !== undefined && (!Number.isInteger(policy.validity_hours) || policy.validity_hours < 1 || policy.validity_hours > 87_600)) {
    throw new ValidationError('value_policy.validity_hours', 'must be an integer from 1 to 87600');
  }
}

/** Resolves a named alphabet, or `chars:<characters>` for a custom one of at least 16 distinct printable characters. */
function alphabetOf(name: string): string {
  // A plain lookup would also find inherited members, so "constructor" would return a function instead of characters.
  if (Object.hasOwn(alphabets, name)) return alphabets[name]!;
  if (name.startsWith('chars:')) {
    const characters = [...new Set(name.slice('chars:'.length))].join('');
    if (characters.length >= 16 && /^[\x21-\x7e]+$/.test(characters)) return characters;
  }
  throw new ValidationError(
    'value_policy.alphabet',
    `must be one of ${Object.keys(alphabets).join(', ')}, or chars: followed by at least 16 distinct printable ASCII characters`,
  );
}

/** Generates a value from the policy with a uniform choice per character (crypto.randomInt, no modulo bias). */
export function generateValue(policy: ValuePolicy | null): string {
  const length = policy?.length ?? DEFAULT_VALUE_POLICY.length;
  const alphabet = alphabetOf(policy?.alphabet ?? DEFAULT_VALUE_POLICY.alphabet);
  let value = policy?.prefix ?? DEFAULT_VALUE_POLICY.prefix;
  for (let index = 0; index < length; index += 1) value += alphabet[crypto.randomInt(alphabet.length)];
  return value;
}
