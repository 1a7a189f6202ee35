import crypto from 'node:crypto';
import { AegisError } from '../../lib/errors.js';
import { CREDENTIAL_TYPE_RULE, isValidCredentialName, isValidCredentialType, TAG_PATTERN } from '../../lib/names.js';
import { scrubSecrets } from '../../lib/redact.js';
import type { AdapterRegistry } from '../../providers/adapter.js';
import { plainTextPattern } from '../../http/shared-schemas.js';
import { checkJsonDocument, checkMetadata, checkProviderConfigDocument, isBlank } from '../../registry/credential-input.js';
import {
  MAX_VALUE_BYTES,
  ROTATION_STRATEGIES,
  STATUSES,
  type Credential,
  type CredentialStatus,
  type Provider,
  type RotationStrategy,
} from '../../registry/credential.types.js';
import { nextRotationAt } from '../../rotation/schedule.js';
import { decryptFernet, FernetError, type FernetKey } from './fernet.js';
import type { LegacyCredentialRow, LegacyData, LegacyHealthCheckRow, LegacyRotationRow, LegacyVersionRow } from './legacy-source.js';

/** The spec's provider names and the AEGIS provider each becomes. Any other name is reported, not guessed. */
export const LEGACY_PROVIDERS: Readonly<Record<string, Provider>> = { n8n: 'n8n', supabase: 'supabase', api: 'api', env: 'env' };

/** The metadata key under which an imported credential records the legacy row it came from. */
export const LEGACY_METADATA_KEY = 'legacy_import';

/** The source row, as an imported credential's metadata records it. */
export interface LegacyOrigin {
  legacy_id: string;
  /** SHA-256 over the imported fields and ciphertexts of the legacy row and its versions, so a later run can detect a changed row. */
  fingerprint: string;
}

export interface PlannedVersion {
  version: number;
  /** The decrypted value, or null when the version stores none (n8n keeps the value). */
  value: string | null;
  providerCredentialId: string | null;
  createdAt: string;
  createdBy: string | null;
  reason: string;
  isCurrent: boolean;
}

export interface PlannedRotation {
  rotatedAt: string;
  previousVersion: number | null;
  newVersion: number | null;
  trigger: string;
  durationMs: number | null;
  success: boolean;
  errorMessage: string | null;
  rolledBack: boolean;
  rollbackAt: string | null;
}

export interface PlannedHealthCheck {
  checkedAt: string;
  status: 'healthy' | 'unhealthy' | 'unknown';
  responseTimeMs: number | null;
  details: Record<string, unknown>;
  errorMessage: string | null;
}

/** One legacy credential, checked and decrypted, ready to be written. */
export interface CredentialPlan {
  origin: LegacyOrigin;
  credential: Credential;
  versions: PlannedVersion[];
  rotations: PlannedRotation[];
  healthChecks: PlannedHealthCheck[];
  /** Facts about this credential the report shows, such as a status that changed on the way. */
  notes: string[];
}

export type PlanOutcome = { plan: CredentialPlan } | { rejected: string };

export interface PlanContext {
  key: FernetKey;
  adapters: AdapterRegistry;
  /** Provider settings by legacy credential name, from the `--provider-config` file. */
  providerConfigs: Readonly<Record<string, Record<string, unknown>>>;
  now: string;
}

const tagRegex = new RegExp(TAG_PATTERN);
const plainTextRegex = new RegExp(plainTextPattern);
const maxHealthDetailsBytes = 16 * 1024;

/** Thrown inside planning to reject the credential with one reason. */
class Rejection extends Error {}

/**
 * Checks one legacy credential and decrypts its values: the credential is either planned in full
 * (every version, with exactly one current) or rejected with the first reason found. Nothing is written.
 */
export function planCredential(row: LegacyCredentialRow, data: LegacyData, context: PlanContext): PlanOutcome {
  try {
    return { plan: buildPlan(row, data, context) };
  } catch (error) {
    if (error instanceof Rejection) return { rejected: error.message };
    throw error;
  }
}

