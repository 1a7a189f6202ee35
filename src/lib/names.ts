/**
 * Credential names: 1 to 128 characters of letters, digits, `.`, `_`, `-` and `/`, without `..`.
 * The slash allows folder-like names (`team/openai`); the `..` ban keeps names safe to use in paths.
 */
export const CREDENTIAL_NAME_PATTERN = '^(?!.*\\.\\.)[A-Za-z0-9._/-]{1,128}$';

const credentialNameRegex = new RegExp(CREDENTIAL_NAME_PATTERN);

export function isValidCredentialName(name: string): boolean {
  return credentialNameRegex.test(name);
}

/**
 * Pattern of a `credential_name` filter: a credential name, or `*`, which alerts and audit entries about no
 * single credential carry (a daily report, a request with an invalid name).
 */
export const CREDENTIAL_NAME_FILTER_PATTERN = '^(?:\\*|(?!.*\\.\\.)[A-Za-z0-9._/-]{1,128})$';

/**
 * Credential types: a type name such as n8n's `slackApi` or `n8n-nodes-base.httpRequest`, at most 128
 * characters. Parts of letters, digits, `_` and `-`, each starting with a letter, digit or `_`, are joined by
 * single `.`, `:` or `/`, so a type is never a path or an option: `..`, `/etc`, `a//b`, `x/` and `-x` fail.
 */
export const CREDENTIAL_TYPE_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_-]*(?:[.:/][A-Za-z0-9_][A-Za-z0-9_-]*)*$';
export const CREDENTIAL_TYPE_MAX_LENGTH = 128;

/** The credential type rule in words, for error messages. */
export const CREDENTIAL_TYPE_RULE =
  'a type name such as slackApi, of up to 128 characters: parts of letters, digits, "_" and "-", each starting with a letter, digit or "_", joined by single ".", ":" or "/"';

const credentialTypeRegex = new RegExp(CREDENTIAL_TYPE_PATTERN);

export function isValidCredentialType(type: string): boolean {
  return type.length <= CREDENTIAL_TYPE_MAX_LENGTH && credentialTypeRegex.test(type);
}

/** Tags: short labels used for filtering and for limiting tokens. */
export const TAG_PATTERN = '^[A-Za-z0-9._:/-]{1,64}$';

/**
 * Tests a name against a glob where `*` matches any run of characters, including `/`.
 * Token name limits use it (`team/*`, `*-prod`).
 */
export function matchesNamePattern(name: string, pattern: string): boolean {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`).test(name);
}
