import crypto from 'node:crypto';
import type { Transaction } from 'kysely';
import { alertMessages } from '../alerts/alert-types.js';
import { enqueueAlert } from '../alerts/outbox.repository.js';
import type { Executor } from '../db/database.js';
import type { Database } from '../db/schema.js';
import { AegisError, ConflictError, ValidationError } from '../lib/errors.js';
import { scrubSecrets } from '../lib/redact.js';
import { acquireLease, findLease, stillHolds, type Lease } from '../leases/leases.repository.js';
import { effectOf, type ProviderAdapter } from '../providers/adapter.js';
import { loadReachableCredential, runAudited } from '../registry/credential-access.js';
import { checkValue } from '../registry/credential-input.js';
import type { Credential, CredentialVersion } from '../registry/credential.types.js';
import { insertPassedCheck } from '../health/health-checks.repository.js';
import { findCredentialForChange, saveCredential } from '../registry/credentials.repository.js';
import { findCurrentVersion, highestVersionNumber, insertVersion, makeCurrent } from '../registry/versions.repository.js';
import type { Caller } from '../tokens/caller.js';
import { insertRotation, type RotationTrigger } from './history.repository.js';
import { InFlightRotations } from './in-flight.js';
import { crashPoint, openVersion, releaseRotationLease, sealVersion, type RotationDeps } from './rotation-deps.js';
import { rotatedCredential } from './rotated-credential.js';
import { isRotationDue } from './schedule.js';
import { generateValue } from './value-policy.js';

export interface RotateRequest {
  trigger: 'manual' | 'emergency' | 'scheduled' | 'expiry';
  reason?: string | undefined;
  /** A new value chosen by the caller. Without it AEGIS generates one or requests one from the provider. */
  value?: string | undefined;
}

export interface RotationOutcome {
  credential: Credential;
  previousVersion: number;
  newVersion: number;
  durationMs: number;
  attempts: number;
  revoked: boolean;
}

/** The origin of the new value, chosen from the request and the adapter's capabilities. */
type ValueSource = 'supplied' | 'generated' | 'issued';

/**
 * The state a failed rotation left at the provider. Either the previous value is back in place, or
 * nothing was written at all, or it is unknown because putting the previous value back failed too.
 * A call may also have timed out and still take effect, or an issued key may be left unrevoked.
 */
type ProviderState = 'restored' | 'unchanged' | 'unknown' | 'timed_out' | 'issued_key_left' | 'left_changed';

const providerStates: Record<ProviderState, string> = {
  restored: 'The previous version is still current; it is safe to retry.',
  unchanged: 'The provider was not changed, and the previous version is still current: fix the cause, then retry.',
  unknown: 'The previous version is still current in AEGIS, but the provider may hold the new value or none: check the provider, then retry.',
  timed_out:
    'The previous version is still current in AEGIS, but a provider call timed out and may still take effect, so the provider state is unknown and it may hold the attempted value: check the provider, then retry.',
  issued_key_left: 'The previous version is still current, but the key the provider issued for this rotation may still be valid: revoke it at the provider before retrying, since each retry issues another.',
  left_changed: 'The previous version is still current in AEGIS, but the provider was left part-changed as described: put it right at the provider, then retry.',
};

/** States in which the provider needs checking; their sentence goes into the history and the alert too, not only the response. */
const uncertainStates: ReadonlySet<ProviderState> = new Set(['unknown', 'timed_out', 'left_changed']);

/** States after which a retry must wait until someone has checked or cleaned up the provider, so automatic rotation stops. */
const pausingStates: ReadonlySet<ProviderState> = new Set([...uncertainStates, 'issued_key_left']);

export const pausedSentence = 'Automatic rotation of this credential is paused until a rotation succeeds or its schedule changes.';