function buildPlan(row: LegacyCredentialRow, data: LegacyData, context: PlanContext): CredentialPlan {
  if (!isValidCredentialName(row.name)) throw new Rejection('invalid name: AEGIS names are 1 to 128 letters, digits, . _ - or /, without ..');
  // Own keys only, so a provider named "constructor" or "__proto__" is unknown rather than Object's function or prototype.
  const provider = Object.hasOwn(LEGACY_PROVIDERS, row.provider ?? 'n8n') ? LEGACY_PROVIDERS[row.provider ?? 'n8n'] : undefined;
  if (!provider) throw new Rejection(`unknown provider "${row.provider}": AEGIS accepts ${Object.keys(LEGACY_PROVIDERS).join(', ')}`);
  if (typeof row.credential_type !== 'string' || row.credential_type.trim() === '') throw new Rejection('missing credential_type');
  if (!isValidCredentialType(row.credential_type)) throw new Rejection(`invalid credential_type: AEGIS takes ${CREDENTIAL_TYPE_RULE}`);
  const strategy = (row.rotation_strategy ?? 'manual') as RotationStrategy;
  if (!ROTATION_STRATEGIES.includes(strategy)) throw new Rejection(`unknown rotation strategy "${row.rotation_strategy}": AEGIS accepts ${ROTATION_STRATEGIES.join(', ')}`);
  const legacyStatus = row.status ?? 'active';
  if (!(STATUSES as ReadonlyArray<string>).includes(legacyStatus)) throw new Rejection(`unknown status "${legacyStatus}"`);
  const intervalHours = row.rotation_interval_hours ?? 720;
  if (!Number.isInteger(intervalHours) || intervalHours < 1) throw new Rejection(`rotation_interval_hours must be a positive number of hours, got ${intervalHours}`);
  const thresholdHours = row.alert_threshold_hours ?? 168;
  if (!Number.isInteger(thresholdHours) || thresholdHours < 0) throw new Rejection(`alert_threshold_hours must be zero or more, got ${thresholdHours}`);

  const notes: string[] = [];
  const versions = planVersions(row, data.versions.get(row.id) ?? [], context);
  const tags = checkTags(row.tags);
  const origin: LegacyOrigin = { legacy_id: row.id, fingerprint: legacyFingerprint(row, data.versions.get(row.id) ?? []) };
  // Description and metadata are shown to every token that can read the credential, so a value the
  // legacy service kept there is removed, as from the rotation history.
  const secrets = versions.flatMap((version) => (version.value === null ? [] : [version.value]));
  const description = row.description === null ? null : scrubSecrets(row.description, secrets);
  if (description !== row.description) notes.push('the description contained a value of this credential, which was replaced with [REDACTED]');
  const legacyFields = legacyMetadata(row.metadata);
  const scrubbedFields = scrubStrings(legacyFields, secrets) as Record<string, unknown>;
  if (JSON.stringify(scrubbedFields) !== JSON.stringify(legacyFields)) notes.push('the metadata contained a value of this credential, which was replaced with [REDACTED]');
  const metadata = { ...scrubbedFields, [LEGACY_METADATA_KEY]: origin };
  wrapCheck('metadata', () => checkMetadata(metadata));
  const providerConfig = resolveProviderConfig(row.name, provider, context);

  // A legacy rotation that never finished cannot resume here: the credential is marked failed so someone checks it.
  let status = legacyStatus as CredentialStatus;
  if (status === 'rotating') {
    status = 'failed';
    notes.push('was rotating in the legacy service; imported as failed, so check that the provider holds the current version');
  }
  const current = versions.find((version) => version.isCurrent)!;
  const draft: Credential = {
    id: crypto.randomUUID(),
    name: row.name,
    credentialType: row.credential_type,
    provider,
    description,
    encryptedValue: null,
    encryptionKeyId: null,
    providerCredentialId: checkProviderCredentialId(row.provider_credential_id, 'the credential row') ?? current.providerCredentialId,
    providerConfig,
    status,
    createdAt: iso(row.created_at, 'created_at') ?? context.now,
    updatedAt: iso(row.updated_at, 'updated_at') ?? context.now,
    expiresAt: iso(row.expires_at, 'expires_at'),
    lastRotatedAt: iso(row.last_rotated_at, 'last_rotated_at'),
    lastUsedAt: iso(row.last_used_at, 'last_used_at'),
    lastHealthCheck: iso(row.last_health_check, 'last_health_check'),
    rotationEnabled: row.rotation_enabled ?? false,
    rotationIntervalHours: intervalHours,
    rotationStrategy: strategy,
    nextRotationAt: null,
    alertThresholdHours: thresholdHours,
    alertSent: row.alert_sent ?? false,
    tags,
    metadata,
    rotationCron: null,
    rotationTimezone: null,
    valuePolicy: null,
  };
  // The legacy schedule is kept when it has one; otherwise AEGIS computes the next rotation from the settings.
  draft.nextRotationAt = draft.rotationEnabled && row.next_rotation_at ? iso(row.next_rotation_at, 'next_rotation_at') : nextRotationAt(draft);

  const rotations = (data.rotations.get(row.id) ?? []).map((rotation) => planRotation(rotation, secrets, context.now));
  const healthChecks = planHealthChecks(data.healthChecks.get(row.id) ?? [], secrets, notes, context.now);
  return { origin, credential: draft, versions, rotations, healthChecks, notes };
}

/**
 * Decrypts every version. A credential without version rows (written before the legacy service kept
 * versions) becomes one current version from the credential row's own value.
 */
