import fs from 'node:fs';
import path from 'node:path';
import { PayloadTooLargeError, ValidationError } from '../lib/errors.js';
import { MAX_VALUE_BYTES, type Provider, type RotationStrategy, type ValuePolicy } from './credential.types.js';

/** The fields a client may set when it creates a credential (the request's snake_case names). */
export interface CreateCredentialInput {
  name: string;
  credential_type: string;
  provider?: Provider;
  description?: string | null;
  provider_credential_id?: string | null;
  provider_config?: Record<string, unknown>;
  value?: string;
  expires_at?: string | null;
  rotation_enabled?: boolean;
  rotation_interval_hours?: number;
  rotation_strategy?: RotationStrategy;
  alert_threshold_hours?: number;
  tags?: string[];
  metadata?: Record<string, unknown>;
  rotation_cron?: string | null;
  rotation_timezone?: string | null;
  value_policy?: ValuePolicy | null;
}

/** The fields a client may change. `null` clears a nullable field. */
export interface UpdateCredentialInput {
  description?: string | null;
  expires_at?: string | null;
  rotation_enabled?: boolean;
  rotation_interval_hours?: number;
  rotation_strategy?: RotationStrategy;
  alert_threshold_hours?: number;
  tags?: string[];
  metadata?: Record<string, unknown>;
  provider_credential_id?: string | null;
  provider_config?: Record<string, unknown>;
  value?: string;
  rotation_cron?: string | null;
  rotation_timezone?: string | null;
  value_policy?: ValuePolicy | null;
}

const maxMetadataBytes = 16 * 1024;
const maxProviderConfigBytes = 16 * 1024;
const maxJsonDepth = 32;
const envVariablePattern = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** Tells whether a value contains nothing but white space and invisible format characters (such as U+200B). */
export function isBlank(value: string): boolean {
  return !/[^\p{White_Space}\p{Cf}]/u.test(value);
}

/**
 * Checks a value before it is sealed: not blank, well-formed Unicode, so it round-trips byte for byte,
 * and at most 64 KiB.
 */
export function checkValue(value: string): void {
  if (isBlank(value)) {
    throw new ValidationError('value', 'must not be empty or only white space (an unset shell variable gives an empty value)');
  }
  if (!value.isWellFormed()) {
    throw new ValidationError('value', 'must be well-formed Unicode (it contains an unpaired surrogate)');
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_VALUE_BYTES) {
    throw new PayloadTooLargeError('value', `must be at most ${MAX_VALUE_BYTES} bytes of UTF-8, got ${bytes}`);
  }
}

export function checkMetadata(metadata: Record<string, unknown>): void {
  checkJsonDocument('metadata', metadata, maxMetadataBytes);
}

/**
 * Checks a client's JSON object before it is stored: at most 32 levels of nesting, no NUL
 * character and no unpaired surrogate in any key or string, no number that JSON parsing changed
 * (infinite, or an integer past 2^53), and at most `maxBytes` once serialized.
 * PostgreSQL's jsonb rejects both kinds of character, so without this check the two databases would
 * differ (a 500 on one, a stored row on the other). The error names the path to the bad member.
 */
export function checkJsonDocument(field: string, document: Record<string, unknown>, maxBytes: number): void {
  // Iterative walk, so a deeply nested body cannot overflow the stack before the depth check.
  const pending: Array<{ path: string; node: unknown; depth: number }> = [{ path: field, node: document, depth: 0 }];
  while (pending.length > 0) {
    const { path: nodePath, node, depth } = pending.pop()!;
    if (typeof node === 'string') {
      const problem = unstorableText(node);
      if (problem) throw new ValidationError(nodePath, `must not contain ${problem}`);
      continue;
    }
    if (typeof node === 'number') {
      // JSON.parse turns 1e400 into Infinity (stored as null) and rounds integers past 2^53.
      if (!Number.isFinite(node)) throw new ValidationError(nodePath, 'must be a finite number');
      if (Number.isInteger(node) && !Number.isSafeInteger(node)) {
        throw new ValidationError(nodePath, `must lie between -${Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER} unless it has a fraction: larger whole numbers may lose digits in JSON, so send them as strings`);
      }
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    if (depth >= maxJsonDepth) throw new ValidationError(field, `must nest at most ${maxJsonDepth} levels of objects and arrays`);
    for (const [key, child] of Object.entries(node)) {
      const problem = unstorableText(key);
      if (problem) throw new ValidationError(nodePath, `has a key that contains ${problem}`);
      pending.push({ path: `${nodePath}.${key}`, node: child, depth: depth + 1 });
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(document), 'utf8');
  if (bytes > maxBytes) throw new ValidationError(field, `must serialize to at most ${maxBytes} bytes, got ${bytes}`);
}

/** Names what PostgreSQL cannot store in text or jsonb, or returns null when the text is storable. */
function unstorableText(text: string): string | null {
  if (text.includes('\u0000')) return 'a NUL character (U+0000)';
  if (!text.isWellFormed()) return 'an unpaired surrogate (not well-formed Unicode)';
  return null;
}

/** Parses an ISO-8601 date-time with an offset into the stored UTC form; null stays null. */
export function normalizeInstant(field: string, value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const instant = new Date(value);
  if (Number.isNaN(instant.getTime())) throw new ValidationError(field, `"${value}" is not a valid ISO-8601 date-time`);
  return instant.toISOString();
}

/**
 * Checks provider settings as a JSON document (see `checkJsonDocument`) before the provider's adapter
 * checks their meaning.
 */
export function checkProviderConfigDocument(config: Record<string, unknown>): void {
  checkJsonDocument('provider_config', config, maxProviderConfigBytes);
}
