import crypto from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit.service.js';
import { AuditAction, type AuditEntryInput } from '../audit/audit.types.js';
import { currentMasterKeyId } from '../crypto/master-keys.repository.js';
import { EnvelopeError, KeyUnavailableError, type Keyring } from '../crypto/keyring.js';
import type { Db, Executor } from '../db/database.js';
import { ReadCache } from '../db/read-cache.js';
import type { Database } from '../db/schema.js';
import type { Clock } from '../lib/clock.js';
import type { AdapterRegistry } from '../providers/adapter.js';
import { AegisError, ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../lib/errors.js';
import { callerReaches, type Caller } from '../tokens/caller.js';
import { hasScope } from '../tokens/scopes.js';
import { requireReachable, runAudited } from './credential-access.js';
import {
  checkMetadata,
  checkProviderConfigDocument,
  checkValue,
  normalizeInstant,
  type CreateCredentialInput,
  type UpdateCredentialInput,
} from './credential-input.js';
import type { Credential, CredentialStatus, CredentialVersion, Provider, VersionReason, VersionSummary } from './credential.types.js';
import {
  findCredentialByName,
  findCredentialDetail,
  insertCredential,
  listUnretiredOfProvider,
  type CredentialDetailRow,
  listCredentials,
  findCredentialForChange,
  saveCredential,
  touchCredential,
  type CredentialFilter,
  type CredentialListPage,
  type CredentialPage,
} from './credentials.repository.js';
import { canonicalTimeZone, checkCronSchedule, checkExpiryLifetime, nextRotationAt, scheduleChanged } from '../rotation/schedule.js';
import { generationProblem, rejectWhileRotating, unattendedRotationProblem } from '../rotation/rotation.engine.js';
import { checkValuePolicy } from '../rotation/value-policy.js';
import { effectiveStatus } from './status.js';
import { findCurrentVersion, findVersion, highestVersionNumber, insertVersion, listVersionSummaries, makeCurrent } from './versions.repository.js';

export type CredentialDetail = CredentialDetailRow;

/** Credentials whose detail the read cache keeps; an agent fleet reads far fewer between two writes. */
const cachedDetails = 5_000;

export interface RegistryDeps {
  db: Db;
  log: Logger;
  clock: Clock;
  keyring: Keyring;
  audit: AuditLog;
  adapters: AdapterRegistry;
}

/**
 * The credential registry: create, read, list, change, retire, list versions and reveal. Values are
 * sealed before they reach the database and leave it only through `reveal`. Every call writes an audit
 * entry: successes in the same transaction as their change, failures on their own.
 */
export class RegistryService {
  readonly #deps: RegistryDeps;
  readonly #details: ReadCache<CredentialDetailRow>;

  constructor(deps: RegistryDeps) {
    this.#deps = deps;
    this.#details = new ReadCache(deps.db, cachedDetails);
  }

  get #db() {
    return this.#deps.db;
  }

  async list(caller: Caller, filter: CredentialFilter, page: CredentialListPage): Promise<CredentialPage> {
    return this.#audited(caller, AuditAction.listed, '*', async () => {
      const now = this.#deps.clock.now();
      const result = await listCredentials(this.#db.kysely, this.#db.dialect, { ...filter, reach: caller }, page, now);
      await this.#deps.audit.record(this.#entry(caller, AuditAction.listed, null, {
        details: {
          filter: { status: filter.status, provider: filter.provider, type: filter.credentialType, tag: filter.tag, search: filter.search },
          sort: page.sort ?? 'name',
          order: page.order ?? 'asc',
          returned: result.credentials.length,
        },
      }));
      return { ...result, credentials: result.credentials.map((credential) => withStatus(credential, now)) };
    });
  }

  async get(caller: Caller, name: string): Promise<CredentialDetail> {
    // The hot path of agents: one read (kept by the read cache while nothing changes) and a
    // group-committed audit entry, no transaction of its own.
    return this.#audited(caller, AuditAction.read, name, async () => {
      const db = this.#db.kysely;
      const detail = await this.#details.read(name, () => findCredentialDetail(db, name));
      const credential = this.#reachable(caller, name, detail?.credential);
      const now = this.#deps.clock.now();
      if (lastUseIsStale(credential.lastUsedAt, now)) {
        await touchCredential(db, credential.id, now.toISOString());
        this.#details.replace(name, detail!, { ...detail!, credential: { ...credential, lastUsedAt: now.toISOString() } });
      }
      await this.#deps.audit.record(this.#entry(caller, AuditAction.read, credential));
      return { ...detail!, credential: withStatus({ ...credential, lastUsedAt: now.toISOString() }, now) };
    });
  }

  async create(caller: Caller, input: CreateCredentialInput): Promise<Credential> {
    return this.#audited(caller, AuditAction.created, input.name, async () => {
      const provider = input.provider ?? 'n8n';
      const tags = input.tags ?? [];
      if (!callerReaches(caller, { name: input.name, tags })) {
        throw new ForbiddenError(`This token is limited to other names or tags and cannot create "${input.name}".`);
      }
      if (input.value !== undefined) checkValue(input.value);
      if (input.metadata) checkMetadata(input.metadata);
      const now = this.#deps.clock.now().toISOString();
      const draft: Credential = {
        id: crypto.randomUUID(),
        name: input.name,
        credentialType: input.credential_type,
        provider,
        description: input.description ?? null,
        encryptedValue: null,
        encryptionKeyId: null,
        providerCredentialId: input.provider_credential_id ?? null,
        providerConfig: this.checkProviderConfig(provider, input.provider_config ?? {}),
        status: 'active',
        createdAt: now,
        updatedAt: now,
        expiresAt: normalizeInstant('expires_at', input.expires_at),
        lastRotatedAt: null,
        lastUsedAt: null,
        lastHealthCheck: null,
        rotationEnabled: input.rotation_enabled ?? false,
        rotationIntervalHours: input.rotation_interval_hours ?? 720,
        rotationStrategy: input.rotation_strategy ?? 'manual',
        nextRotationAt: null,
        alertThresholdHours: input.alert_threshold_hours ?? 168,
        alertSent: false,
        tags,
        metadata: input.metadata ?? {},
        rotationCron: input.rotation_cron ?? null,
        rotationTimezone: canonicalTimeZone(input.rotation_timezone ?? null),
        valuePolicy: input.value_policy ?? null,
      };
      checkCronSchedule(draft.rotationCron, draft.rotationTimezone);
      if (draft.valuePolicy) checkValuePolicy(draft.valuePolicy);
      if (input.value !== undefined) this.#checkProviderValue(draft, input.value);
      this.#checkGeneratedValuePolicy(draft);
      checkExpiryLifetime(draft);
      this.#checkUnattendedRotation(draft);
      const credential = { ...draft, nextRotationAt: nextRotationAt(draft) };
      await this.#deps.adapters[provider].checkTarget?.(credential.providerConfig);
      return this.#db.kysely.transaction().execute(async (trx) => {
        if (await findCredentialByName(trx, credential.name)) throw credentialExists(credential.name);
        await this.#rejectSharedTarget(trx, caller, credential);
        await insertCredential(trx, credential);
        const version = await this.#writeVersion(trx, caller, credential, 1, input.value, 'initial');
        await this.#deps.audit.recordIn(
          trx,
          this.#entry(caller, AuditAction.created, credential, {
            details: { provider, credential_type: credential.credentialType, version: 1, has_value: input.value !== undefined },
          }),
        );
        // The stored status starts as active, while an expiry date already past or near makes it expired or expiring.
        return withStatus({ ...credential, encryptedValue: version.encryptedValue, encryptionKeyId: version.encryptionKeyId }, this.#deps.clock.now());
      }).then((created) => {
        this.#deps.log.info({ credentialId: created.id, name: created.name, provider, actor: caller.actor }, 'credential created');
        return created;
      });
    });
  }

  async update(caller: Caller, name: string, patch: UpdateCredentialInput): Promise<{ credential: Credential; updatedFields: string[] }> {
    return this.#audited(caller, AuditAction.updated, name, async () => {
      const updatedFields = Object.keys(patch).filter((key) => (patch as Record<string, unknown>)[key] !== undefined);
      if (updatedFields.length === 0) throw new ValidationError('body', 'must set at least one field to change');
      if (patch.value !== undefined) checkValue(patch.value);
      if (patch.metadata) checkMetadata(patch.metadata);
      if (patch.provider_config !== undefined) await this.#checkNewTarget(caller, name, patch.provider_config);

      return this.#db.kysely.transaction().execute(async (trx) => {
        const existing = await this.#loadForChange(trx, caller, name);
        if (existing.status === 'retired') {
          throw new ConflictError('credential_retired', `Credential "${name}" is retired and cannot be changed. Create a new credential instead.`);
        }
        await rejectWhileRotating(trx, existing, this.#deps.clock.now(), 'changed');
        const now = this.#deps.clock.now().toISOString();
        const changed: Credential = {
          ...existing,
          description: patch.description !== undefined ? patch.description : existing.description,
          expiresAt: patch.expires_at !== undefined ? normalizeInstant('expires_at', patch.expires_at) : existing.expiresAt,
          rotationEnabled: patch.rotation_enabled ?? existing.rotationEnabled,
          rotationIntervalHours: patch.rotation_interval_hours ?? existing.rotationIntervalHours,
          rotationStrategy: patch.rotation_strategy ?? existing.rotationStrategy,
          alertThresholdHours: patch.alert_threshold_hours ?? existing.alertThresholdHours,
          tags: patch.tags ?? existing.tags,
          metadata: patch.metadata ?? existing.metadata,
          rotationCron: patch.rotation_cron !== undefined ? patch.rotation_cron : existing.rotationCron,
          rotationTimezone: patch.rotation_timezone !== undefined ? canonicalTimeZone(patch.rotation_timezone) : existing.rotationTimezone,
          valuePolicy: patch.value_policy !== undefined ? patch.value_policy : existing.valuePolicy,
          providerCredentialId: patch.provider_credential_id !== undefined ? patch.provider_credential_id : existing.providerCredentialId,
          providerConfig: patch.provider_config !== undefined ? this.checkProviderConfig(existing.provider, patch.provider_config) : existing.providerConfig,
          updatedAt: now,
        };
        // Provider settings and the provider's credential id decide where AEGIS sends the value (a test
        // URL, a file, the n8n credential that a rotation or rollback writes). Changing them on a
        // credential that stores a value therefore needs the scope that could read the value anyway.
        const redirected = [
          ...(patch.provider_config !== undefined ? ['provider_config'] : []),
          ...(changed.providerCredentialId !== existing.providerCredentialId ? ['provider_credential_id'] : []),
        ];
        if (redirected.length > 0 && existing.encryptedValue !== null && !hasScope(caller.scopes, 'credentials:reveal')) {
          throw new ForbiddenError(`Changing ${redirected.join(' and ')} of "${name}" needs the credentials:reveal scope, because the change decides where the value is sent.`);
        }
        if (!callerReaches(caller, changed)) {
          throw new ForbiddenError(`This token is limited to other names or tags and cannot give "${name}" these tags.`);
        }
        if (patch.provider_config !== undefined) await this.#rejectSharedTarget(trx, caller, changed);
        checkCronSchedule(changed.rotationCron, changed.rotationTimezone);
        if (changed.valuePolicy) checkValuePolicy(changed.valuePolicy);
        if (patch.value !== undefined) this.#checkProviderValue(changed, patch.value);
        // Checked only when the policy or the provider settings change, so a credential stored before the check stays editable.
        if (patch.value_policy !== undefined || patch.provider_config !== undefined) this.#checkGeneratedValuePolicy(changed);
        // Checked only when the expiry schedule changes, so a credential stored before the check stays editable.
        if ((['rotationEnabled', 'rotationStrategy', 'expiresAt', 'alertThresholdHours', 'valuePolicy'] as const).some((field) => changed[field] !== existing[field])) checkExpiryLifetime(changed);
        if (changed.rotationEnabled !== existing.rotationEnabled || changed.rotationStrategy !== existing.rotationStrategy || patch.provider_config !== undefined) {
          this.#checkUnattendedRotation(changed);
        }
        // A new expiry date is a new condition to alert on.
        if (changed.expiresAt !== existing.expiresAt) changed.alertSent = false;
        // The due time moves only when the schedule changes. Recomputed on another change, a cron
        // schedule would count from the last rotation again and could be due at once.
        if (scheduleChanged(existing, changed)) changed.nextRotationAt = nextRotationAt(changed, this.#deps.clock.now());

        let newVersion: number | null = null;
        if (patch.value !== undefined || changed.providerCredentialId !== existing.providerCredentialId) {
          newVersion = (await highestVersionNumber(trx, existing.id)) + 1;
          const value = patch.value ?? (await this.#currentValue(trx, existing));
          const version = await this.#writeVersion(trx, caller, changed, newVersion, value, 'manual_update');
          changed.encryptedValue = version.encryptedValue;
          changed.encryptionKeyId = version.encryptionKeyId;
        }
        await saveCredential(trx, changed);
        await this.#deps.audit.recordIn(
          trx,
          this.#entry(caller, AuditAction.updated, changed, {
            details: { updated_fields: updatedFields, ...(newVersion !== null ? { new_version: newVersion } : {}) },
          }),
        );
        return { credential: withStatus(changed, this.#deps.clock.now()), updatedFields, newVersion };
      }).then(({ credential, updatedFields, newVersion }) => {
        this.#deps.log.info({ credentialId: credential.id, name, updatedFields, newVersion, actor: caller.actor }, 'credential updated');
        return { credential, updatedFields };
      });
    });
  }

  async retire(caller: Caller, name: string): Promise<{ credential: Credential; alreadyRetired: boolean }> {
    return this.#audited(caller, AuditAction.retired, name, () =>
      this.#db.kysely.transaction().execute(async (trx) => {
        const existing = await this.#loadForChange(trx, caller, name);
        const alreadyRetired = existing.status === 'retired';
        if (!alreadyRetired) await rejectWhileRotating(trx, existing, this.#deps.clock.now(), 'retired');
        const credential: Credential = alreadyRetired
          ? existing
          : { ...existing, status: 'retired', updatedAt: this.#deps.clock.now().toISOString(), nextRotationAt: null };
        if (!alreadyRetired) await saveCredential(trx, credential);
        if (!alreadyRetired) this.#deps.log.info({ credentialId: credential.id, name, actor: caller.actor }, 'credential retired');
        await this.#deps.audit.recordIn(trx, this.#entry(caller, AuditAction.retired, credential, { details: { already_retired: alreadyRetired } }));
        return { credential, alreadyRetired };
      }),
    );
  }

  /** Lists one page of a credential's versions, newest first, with the number of all its versions. */
  async versions(caller: Caller, name: string, page: { limit: number; offset: number }): Promise<{ credential: Credential; versions: VersionSummary[]; total: number }> {
    return this.#audited(caller, AuditAction.versionsRead, name, () =>
      this.#db.kysely.transaction().execute(async (trx) => {
        const credential = await this.#load(trx, caller, name);
        const { versions, total } = await listVersionSummaries(trx, credential.id, page);
        await this.#deps.audit.recordIn(trx, this.#entry(caller, AuditAction.versionsRead, credential, { details: { returned: versions.length, total } }));
        return { credential, versions, total };
      }),
    );
  }

  /** Decrypts a version's value (the current one by default). The only way a value leaves AEGIS. */
  async reveal(caller: Caller, name: string, versionNumber?: number): Promise<{ credential: Credential; version: number; value: string }> {
    return this.#audited(caller, AuditAction.revealed, name, () =>
      this.#db.kysely.transaction().execute(async (trx) => {
        const credential = await this.#load(trx, caller, name);
        const version =
          versionNumber === undefined ? await findCurrentVersion(trx, credential.id) : await findVersion(trx, credential.id, versionNumber);
        if (!version) {
          throw new NotFoundError(`Credential "${name}" has no version ${versionNumber ?? '(current)'}. List them with GET /credentials/${name}/versions.`, 'version_not_found');
        }
        if (version.encryptedValue === null) {
          throw new NotFoundError(
            `Credential "${name}" version ${version.version} stores no value: it was registered without one, or its provider keeps the value. Store one with PATCH /credentials/${encodeURIComponent(name)} and a "value", or aegis credentials update ${name} --value-stdin.`,
            'value_not_stored',
          );
        }
        const value = await this.#open(trx, credential, version);
        await touchCredential(trx, credential.id, this.#deps.clock.now().toISOString());
        await this.#deps.audit.recordIn(trx, this.#entry(caller, AuditAction.revealed, credential, { details: { version: version.version } }));
        return { credential, version: version.version, value };
      }),
    );
  }

  /** Rejects a value policy's length, alphabet or prefix on a credential whose new values AEGIS never generates. */
  #checkGeneratedValuePolicy(credential: Credential): void {
    const policy = credential.valuePolicy;
    if (policy === null) return;
    const field = (['length', 'alphabet', 'prefix'] as const).find((key) => policy[key] !== undefined);
    if (field === undefined) return;
    const problem = generationProblem(credential, this.#deps.adapters[credential.provider]);
    if (problem === undefined) return;
    throw new ValidationError(`value_policy.${field}`, `applies only to values AEGIS generates, and "${credential.name}" gets none: ${problem}. Remove it, or keep only validity_hours.`);
  }

  /** Rejects an automatic rotation schedule for a credential that can only rotate to a value given in the request. */
  #checkUnattendedRotation(credential: Pick<Credential, 'name' | 'provider' | 'providerConfig' | 'rotationEnabled' | 'rotationStrategy'>): void {
    if (!credential.rotationEnabled || credential.rotationStrategy === 'manual') return;
    const problem = unattendedRotationProblem(credential, this.#deps.adapters[credential.provider]);
    if (problem === undefined) return;
    throw new ValidationError('rotation_strategy', `must be manual for "${credential.name}", because an automatic rotation request carries no new value: ${problem}`);
  }

  /** Rejects a value the credential's provider never accepts (see checkValueOnStore), with the 400 rotation gives, naming `value`. */
  #checkProviderValue(credential: Credential, value: string): void {
    const adapter = this.#deps.adapters[credential.provider];
    if (adapter.checkValueOnStore) adapter.checkValue?.(value, credential);
  }

  /**
   * Rejects automatic rotation settings that a credential of this provider and provider_config could
   * never carry out, as a create would. Templates check their defaults with it. The error names `rotation_strategy`.
   */
  checkRotationSettings(settings: Pick<Credential, 'name' | 'provider' | 'providerConfig' | 'rotationEnabled' | 'rotationStrategy'>): void {
    this.#checkUnattendedRotation(settings);
  }

  /** Checks and normalizes provider settings as a create would; errors name the field under `provider_config`. */
  checkProviderConfig(provider: Provider, config: Record<string, unknown>): Record<string, unknown> {
    checkProviderConfigDocument(config);
    return this.#deps.adapters[provider].checkConfig(config);
  }

  /**
   * Asks the provider about new provider settings before the change's transaction, which must not wait
   * on a provider. The provider never changes, so the settings checked here are the ones the change stores.
   */
  async #checkNewTarget(caller: Caller, name: string, config: Record<string, unknown>): Promise<void> {
    const existing = this.#reachable(caller, name, await findCredentialByName(this.#db.kysely, name));
    if (existing.status === 'retired') return;
    await this.#deps.adapters[existing.provider].checkTarget?.(this.checkProviderConfig(existing.provider, config));
  }

  /**
   * Rejects provider settings that write to the same place as another credential that is not retired
   * (a PostgreSQL role, a variable of a .env file). A failed rotation of one would restore its own old
   * value there and break the other. The other credential is named only when the token reaches it.
   */
  async #rejectSharedTarget(trx: Executor, caller: Caller, credential: Credential): Promise<void> {
    const adapter = this.#deps.adapters[credential.provider];
    if (!adapter.targetOf) return;
    const target = adapter.targetOf(credential.providerConfig);
    // Two transactions that each find no other credential would both insert theirs on PostgreSQL,
    // where they run side by side (SQLite runs one writer at a time), so they take turns per provider.
    if (this.#db.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${`aegis provider target ${credential.provider}`}))`.execute(trx);
    const others = await listUnretiredOfProvider(trx, credential.provider);
    const other = others.find((candidate) => candidate.id !== credential.id && adapter.targetOf!(candidate.providerConfig).key === target.key);
    if (other === undefined) return;
    const owner = callerReaches(caller, other) ? `credential "${other.name}"` : 'another credential, which this token cannot reach';
    throw new AegisError(
      409,
      'provider_target_taken',
      `${target.field}: ${target.description} is already managed by ${owner}. Two credentials for one place overwrite each other's values; change that credential, or retire it first.`,
      { field: target.field, extra: callerReaches(caller, other) ? { credential: other.name } : {} },
    );
  }

  /** Loads a credential for a change, locked until the transaction ends (see findCredentialForChange). */
  async #loadForChange(trx: Executor, caller: Caller, name: string): Promise<Credential> {
    return this.#reachable(caller, name, await findCredentialForChange(trx, this.#db.dialect, { name }));
  }

  async #load(trx: Executor, caller: Caller, name: string): Promise<Credential> {
    return this.#reachable(caller, name, await findCredentialByName(trx, name));
  }

  #reachable(caller: Caller, name: string, credential: Credential | undefined): Credential {
    return requireReachable(caller, name, credential);
  }

  async #writeVersion(
    trx: Transaction<Database>,
    caller: Caller,
    credential: Credential,
    versionNumber: number,
    value: string | undefined | null,
    reason: VersionReason,
  ): Promise<CredentialVersion> {
    const keyId = value === undefined || value === null ? null : await currentMasterKeyId(trx);
    const version: CredentialVersion = {
      id: crypto.randomUUID(),
      credentialId: credential.id,
      version: versionNumber,
      encryptedValue: keyId === null ? null : await this.#deps.keyring.seal(value!, { credentialId: credential.id, version: versionNumber }, keyId, trx),
      encryptionKeyId: keyId,
      providerCredentialId: credential.providerCredentialId,
      createdAt: this.#deps.clock.now().toISOString(),
      createdBy: caller.actor,
      reason,
      isCurrent: false,
      state: 'committed',
    };
    await insertVersion(trx, version);
    await makeCurrent(trx, credential.id, versionNumber);
    await trx
      .updateTable('aegis_credentials')
      .set({ encrypted_value: version.encryptedValue, encryption_key_id: version.encryptionKeyId })
      .where('id', '=', credential.id)
      .execute();
    return { ...version, isCurrent: true };
  }

  async #currentValue(trx: Transaction<Database>, credential: Credential): Promise<string | null> {
    const current = await findCurrentVersion(trx, credential.id);
    return current?.encryptedValue ? this.#open(trx, credential, current) : null;
  }

  async #open(trx: Transaction<Database>, credential: Credential, version: CredentialVersion): Promise<string> {
    try {
      return await this.#deps.keyring.open(version.encryptedValue!, { credentialId: credential.id, version: version.version }, trx);
    } catch (error) {
      if (error instanceof KeyUnavailableError) {
        throw new AegisError(500, 'key_unavailable', `Version ${version.version} of credential "${credential.name}" is sealed under master key ${error.keyId}, which this process does not hold. Add that key to the configured key source.`);
      }
      if (!(error instanceof EnvelopeError)) throw error;
      throw new AegisError(
        500,
        'decryption_failed',
        `The stored value of credential "${credential.name}" version ${version.version} failed to decrypt: the row was changed or copied from another credential. Restore it from a backup.`,
      );
    }
  }

  #entry(caller: Caller, action: string, credential: Credential | null, extra: Partial<AuditEntryInput> = {}): AuditEntryInput {
    return {
      credentialId: credential?.id ?? null,
      credentialName: credential?.name ?? '*',
      action,
      actor: caller.actor,
      ipAddress: caller.ipAddress,
      success: true,
      ...extra,
    };
  }

  /** Runs a call and, when it fails, writes the failure to the audit log before passing the error on. */
  #audited<T>(caller: Caller, action: string, name: string, run: () => Promise<T>): Promise<T> {
    const mapError = (error: unknown) => (action === AuditAction.created && uniqueViolation(error) ? credentialExists(name) : error);
    return runAudited({ audit: this.#deps.audit, db: this.#db.kysely }, caller, action, name, run, mapError);
  }

}

/** Resolution of `last_used_at` on reads: a burst of reads writes it once a second, not once per read. */
const lastUseResolutionMs = 1_000;

function lastUseIsStale(lastUsedAt: string | null, now: Date): boolean {
  return lastUsedAt === null || Math.abs(now.getTime() - new Date(lastUsedAt).getTime()) >= lastUseResolutionMs;
}

function withStatus(credential: Credential, now: Date): Credential {
  return { ...credential, status: effectiveStatus(credential, now) as CredentialStatus };
}

function credentialExists(name: string): ConflictError {
  return new ConflictError('credential_exists', `A credential named "${name}" already exists. Choose another name, or change the existing one with PATCH /credentials/${encodeURIComponent(name)} or aegis credentials update ${name}.`);
}

/** Recognizes a unique-constraint violation from either database (two creates of one name racing). */
function uniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}