function planVersions(row: LegacyCredentialRow, rows: LegacyVersionRow[], context: PlanContext): PlannedVersion[] {
  if (rows.length === 0) {
    return [
      {
        version: 1,
        value: decryptValue(context.key, row.encrypted_value, 'the credential row'),
        providerCredentialId: row.provider_credential_id,
        createdAt: iso(row.created_at, 'created_at') ?? context.now,
        createdBy: null,
        reason: 'import',
        isCurrent: true,
      },
    ];
  }
  const current = rows.filter((version) => version.is_current === true);
  if (current.length === 0) throw new Rejection(`missing current version: none of its ${rows.length} versions is marked current`);
  if (current.length > 1) throw new Rejection(`${current.length} versions are marked current (${current.map((version) => version.version).join(', ')}); AEGIS keeps exactly one`);
  const planned = rows.map((version) => {
    if (!Number.isInteger(version.version) || version.version < 1) throw new Rejection(`version number ${version.version} is not a positive integer`);
    return {
      version: version.version,
      value: decryptValue(context.key, version.encrypted_value, `version ${version.version}`),
      providerCredentialId: checkProviderCredentialId(version.provider_credential_id, `version ${version.version}`),
      createdAt: iso(version.created_at, `created_at of version ${version.version}`) ?? context.now,
      createdBy: version.created_by,
      reason: version.reason ?? 'import',
      isCurrent: version.is_current === true,
    };
  });
  // The credential row mirrors its current version's value; when both exist they must agree.
  const currentPlan = planned.find((version) => version.isCurrent)!;
  if (row.encrypted_value !== null && row.encrypted_value !== current[0]!.encrypted_value) {
    const rowValue = decryptValue(context.key, row.encrypted_value, 'the credential row');
    if (rowValue !== currentPlan.value) {
      throw new Rejection(`the credential row and its current version ${currentPlan.version} contain different values; make them agree in the legacy database first`);
    }
  }
  return planned;
}

function decryptValue(key: FernetKey, token: string | null, where: string): string | null {
  if (token === null) return null;
  let plaintext: Buffer;
  try {
    plaintext = decryptFernet(key, token);
  } catch (error) {
    if (!(error instanceof FernetError)) throw error;
    throw new Rejection(`${where} failed to decrypt: ${error.message}`);
  }
  if (plaintext.length > MAX_VALUE_BYTES) throw new Rejection(`value over 64 KiB: ${where} is ${plaintext.length} bytes, AEGIS stores at most ${MAX_VALUE_BYTES}`);
  let value: string;
  try {
    value = new TextDecoder('utf-8', { fatal: true }).decode(plaintext);
  } catch {
    throw new Rejection(`${where} is not valid UTF-8, so AEGIS cannot store it as text`);
  } finally {
    plaintext.fill(0);
  }
  // The API rejects such a value too: it is almost always a variable that was never set.
  if (isBlank(value)) throw new Rejection(`${where} has an empty value (or only white space), which AEGIS does not store; give it a value in the legacy database first`);
  return value;
}

/** Checks a legacy provider_credential_id against the rule of POST /credentials (1 to 256 characters, no control characters) and returns it. */
function checkProviderCredentialId(id: string | null, where: string): string | null {
  if (id === null) return null;
  if (id === '') throw new Rejection(`${where} has an empty provider_credential_id; set it to the provider's id or NULL in the legacy database first`);
  if (id.length > 256 || !plainTextRegex.test(id)) throw new Rejection(`${where} has an invalid provider_credential_id: AEGIS takes 1 to 256 characters without control characters`);
  return id;
}

function resolveProviderConfig(name: string, provider: Provider, context: PlanContext): Record<string, unknown> {
  const configured = Object.hasOwn(context.providerConfigs, name) ? context.providerConfigs[name] : undefined;
  if (configured === undefined && (provider === 'env' || provider === 'supabase')) {
    const fields = provider === 'env' ? 'file, variable' : 'project_ref, key_type, project_url';
    throw new Rejection(`${provider} credentials need provider settings (${fields}): add an entry for "${name}" to the --provider-config file`);
  }
  const config = configured ?? {};
  return wrapCheck('provider settings', () => {
    checkProviderConfigDocument(config);
    return context.adapters[provider].checkConfig(config);
  });
}

function wrapCheck<T>(what: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof AegisError) throw new Rejection(`invalid ${what}: ${error.message}`);
    throw error;
  }
}

function checkTags(tags: unknown): string[] {
  if (tags === null || tags === undefined) return [];
  if (!Array.isArray(tags)) throw new Rejection('tags is not a JSON array');
  for (const tag of tags) {
    if (typeof tag !== 'string' || !tagRegex.test(tag)) throw new Rejection(`tag ${JSON.stringify(tag).slice(0, 80)} is invalid: tags are 1 to 64 letters, digits or . _ : / -`);
  }
  return [...new Set(tags as string[])];
}

