import type { AuditLog } from '../audit/audit.service.js';
import type { Executor } from '../db/database.js';
import { AegisError, ConflictError, NotFoundError } from '../lib/errors.js';
import { insertPassedCheck } from '../health/health-checks.repository.js';
import { acquireLease, stillHolds, type Lease } from '../leases/leases.repository.js';
import { scrubSecrets } from '../lib/redact.js';
import { loadReachableCredential, runAudited } from '../registry/credential-access.js';
import { findCredentialForChange } from '../registry/credentials.repository.js';
import type { Credential, CredentialStatus, CredentialVersion } from '../registry/credential.types.js';
import { effectOf, type ProviderEffect } from '../providers/adapter.js';
import { findCurrentVersion, findNewestVersion, findVersion, highestVersionNumber, makeCurrent } from '../registry/versions.repository.js';
import type { Caller } from '../tokens/caller.js';
import { insertRotation, markRolledBack } from './history.repository.js';
import { openVersion, releaseRotationLease, type RotationDeps } from './rotation-deps.js';
import { rotationLeaseName } from './rotation.engine.js';

export interface RollbackOutcome {
  fromVersion: number;
  toVersion: number;
}

/**
 * Makes an earlier version current again: re-applies its value at the provider (where the provider takes
 * values), tests it, and only then switches the current version. Without `version` it goes back to the
 * newest committed version before the current one. A version number that never existed is 404; one that
 * retention removed is 410. Neither changes anything.
 */