export class RotationFailedError extends AegisError {
  constructor(name: string, reason: string, extra: Record<string, unknown>, state: ProviderState = 'restored', note?: string) {
    const message = `Rotation of "${name}" failed: ${reason}. ${providerStates[state]}${note === undefined ? '' : ` ${note}`}`;
    super(502, 'rotation_failed', message, { extra: { ...extra, provider_state: state } });
  }
}

export function rotationLeaseName(credentialId: string): string {
  return `rotation:${credentialId}`;
}

/**
 * Rejects a change to a credential with 409 while a rotation or rollback holds its lease, or while the
 * credential is `rotating`: the rotation would commit over the change, or work from settings the change
 * replaced. A rotation that outlived its lease, or one a stopped process left, keeps the status until
 * it commits or is recovered. `credential` is the row read for the change; `change` completes
 * "cannot be ... now", e.g. "changed".
 */
export async function rejectWhileRotating(trx: Executor, credential: Pick<Credential, 'id' | 'name' | 'status'>, now: Date, change: string): Promise<void> {
  const lease = await findLease(trx, rotationLeaseName(credential.id));
  if (lease !== undefined && new Date(lease.expiresAt) > now) {
    throw new ConflictError('rotation_in_progress', `A rotation or rollback of "${credential.name}" is in progress, so it cannot be ${change} now. Retry once it has finished.`);
  }
  if (credential.status === 'rotating') {
    throw new ConflictError(
      'rotation_in_progress',
      `"${credential.name}" is rotating, so it cannot be ${change} now. A rotation whose process stopped is recovered by the next scheduled run (POST /rotation/run-scheduled); retry after it.`,
    );
  }
}

/**
 * Runs the rotation protocol for one credential at a time, under a lease with a fencing token. It writes
 * a pending version before the provider is touched, obtains the new value, sets it at the provider and
 * tests it. Then it commits (version, history, audit, alert), or it restores the previous value at the
 * provider and records the failure. Each retry after a failed test uses a new value.
 */
export class RotationEngine {
  readonly #deps: RotationDeps;
  /** Rotations running in this process; a stopping server stops new ones and waits for these. */
  readonly inFlight = new InFlightRotations();

  constructor(deps: RotationDeps) {
    this.#deps = deps;
  }