function legacyMetadata(metadata: unknown): Record<string, unknown> {
  if (metadata === null || metadata === undefined) return {};
  if (typeof metadata !== 'object' || Array.isArray(metadata)) throw new Rejection('metadata is not a JSON object');
  return { ...(metadata as Record<string, unknown>) };
}

/** Copies a JSON value with the secrets removed from every string in it, keys included. */
function scrubStrings(node: unknown, secrets: string[]): unknown {
  if (typeof node === 'string') return scrubSecrets(node, secrets);
  if (Array.isArray(node)) return node.map((item) => scrubStrings(item, secrets));
  if (node !== null && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [scrubSecrets(key, secrets), scrubStrings(value, secrets)]));
  }
  return node;
}

function planRotation(row: LegacyRotationRow, secrets: string[], now: string): PlannedRotation {
  return {
    rotatedAt: iso(row.rotated_at, 'rotated_at of a rotation history row') ?? now,
    previousVersion: row.previous_version,
    newVersion: row.new_version,
    trigger: row.trigger,
    durationMs: row.duration_ms,
    success: row.success ?? true,
    errorMessage: row.error_message === null ? null : scrubSecrets(row.error_message, secrets),
    rolledBack: row.rolled_back ?? false,
    rollbackAt: iso(row.rollback_at, 'rollback_at of a rotation history row'),
  };
}

function planHealthChecks(rows: LegacyHealthCheckRow[], secrets: string[], notes: string[], now: string): PlannedHealthCheck[] {
  const planned: PlannedHealthCheck[] = [];
  let dropped = 0;
  for (const row of rows) {
    if (row.status !== 'healthy' && row.status !== 'unhealthy' && row.status !== 'unknown') {
      dropped++;
      continue;
    }
    planned.push({
      checkedAt: iso(row.checked_at, 'checked_at of a health check') ?? now,
      status: row.status,
      responseTimeMs: row.response_time_ms,
      details: healthDetails(row.details, secrets),
      errorMessage: row.error_message === null ? null : scrubSecrets(row.error_message, secrets),
    });
  }
  if (dropped > 0) notes.push(`${dropped} health checks with a status other than healthy, unhealthy or unknown were left out`);
  return planned;
}

/** Keeps a health check's details when they are a small storable JSON object without a known value in them; otherwise stores none. */
function healthDetails(details: unknown, secrets: string[]): Record<string, unknown> {
  if (details === null || typeof details !== 'object' || Array.isArray(details)) return {};
  const text = JSON.stringify(details);
  if (scrubSecrets(text, secrets) !== text) return {};
  try {
    checkJsonDocument('details', details as Record<string, unknown>, maxHealthDetailsBytes);
  } catch {
    return {};
  }
  return details as Record<string, unknown>;
}

/**
 * Hashes what the import carries over from the credential row and its versions. Usage fields that the
 * legacy service changes on every read (last_used_at, last_health_check, alert_sent, updated_at) are left
 * out, so a source still in use does not look changed. The ciphertexts are hashed, never the values.
 */
export function legacyFingerprint(row: LegacyCredentialRow, versions: LegacyVersionRow[]): string {
  const fields = {
    name: row.name,
    credential_type: row.credential_type,
    provider: row.provider,
    description: row.description,
    encrypted_value: row.encrypted_value,
    provider_credential_id: row.provider_credential_id,
    status: row.status,
    expires_at: fingerprintTime(row.expires_at),
    last_rotated_at: fingerprintTime(row.last_rotated_at),
    rotation_enabled: row.rotation_enabled,
    rotation_interval_hours: row.rotation_interval_hours,
    rotation_strategy: row.rotation_strategy,
    next_rotation_at: fingerprintTime(row.next_rotation_at),
    alert_threshold_hours: row.alert_threshold_hours,
    tags: row.tags,
    metadata: row.metadata,
    versions: versions.map((version) => [version.version, version.encrypted_value, version.provider_credential_id, version.is_current, version.reason]),
  };
  return crypto.createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

/**
 * Formats a legacy time as ISO-8601, and rejects the credential, naming `field`, for a time AEGIS cannot
 * store. pg returns Infinity and -Infinity for PostgreSQL's 'infinity' and '-infinity', and an invalid
 * Date for a year past 275760, where JavaScript dates end.
 */
function iso(value: Date | number | string | null | undefined, field: string): string | null {
  if (value === null || value === undefined) return null;
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) {
    let description = 'outside the years AEGIS can store';
    if (value === Infinity) description = 'infinity';
    if (value === -Infinity) description = '-infinity';
    throw new Rejection(`${field} is ${description}; set it to a time or NULL in the legacy database first`);
  }
  return date.toISOString();
}

/** Formats a time for the fingerprint without rejecting, because an imported row may change to any time later. */
function fingerprintTime(value: Date | number | string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}