export async function rollback(deps: RotationDeps & { audit: AuditLog }, caller: Caller, name: string, version?: number): Promise<RollbackOutcome> {
  return runAudited({ audit: deps.audit, db: deps.db.kysely }, caller, 'rolled_back', name, async () => {
    const started = performance.now();
    const found = await loadReachableCredential(deps.db.kysely, caller, name);
    if (found.status === 'retired') throw retiredError(name);
    // Checked before the lease as well: taking over the expired lease of a rotation that is still
    // running would make that rotation fail after it changed the provider.
    if (found.status === 'rotating') throw rotatingError(name);

    const lease = await acquireLease(deps.db.kysely, rotationLeaseName(found.id), deps.owner, deps.leaseTtlMs, deps.clock.now());
    if (!lease) throw new ConflictError('rotation_in_progress', `A rotation or rollback of "${name}" is in progress. Retry the rollback once it has finished.`);
    let committed = false;
    // The status before the rollback marked the credential `rotating`, put back unless it commits.
    let statusBefore: CredentialStatus | undefined;
    try {
      // Read under the row lock, once the lease is held: a change that started before the lease was
      // taken has committed by then, and no other change starts until the lease is released.
      // Only the current and the target version are read, because a credential rotated hourly keeps thousands of versions.
      const { credential, current, target } = await deps.db.kysely.transaction().execute(async (trx) => {
        const credential = await findCredentialForChange(trx, deps.db.dialect, { id: found.id });
        if (credential === undefined || credential.status === 'retired') throw retiredError(name);
        if (credential.status === 'rotating') throw rotatingError(name);
        const current = await findCurrentVersion(trx, credential.id);
        if (!current) throw new AegisError(500, 'no_current_version', `Credential "${name}" has no current version.`);
        return { credential, current, target: await pickTarget(trx, name, current, version) };
      });
      if (target.encryptedValue === null && current.encryptedValue !== null) {
        // Nothing could be put back at the provider, so it would keep the current value while AEGIS had none.
        throw new ConflictError(
          'version_has_no_value',
          `Version ${target.version} of "${name}" has no stored value, so rolling back to it would leave "${name}" without a value while the provider keeps version ${current.version}'s. Roll back to a version with a value, or store one with PATCH /credentials/${encodeURIComponent(name)}.`,
        );
      }
      const adapter = deps.adapters[credential.provider];
      const targetValue = await openVersion(deps, deps.db.kysely, credential, target);
      const currentValue = await openVersion(deps, deps.db.kysely, credential, current);
      const secrets = [targetValue ?? '', currentValue ?? ''];
      // The provider's current id of the credential. A provider that replaces the credential
      // on a write (n8n without PATCH) hands back a new one, and the old versions' ids no longer exist.
      let liveProviderId = credential.providerCredentialId;
      if (adapter.setValue && targetValue !== null) {
        // Written before the provider changes, so a process killed before the commit leaves the
        // credential `rotating`, and recovery puts the current version's value back at the provider.
        statusBefore = await markRotatingUnderLease(deps, lease, credential.id);
        // Without the mark, recovery would not know to undo the write, so a rollback that lost its lease
        // leaves the provider alone.
        if (statusBefore === undefined) throw new ConflictError('lease_lost', `The rotation lease of "${name}" was taken over, so the rollback did not change the provider.`);
        try {
          const move = await adapter.setValue(credential, targetValue, currentValue);
          if (move) liveProviderId = move.providerCredentialId;
        } catch (error) {
          const restored = await restoreAfterFailedWrite(deps, credential, current.version, effectOf(error), currentValue, targetValue, secrets);
          throw new AegisError(502, 'rollback_failed', `Rollback of "${name}" failed at the provider: ${scrubSecrets((error as Error).message, secrets)}. Version ${current.version} is still current${restored}.`);
        }
      }
      // The rollback's passed test of the target value, stored as its newest health check like a rotation's.
      let passedTest: { responseTimeMs: number; details: Record<string, unknown> } | undefined;
      // Whatever stops the rollback after the provider moved the credential to a new id (a failed
      // test, a test that throws, a lost lease), the old id is gone there, so the new one is recorded.
      try {
        if (adapter.test) {
          const testStarted = performance.now();
          const test = await adapter.test({ ...credential, providerCredentialId: liveProviderId }, targetValue);
          if (test.healthy && !test.skipped) passedTest = { responseTimeMs: Math.round(performance.now() - testStarted), details: test.details };
          if (!test.healthy && !test.skipped) {
            let restoreError = '';
            if (adapter.setValue && currentValue !== null) {
              try {
                const move = await adapter.setValue({ ...credential, providerCredentialId: liveProviderId }, currentValue, targetValue);
                if (move) liveProviderId = move.providerCredentialId;
              } catch (error) {
                const message = scrubSecrets((error as Error).message, secrets);
                deps.log.error({ credentialId: credential.id, error: message }, 'restoring the current value after a failed rollback test failed');
                restoreError = ` in AEGIS, but putting its value back at the provider failed too (${message}): check the provider`;
              }
            }
            throw new AegisError(502, 'rollback_failed', `Version ${target.version} of "${name}" failed its test (${scrubSecrets(test.error ?? 'unhealthy', secrets)}); version ${current.version} is still current${restoreError}.`);
          }
        }
        const now = deps.clock.now().toISOString();
        committed = await deps.db.kysely.transaction().execute(async (trx) => {
          if (!(await stillHolds(trx, deps.db.dialect, lease))) return false;
          // The credential's row before its versions, the order every change takes (no deadlock).
          await findCredentialForChange(trx, deps.db.dialect, { id: credential.id });
          await makeCurrent(trx, credential.id, target.version);
          await trx
            .updateTable('aegis_credentials')
            .set({
              encrypted_value: target.encryptedValue,
              encryption_key_id: target.encryptionKeyId,
              provider_credential_id: liveProviderId,
              status: 'active',
              updated_at: now,
              ...(passedTest ? { last_health_check: now } : {}),
            })
            .where('id', '=', credential.id)
            .execute();
          // Otherwise the newest check would still be one of the replaced version, and a later failure
          // of this version would count as its repeat and raise no alert.
          if (passedTest) await insertPassedCheck(trx, credential.id, now, passedTest.responseTimeMs, { ...passedTest.details, rolled_back_to_version: target.version });
          await trx
            .updateTable('aegis_credential_versions')
            .set({ provider_credential_id: liveProviderId })
            .where('credential_id', '=', credential.id)
            .where('version', '=', target.version)
            .execute();
          await markRolledBack(trx, credential.id, current.version, now);
          await insertRotation(trx, {
            credentialId: credential.id,
            rotatedAt: now,
            previousVersion: current.version,
            newVersion: target.version,
            trigger: 'rollback',
            durationMs: Math.round(performance.now() - started),
            success: true,
            errorMessage: null,
            actor: caller.actor,
            reason: null,
            attempts: 1,
          });
          await deps.audit.recordIn(trx, {
            credentialId: credential.id,
            credentialName: credential.name,
            action: 'rolled_back',
            actor: caller.actor,
            ipAddress: caller.ipAddress,
            success: true,
            details: { from_version: current.version, to_version: target.version },
          });
          return true;
        });
      } finally {
        if (!committed && liveProviderId !== credential.providerCredentialId) {
          await recordProviderId(deps, credential.id, current.version, liveProviderId).catch((error: unknown) => {
            deps.log.error({ credentialId: credential.id, providerCredentialId: liveProviderId, error: (error as Error).message }, 'recording the provider id after a failed rollback failed');
          });
        }
      }
      if (!committed) throw new ConflictError('lease_lost', `The rotation lease of "${name}" was taken over, so the rollback did not commit.`);
      deps.log.info({ credentialId: credential.id, name, fromVersion: current.version, toVersion: target.version }, 'credential rolled back');
      return { fromVersion: current.version, toVersion: target.version };
    } finally {
      if (statusBefore !== undefined && !committed) {
        await setStatusUnderLease(deps, lease, found.id, statusBefore).catch((error: unknown) => {
          deps.log.error({ credentialId: found.id, error: (error as Error).message }, 'resetting the status after a failed rollback failed, so the next recovery resets it');
        });
      }
      await releaseRotationLease(deps, lease);
    }
  });
}