  async rotate(caller: Caller, name: string, request: RotateRequest): Promise<RotationOutcome> {
    const rotation = runAudited({ audit: this.#deps.audit, db: this.#deps.db.kysely }, caller, 'rotated', name, async () => {
      this.inFlight.assertAccepting(name);
      const credential = await loadReachableCredential(this.#deps.db.kysely, caller, name);
      if (credential.status === 'retired') {
        throw new ConflictError('credential_retired', `Credential "${name}" is retired and cannot be rotated.`);
      }
      const adapter = this.#deps.adapters[credential.provider];
      const source = chooseSource(credential, adapter, request);
      checkStoredConfig(credential, adapter);
      if (request.value !== undefined) {
        checkValue(request.value);
        adapter.checkValue?.(request.value, credential);
      }
      const lease = await acquireLease(this.#deps.db.kysely, rotationLeaseName(credential.id), this.#deps.owner, this.#deps.leaseTtlMs, this.#deps.clock.now());
      if (!lease) {
        throw new ConflictError('rotation_in_progress', `A rotation of "${name}" is already in progress. Retry once it has finished.`);
      }
      try {
        return await this.#rotateHeld(caller, credential, adapter, source, request, lease);
      } finally {
        await releaseRotationLease(this.#deps, lease);
      }
    });
    return this.inFlight.track(name, rotation);
  }

  async #rotateHeld(
    caller: Caller,
    loaded: Credential,
    adapter: ProviderAdapter,
    source: ValueSource,
    request: RotateRequest,
    lease: Lease,
  ): Promise<RotationOutcome> {
    const started = performance.now();
    const db = this.#deps.db.kysely;
    const current = await findCurrentVersion(db, loaded.id);
    if (!current) throw new AegisError(500, 'no_current_version', `Credential "${loaded.name}" has no current version.`);
    const oldValue = await openVersion(this.#deps, db, loaded, current);

    // Step 3: the pending version is on record before the provider is touched, so a crash leaves something to reconcile.
    const pending = await this.#writePending(caller, loaded, current, request.trigger, source === 'issued' ? null : (request.value ?? generateValue(loaded.valuePolicy)));
    crashPoint('after_pending');
    const secrets = [oldValue ?? '', ...(request.value ? [request.value] : [])];
    let value = pending.value;
    // The credential as the provider now knows it: setValue may move it to a new provider id.
    let target = loaded;
    let changedAtProvider = false;
    // A provider call that timed out may still take effect later, even after the previous value is put back.
    let timedOut = false;
    let lastError = 'unknown error';
    // Set when setValue failed part-way and could not undo its change. Retrying or restoring would change the provider further, so neither runs.
    let leftChanged = false;
    // A supplied value is tried once. So is a provider-issued one: each retry would create another live key at the vendor.
    const maxAttempts = source === 'generated' ? this.#deps.attempts : 1;
    let attempt = 0;

    while (attempt < maxAttempts) {
      attempt += 1;
      // The provider call of this attempt that changes something, while it runs.
      let changing: 'issue' | 'set' | null = null;
      try {
        if (attempt > 1 && source === 'generated') value = await this.#updatePending(loaded, pending.version, generateValue(loaded.valuePolicy));
        if (source === 'issued') {
          changing = 'issue';
          const issued = await adapter.issueValue!(loaded, oldValue);
          changing = null;
          value = await this.#updatePending(loaded, pending.version, issued);
        }
        secrets.push(value!);
        if (source !== 'issued' && adapter.setValue) {
          changing = 'set';
          const move = await adapter.setValue(target, value!, oldValue);
          changing = null;
          changedAtProvider = true;
          if (move) target = await this.#recordProviderMove(target, pending.version, move.providerCredentialId);
          crashPoint('after_provider_set');
        }
        const testStarted = performance.now();
        const test = adapter.test ? await adapter.test(target, value) : { healthy: true, skipped: true, error: null, details: {} };
        // A credential without a configured test is committed untested.
        if (test.healthy || test.skipped) {
          crashPoint('after_test');
          return await this.#commit(caller, target, current, pending.version, value!, oldValue, request, lease, {
            durationMs: Math.round(performance.now() - started),
            attempts: attempt,
            adapter,
            passedTest: test.skipped ? undefined : { responseTimeMs: Math.round(performance.now() - testStarted), details: test.details },
          });
        }
        lastError = `the new value failed its test: ${test.error ?? 'unhealthy'}`;
      } catch (error) {
        if (error instanceof AegisError && error.code === 'lease_lost') throw error;
        lastError = (error as Error).message ?? String(error);
        const effect = changing === null ? undefined : effectOf(error);
        // A write the adapter reports as not made needs no restore; any other failed write might have landed.
        if (changing === 'set' && effect !== 'unchanged') changedAtProvider = true;
        if (effect === 'unknown') timedOut = true;
        if (effect === 'left_changed') leftChanged = true;
      }
      this.#deps.log.warn({ credentialId: loaded.id, attempt, error: scrubSecrets(lastError, secrets) }, 'rotation attempt failed');
      // Another attempt could be overwritten by the call still in flight, or change a provider left
      // part-changed further, so none is made.
      if (timedOut || leftChanged) break;
    }

    // A holder whose lease was taken over leaves the provider to the new holder, whose recovery has
    // already put a value there: a restore now would write over it.
    if (changedAtProvider && !leftChanged && !(await this.#stillHolds(lease))) {
      throw new ConflictError('lease_lost', `The rotation lease of "${loaded.name}" was taken over by another process, so this rotation left the provider to it.`);
    }
    const restoreError = leftChanged
      ? null
      : changedAtProvider
      ? await this.#restore(target, current.version, adapter, oldValue, secrets)
      : source === 'issued' && value !== null
        ? await this.#revokeIssued(loaded, adapter, value, oldValue, secrets)
        : null;
    const reason = scrubSecrets(restoreError ? `${lastError}; restoring the previous value also failed: ${restoreError}` : lastError, secrets);
    const state = failureState({ restoreError, changedAtProvider, timedOut, leftChanged, issued: source === 'issued' });
    // The scheduler would otherwise try again at its next run, before anyone could check the provider.
    const pause = (request.trigger === 'scheduled' || request.trigger === 'expiry') && pausingStates.has(state);
    const recorded = [uncertainStates.has(state) ? `${reason}. ${providerStates[state]}` : reason, ...(pause ? [pausedSentence] : [])].join(' ');
    await this.#recordFailure(caller, loaded, current.version, pending.version, request, recorded, attempt, Math.round(performance.now() - started), lease, pause);
    throw new RotationFailedError(loaded.name, reason, { previous_version: current.version, attempts: attempt }, state, pause ? pausedSentence : undefined);
  }

  /** Writes the pending version (the new value sealed, or none yet for provider-issued values) and marks the credential rotating. */
  async #writePending(
    caller: Caller,
    credential: Credential,
    current: CredentialVersion,
    trigger: RotateRequest['trigger'],
    value: string | null,
  ): Promise<{ version: number; value: string | null }> {
    return this.#deps.db.kysely.transaction().execute(async (trx) => {
      await this.#checkUnchanged(trx, credential, current, trigger);
      // Pending versions left by a holder whose lease expired are abandoned: this rotation supersedes them.
      await trx
        .updateTable('aegis_credential_versions')
        .set({ state: 'failed' })
        .where('credential_id', '=', credential.id)
        .where('state', '=', 'pending')
        .execute();
      const version = (await highestVersionNumber(trx, credential.id)) + 1;
      const sealed = value === null ? null : await sealVersion(this.#deps, trx, credential.id, version, value);
      await insertVersion(trx, {
        id: crypto.randomUUID(),
        credentialId: credential.id,
        version,
        encryptedValue: sealed?.envelope ?? null,
        encryptionKeyId: sealed?.keyId ?? null,
        providerCredentialId: current.providerCredentialId,
        createdAt: this.#deps.clock.now().toISOString(),
        createdBy: caller.actor,
        reason: 'rotation',
        isCurrent: false,
        state: 'pending',
      });
      await trx.updateTable('aegis_credentials').set({ status: 'rotating' }).where('id', '=', credential.id).execute();
      return { version, value };
    });
  }

  /**
   * Rejects the rotation before anything is written when the credential changed between its read and
   * the lease. A change that committed just before the lease was taken would otherwise be lost. And a
   * failed rotation would restore a value that is no longer current. An automatic rotation is also
   * rejected when it is no longer due. A scheduled run lists the due credentials before it takes their
   * leases, so another run in this process or another one may have rotated one in between.
   */
  async #checkUnchanged(trx: Transaction<Database>, loaded: Credential, current: CredentialVersion, trigger: RotateRequest['trigger']): Promise<void> {
    const fresh = await findCredentialForChange(trx, this.#deps.db.dialect, { id: loaded.id });
    if (fresh === undefined || fresh.status === 'retired') {
      throw new ConflictError('credential_retired', `Credential "${loaded.name}" was retired while its rotation started. Nothing was changed.`);
    }
    if ((trigger === 'scheduled' || trigger === 'expiry') && !isRotationDue(fresh, this.#deps.clock.now())) {
      throw new ConflictError(
        'rotation_not_due',
        `The automatic rotation of "${loaded.name}" is no longer due: another run rotated it or its schedule changed. Nothing was changed.`,
      );
    }
    const stillCurrent = await findCurrentVersion(trx, loaded.id);
    if (stillCurrent?.version !== current.version || JSON.stringify(fresh.providerConfig) !== JSON.stringify(loaded.providerConfig)) {
      throw new ConflictError('credential_changed', `Credential "${loaded.name}" changed while its rotation started. Nothing was changed; retry the rotation.`);
    }
  }

  async #updatePending(credential: Credential, version: number, value: string): Promise<string> {
    await this.#deps.db.kysely.transaction().execute(async (trx) => {
      const sealed = await sealVersion(this.#deps, trx, credential.id, version, value);
      await trx
        .updateTable('aegis_credential_versions')
        .set({ encrypted_value: sealed.envelope, encryption_key_id: sealed.keyId })
        .where('credential_id', '=', credential.id)
        .where('version', '=', version)
        .execute();
    });
    return value;
  }

  async #commit(
    caller: Caller,
    loaded: Credential,
    current: CredentialVersion,
    newVersion: number,
    value: string,
    oldValue: string | null,
    request: RotateRequest,
    lease: Lease,
    run: { durationMs: number; attempts: number; adapter: ProviderAdapter; passedTest?: { responseTimeMs: number; details: Record<string, unknown> } },
  ): Promise<RotationOutcome> {
    const now = this.#deps.clock.now();
    const committed = await this.#deps.db.kysely.transaction().execute(async (trx) => {
      if (!(await stillHolds(trx, this.#deps.db.dialect, lease))) return null;
      // The row as it is now, not as the rotation read it: health checks, expiry alerts and the
      // provider id may have changed it meanwhile, and the rotation sets only its own columns. The row
      // is locked before the versions, in the same order as PATCH and DELETE lock them.
      const fresh = await findCredentialForChange(trx, this.#deps.db.dialect, { id: loaded.id });
      await makeCurrent(trx, loaded.id, newVersion);
      const row = await trx.selectFrom('aegis_credential_versions').select(['encrypted_value', 'encryption_key_id']).where('credential_id', '=', loaded.id).where('version', '=', newVersion).executeTakeFirstOrThrow();
      let credential = rotatedCredential({ ...(fresh ?? loaded), providerCredentialId: loaded.providerCredentialId }, now, row.encrypted_value, row.encryption_key_id, request.trigger);
      if (run.passedTest) {
        // The test of the committed value is its newest health check, so the dashboard no longer shows
        // the result of a check of the value it replaced.
        credential = { ...credential, lastHealthCheck: now.toISOString() };
        await insertPassedCheck(trx, loaded.id, now.toISOString(), run.passedTest.responseTimeMs, { ...run.passedTest.details, rotated_to_version: newVersion });
      }
      await saveCredential(trx, credential);
      await this.#recordOutcome(trx, caller, credential, { previous: current.version, next: newVersion, request, success: true, error: null, attempts: run.attempts, durationMs: run.durationMs });
      return credential;
    });
    if (!committed) {
      throw new ConflictError('lease_lost', `The rotation lease of "${loaded.name}" was taken over by another process, so this rotation did not commit.`);
    }
    this.#deps.log.info({ credentialId: loaded.id, name: loaded.name, previousVersion: current.version, newVersion, trigger: request.trigger }, 'credential rotated');
    this.#deps.metrics?.recordRotation(request.trigger, 'success', run.durationMs);

    let revoked = false;
    const revokeOld = request.trigger === 'emergency' || run.adapter.capabilities.revokeAfterRotation === true;
    if (revokeOld && oldValue !== null && run.adapter.revoke && run.adapter.capabilities.revoke) {
      try {
        await run.adapter.revoke(committed, oldValue, value);
        revoked = true;
      } catch (error) {
        const message = scrubSecrets((error as Error).message, [oldValue, value]);
        this.#deps.log.warn({ credentialId: loaded.id, error: message }, 'revoking the old value failed after an emergency rotation');
        await this.#deps.audit.record({ credentialId: loaded.id, credentialName: loaded.name, action: 'revoked', actor: caller.actor, ipAddress: caller.ipAddress, success: false, errorMessage: message });
      }
    }
    return { credential: committed, previousVersion: current.version, newVersion, durationMs: run.durationMs, attempts: run.attempts, revoked };
  }

  async #stillHolds(lease: Lease): Promise<boolean> {
    const holder = await findLease(this.#deps.db.kysely, lease.name);
    return holder !== undefined && holder.owner === lease.owner && holder.fencingToken === lease.fencingToken;
  }

  async #restore(credential: Credential, currentVersion: number, adapter: ProviderAdapter, oldValue: string | null, secrets: string[]): Promise<string | null> {
    if (oldValue === null || !adapter.setValue) return null;
    try {
      const move = await adapter.setValue(credential, oldValue, null);
      if (move) await this.#recordProviderMove(credential, currentVersion, move.providerCredentialId);
      return null;
    } catch (error) {
      const message = scrubSecrets((error as Error).message, secrets);
      this.#deps.log.error({ credentialId: credential.id, error: message }, 'restoring the previous value at the provider failed');
      return message;
    }
  }

  /**
   * Records a provider id that setValue replaced, on the credential and on the version whose value now
   * lives there, at once: the old id is gone at the provider even if the rotation fails later.
   */
  async #recordProviderMove(credential: Credential, version: number, providerCredentialId: string): Promise<Credential> {
    await this.#deps.db.kysely.transaction().execute(async (trx) => {
      await trx.updateTable('aegis_credentials').set({ provider_credential_id: providerCredentialId }).where('id', '=', credential.id).execute();
      await trx
        .updateTable('aegis_credential_versions')
        .set({ provider_credential_id: providerCredentialId })
        .where('credential_id', '=', credential.id)
        .where('version', '=', version)
        .execute();
    });
    this.#deps.log.info({ credentialId: credential.id, from: credential.providerCredentialId, to: providerCredentialId }, 'the provider replaced the credential under a new id');
    return { ...credential, providerCredentialId };
  }

  /** Revokes a provider-issued value that failed its test, so no unused live key is left at the vendor. */
  async #revokeIssued(credential: Credential, adapter: ProviderAdapter, issued: string, current: string | null, secrets: string[]): Promise<string | null> {
    if (!adapter.revoke || !adapter.capabilities.revoke || credential.providerConfig.revoke === undefined) return null;
    try {
      await adapter.revoke(credential, issued, current ?? '');
      return null;
    } catch (error) {
      const message = scrubSecrets((error as Error).message, secrets);
      this.#deps.log.error({ credentialId: credential.id, error: message }, 'revoking the issued value that failed its test failed');
      return `revoking the new value failed: ${message}`;
    }
  }

  async #recordFailure(
    caller: Caller,
    loaded: Credential,
    previous: number,
    pendingVersion: number,
    request: RotateRequest,
    error: string,
    attempts: number,
    durationMs: number,
    lease: Lease,
    pause: boolean,
  ): Promise<void> {
    const recorded = await this.#deps.db.kysely.transaction().execute(async (trx) => {
      // A rotation whose lease was taken over leaves the outcome to the one that took it.
      if (!(await stillHolds(trx, this.#deps.db.dialect, lease))) return false;
      // The credential's row before its versions, the order every change takes (no deadlock).
      await findCredentialForChange(trx, this.#deps.db.dialect, { id: loaded.id });
      await trx.updateTable('aegis_credential_versions').set({ state: 'failed' }).where('credential_id', '=', loaded.id).where('version', '=', pendingVersion).execute();
      const credential: Credential = { ...loaded, status: 'failed', updatedAt: this.#deps.clock.now().toISOString() };
      await trx
        .updateTable('aegis_credentials')
        .set({ status: 'failed', updated_at: credential.updatedAt, ...(pause ? { next_rotation_at: null } : {}) })
        .where('id', '=', loaded.id)
        .execute();
      await this.#recordOutcome(trx, caller, credential, { previous, next: pendingVersion, request, success: false, error, attempts, durationMs });
      return true;
    });
    if (!recorded) this.#deps.log.warn({ credentialId: loaded.id, name: loaded.name }, 'the rotation failed after another process took over its lease; that process records the outcome');
    this.#deps.log.warn({ credentialId: loaded.id, name: loaded.name, attempts, trigger: request.trigger }, 'rotation failed');
    this.#deps.metrics?.recordRotation(request.trigger, 'failure', durationMs);
  }

  /** History row, audit entry and alert of one rotation, in the transaction of its outcome. */
  async #recordOutcome(
    trx: Transaction<Database>,
    caller: Caller,
    credential: Credential,
    outcome: { previous: number; next: number; request: RotateRequest; success: boolean; error: string | null; attempts: number; durationMs: number },
  ): Promise<void> {
    const now = this.#deps.clock.now();
    await insertRotation(trx, {
      credentialId: credential.id,
      rotatedAt: now.toISOString(),
      previousVersion: outcome.previous,
      newVersion: outcome.next,
      trigger: outcome.request.trigger as RotationTrigger,
      durationMs: outcome.durationMs,
      success: outcome.success,
      errorMessage: outcome.error,
      actor: caller.actor,
      reason: outcome.request.reason ?? null,
      attempts: outcome.attempts,
    });
    await this.#deps.audit.recordIn(trx, {
      credentialId: credential.id,
      credentialName: credential.name,
      action: 'rotated',
      actor: caller.actor,
      ipAddress: caller.ipAddress,
      success: outcome.success,
      errorMessage: outcome.error,
      details: { trigger: outcome.request.trigger, previous_version: outcome.previous, new_version: outcome.next, attempts: outcome.attempts, reason: outcome.request.reason ?? null },
    });
    const emergency = outcome.request.trigger === 'emergency';
    await enqueueAlert(
      trx,
      outcome.success
        ? {
            type: 'rotation_success',
            conditionKey: `rotation_success:${credential.id}:${outcome.next}`,
            credentialId: credential.id,
            credentialName: credential.name,
            message: alertMessages.rotationSuccess(credential.name, emergency),
            details: { previous_version: outcome.previous, new_version: outcome.next, trigger: outcome.request.trigger },
            ...(emergency ? { priority: 'critical' } : {}),
          }
        : {
            type: 'rotation_failed',
            conditionKey: failureConditionKey(credential.id, outcome.request.trigger, outcome.previous, outcome.next),
            credentialId: credential.id,
            credentialName: credential.name,
            message: alertMessages.rotationFailed(credential.name, outcome.error ?? 'unknown error'),
            details: { previous_version: outcome.previous, attempted_version: outcome.next, trigger: outcome.request.trigger, attempts: outcome.attempts },
          },
      now,
    );
  }
}