/**
 * Records the provider's id of a credential that a failed rollback moved (n8n without PATCH replaces
 * it under a new id), on the credential and its current version, as a committed rollback does. The
 * id the rollback started from no longer exists at the provider.
 */
async function recordProviderId(deps: RotationDeps, credentialId: string, version: number, providerCredentialId: string | null): Promise<void> {
  await deps.db.kysely.transaction().execute(async (trx) => {
    await trx.updateTable('aegis_credentials').set({ provider_credential_id: providerCredentialId }).where('id', '=', credentialId).execute();
    await trx
      .updateTable('aegis_credential_versions')
      .set({ provider_credential_id: providerCredentialId })
      .where('credential_id', '=', credentialId)
      .where('version', '=', version)
      .execute();
  });
  deps.log.info({ credentialId, to: providerCredentialId }, 'the provider replaced the credential under a new id during a failed rollback');
}

/**
 * Puts the current value back at the provider after a failed write of the rollback's target, unless the
 * adapter reports that nothing was written, or that the write was left part-changed (an n8n replace),
 * which another write would change further. A write that failed after the change (a reload command that
 * exits non-zero, a timeout) may have landed. Returns the clause the error message ends with.
 */
async function restoreAfterFailedWrite(
  deps: RotationDeps,
  credential: Credential,
  currentVersion: number,
  effect: ProviderEffect | undefined,
  currentValue: string | null,
  targetValue: string,
  secrets: string[],
): Promise<string> {
  if (effect === 'unchanged' || effect === 'left_changed' || currentValue === null) return '';
  try {
    const move = await deps.adapters[credential.provider].setValue!(credential, currentValue, targetValue);
    if (move) await recordProviderId(deps, credential.id, currentVersion, move.providerCredentialId);
    return `, and its value was put back at the provider`;
  } catch (error) {
    const message = scrubSecrets((error as Error).message, secrets);
    deps.log.error({ credentialId: credential.id, error: message }, 'restoring the current value after a failed rollback write failed');
    return ` in AEGIS, but putting its value back at the provider failed too (${message}): check the provider`;
  }
}

/**
 * Marks the credential `rotating` while `lease` is still held, and returns the status it replaced, read
 * under the row lock in the same transaction. Health checks and expiry runs change the status without
 * the lease, so a status read earlier could be stale by now. Returns undefined when the lease was lost.
 */
async function markRotatingUnderLease(deps: RotationDeps, lease: Lease, credentialId: string): Promise<CredentialStatus | undefined> {
  return deps.db.kysely.transaction().execute(async (trx) => {
    if (!(await stillHolds(trx, deps.db.dialect, lease))) return undefined;
    const credential = await findCredentialForChange(trx, deps.db.dialect, { id: credentialId });
    if (credential === undefined) return undefined;
    await trx.updateTable('aegis_credentials').set({ status: 'rotating' }).where('id', '=', credentialId).execute();
    return credential.status;
  });
}

/**
 * Sets the credential's status while `lease` is still held. A holder that lost the lease leaves the
 * status to the process that took the lease over.
 */
async function setStatusUnderLease(deps: RotationDeps, lease: Lease, credentialId: string, status: CredentialStatus): Promise<void> {
  await deps.db.kysely.transaction().execute(async (trx) => {
    if (!(await stillHolds(trx, deps.db.dialect, lease))) return;
    await trx.updateTable('aegis_credentials').set({ status }).where('id', '=', credentialId).execute();
  });
}

async function pickTarget(db: Executor, name: string, current: CredentialVersion, requested: number | undefined): Promise<CredentialVersion> {
  if (requested === undefined) {
    const previous = await findNewestVersion(db, current.credentialId, 'committed', current.version);
    if (!previous) throw new NotFoundError(`Credential "${name}" has no earlier committed version to roll back to.`, 'version_not_found');
    return previous;
  }
  const target = await findVersion(db, current.credentialId, requested);
  if (!target) {
    const highest = await highestVersionNumber(db, current.credentialId);
    if (requested <= highest) {
      throw new AegisError(410, 'version_purged', `Version ${requested} of "${name}" was removed by retention and cannot be restored.`);
    }
    throw new NotFoundError(`Credential "${name}" has no version ${requested}; its newest is ${highest}.`, 'version_not_found');
  }
  if (target.isCurrent) throw new ConflictError('version_is_current', `Version ${requested} of "${name}" is already current.`);
  if (target.state !== 'committed') {
    throw new ConflictError('version_not_committed', `Version ${requested} of "${name}" is a ${target.state} rotation attempt and was never in use.`);
  }
  return target;
}

function retiredError(name: string): ConflictError {
  return new ConflictError('credential_retired', `Credential "${name}" is retired and cannot be rolled back.`);
}

function rotatingError(name: string): ConflictError {
  return new ConflictError('rotation_in_progress', `"${name}" is rotating. A rotation whose process stopped is recovered by the next scheduled run (POST /rotation/run-scheduled); retry the rollback after it.`);
}