/**
 * Names the condition a failed rotation alerts on. The scheduler retries a failed credential at every run,
 * so its failures count as one condition until a rotation succeeds and changes the current version. A
 * manual or emergency rotation is a new request each time, so each of its failures alerts.
 */
function failureConditionKey(credentialId: string, trigger: RotateRequest['trigger'], currentVersion: number, attemptedVersion: number): string {
  if (trigger === 'scheduled' || trigger === 'expiry') return `rotation_failed:${credentialId}:automatic:from:${currentVersion}`;
  return `rotation_failed:${credentialId}:${attemptedVersion}`;
}

/** Names the state a failed rotation left at the provider, from what its attempts and its restore reported. */
function failureState(outcome: { restoreError: string | null; changedAtProvider: boolean; timedOut: boolean; leftChanged: boolean; issued: boolean }): ProviderState {
  if (outcome.leftChanged) return 'left_changed';
  if (outcome.timedOut) return 'timed_out';
  if (outcome.restoreError !== null) return outcome.changedAtProvider ? 'unknown' : 'issued_key_left';
  if (!outcome.changedAtProvider && !outcome.issued) return 'unchanged';
  return 'restored';
}

/** Picks where the new value comes from, or rejects a rotation the provider cannot do. */
/**
 * Returns why the credential cannot rotate without a value in the request (so never on a schedule),
 * or undefined when it can. It can when the provider issues new values through a `rotate` template,
 * or when AEGIS generates one and sets it at the provider.
 */
export function unattendedRotationProblem(credential: Pick<Credential, 'provider' | 'providerConfig'>, adapter: ProviderAdapter): string | undefined {
  const { setValue, issueValue } = adapter.capabilities;
  if (issueValue && credential.providerConfig.rotate !== undefined) return undefined;
  if (setValue && adapter.takesGeneratedValues !== false) return undefined;
  if (adapter.unavailableReason !== undefined) return adapter.unavailableReason;
  if (setValue) return `AEGIS cannot generate the value of a ${credential.provider} credential, which is the JSON object of its data; rotate it with the value in the request.`;
  return `${credential.provider} credentials without a provider_config.rotate request get no new value from the provider; add one, or rotate with the value in the request.`;
}

/**
 * Returns why AEGIS never generates a value for the credential, so that a value policy's length,
 * alphabet and prefix would do nothing, or undefined when rotations without a value generate one.
 */
export function generationProblem(credential: Pick<Credential, 'provider' | 'providerConfig'>, adapter: ProviderAdapter): string | undefined {
  const { setValue, issueValue } = adapter.capabilities;
  if (adapter.takesGeneratedValues === false) return `the value of a ${credential.provider} credential is the JSON object of its data, which AEGIS does not generate`;
  // This process cannot tell what a provider it cannot use would do, so the policy is left to it.
  if (adapter.unavailableReason !== undefined) return undefined;
  if (issueValue && credential.providerConfig.rotate !== undefined) return 'its provider_config.rotate request gets each new value from the provider';
  if (setValue) return undefined;
  return `${credential.provider} credentials without a provider_config.rotate request rotate only to a value in the request`;
}

function chooseSource(credential: Credential, adapter: ProviderAdapter, request: RotateRequest): ValueSource {
  const { setValue, test, issueValue } = adapter.capabilities;
  if (!setValue && !test && !issueValue) {
    const reason = adapter.unavailableReason ?? `AEGIS cannot rotate ${credential.provider} credentials.`;
    throw new ConflictError('rotation_unsupported', `"${credential.name}" cannot be rotated: ${reason}`);
  }
  if (request.value !== undefined) return 'supplied';
  if (issueValue && credential.providerConfig.rotate !== undefined) return 'issued';
  if (setValue && adapter.takesGeneratedValues === false) {
    throw new ConflictError(
      'rotation_unsupported',
      `A generated value cannot be the value of ${credential.provider} credential "${credential.name}", which is the JSON object of its data. Send the new value in the request.`,
    );
  }
  if (setValue) return 'generated';
  throw new ConflictError(
    'rotation_unsupported',
    `Provider ${credential.provider} cannot issue or set a new value for "${credential.name}". Rotate it at the provider and send the new value in the request.`,
  );
}

/**
 * Checks the stored provider settings against this process's own before anything is written: the
 * credential may have been stored by a process with other settings (the CLI, another server), such
 * as wider env folders, or before a check existed.
 */
function checkStoredConfig(credential: Credential, adapter: ProviderAdapter): void {
  try {
    adapter.checkConfig(credential.providerConfig);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new ConflictError(
      'provider_config_invalid',
      `"${credential.name}" cannot be rotated by this server: ${error.message.replace(/\.$/, '')}. Change provider_config with PATCH /credentials/${encodeURIComponent(credential.name)}, or the server's settings.`,
    );
  }
}
