import { alertMessages } from '../alerts/alert-types.js';
import { enqueueAlert } from '../alerts/outbox.repository.js';
import type { Executor } from '../db/database.js';
import { toBool, toIso } from '../db/values.js';
import { findNewestDecisiveCheck } from '../health/health-checks.repository.js';
import { acquireLease, findLeaseForChange, ownerProcessIsGone, releaseLease, stillHolds, takeOverLease, type Lease } from '../leases/leases.repository.js';
import { scrubSecrets } from '../lib/redact.js';
import type { Credential, CredentialStatus } from '../registry/credential.types.js';
import { findCredentialForChange, saveCredential } from '../registry/credentials.repository.js';
import { expiryStatus } from '../registry/status.js';
import { findCurrentVersion, findNewestVersion, makeCurrent } from '../registry/versions.repository.js';
import { insertRotation } from './history.repository.js';
import { openVersion, releaseRotationLease, type RotationDeps } from './rotation-deps.js';
import { pausedSentence, rotationLeaseName } from './rotation.engine.js';
import { rotatedCredential } from './rotated-credential.js';

export interface RecoveryReport {
  completed: string[];
  restored: string[];
  /** Closed as failed: the previous value could not be put back at the provider. */
  failed: string[];
  skipped: string[];
}

/**
 * Finishes rotations a crashed process left behind: credentials still `rotating` or with a pending
 * version, whose lease has expired. When the pending value passes its test, the provider already has
 * it, so the rotation is completed. Otherwise the current version's value is put back at the provider
 * (where it takes values) and the attempt is marked failed. Either way no credential stays `rotating`.
 */
export async function recoverRotations(deps: RotationDeps): Promise<RecoveryReport> {
  const report: RecoveryReport = { completed: [], restored: [], failed: [], skipped: [] };
  await releaseUnreleasedLeases(deps);
  const rows = await findInterrupted(deps.db.kysely);
  for (const row of rows) {
    const claim = await leaseForRecovery(deps, row.id);
    if (claim === 'finished') continue;
    if (claim === 'busy') {
      report.skipped.push(row.name);
      continue;
    }
    try {
      const outcome = await recoverOne(deps, claim.credential, claim.lease);
      report[outcome].push(claim.credential.name);
    } catch (error) {
      deps.log.error({ credentialId: row.id, error: (error as Error).message }, 'recovering an interrupted rotation failed; it is tried again at the next start');
      report.skipped.push(row.name);
    } finally {
      await releaseRotationLease(deps, claim.lease);
    }
  }
  if (rows.length > 0) deps.log.info({ ...report }, 'recovered interrupted rotations');
  return report;
}

/**
 * Releases the rotation leases this process failed to release while the database was down. Until then
 * they block every rotation of their credentials, finished ones included. A lease that was taken over
 * meanwhile has another owner or fencing token, so its release deletes nothing.
 */
async function releaseUnreleasedLeases(deps: RotationDeps): Promise<void> {
  for (const lease of [...deps.unreleasedLeases.values()]) {
    try {
      await releaseLease(deps.db.kysely, lease);
      deps.unreleasedLeases.delete(lease.name);
      deps.log.info({ lease: lease.name }, 'released a rotation lease left over from a database outage');
    } catch {
      // Still unreachable: the next recovery tries again.
    }
  }
}

/** Reads the credentials still `rotating` or with a pending version. */
function findInterrupted(db: Executor) {
  return db
    .selectFrom('aegis_credentials')
    .selectAll()
    .where((eb) =>
      eb.or([
        eb('status', '=', 'rotating'),
        eb.exists(
          eb.selectFrom('aegis_credential_versions as v').select('v.id').whereRef('v.credential_id', '=', 'aegis_credentials.id').where('v.state', '=', 'pending'),
        ),
      ]),
    )
    .execute();
}

/**
 * Takes the rotation lease of a credential that is still interrupted, and returns the lease with the
 * credential as read under it. The lease is taken when it is free or expired, or when its holder was a
 * process on this host that has stopped, because a server killed mid-rotation restarts well before its
 * lease expires. Returns `busy` while a live holder has the lease, and `finished` when the credential
 * is no longer interrupted.
 *
 * The credential was listed before this runs, so its rotation may have finished since then and
 * released the lease. The lease and the credential are therefore read in the transaction that takes
 * the lease, with their rows locked in the order a rotation's commit locks them. A finished rotation
 * gets no lease, which would turn away changes to the credential (409) until recovery released it.
 */
async function leaseForRecovery(deps: RotationDeps, credentialId: string): Promise<{ lease: Lease; credential: Credential } | 'busy' | 'finished'> {
  const name = rotationLeaseName(credentialId);
  return deps.db.kysely.transaction().execute(async (trx) => {
    const holder = await findLeaseForChange(trx, deps.db.dialect, name);
    const credential = await findCredentialForChange(trx, deps.db.dialect, { id: credentialId });
    if (credential === undefined || !(await isInterrupted(trx, credential))) return 'finished';

    let lease = await acquireLease(trx, name, deps.owner, deps.leaseTtlMs, deps.clock.now());
    if (!lease && holder !== undefined && ownerProcessIsGone(holder.owner)) {
      deps.log.info({ credentialId, previousOwner: holder.owner }, 'taking over the rotation lease of a stopped process');
      lease = await takeOverLease(trx, holder, deps.owner, deps.leaseTtlMs, deps.clock.now());
    }
    return lease ? { lease, credential } : 'busy';
  });
}

/** Tells whether the credential is still `rotating` or has a pending version, as `findInterrupted` selects them. */
async function isInterrupted(trx: Executor, credential: Credential): Promise<boolean> {
  if (credential.status === 'rotating') return true;
  const pending = await trx.selectFrom('aegis_credential_versions').select('id').where('credential_id', '=', credential.id).where('state', '=', 'pending').executeTakeFirst();
  return pending !== undefined;
}

async function recoverOne(deps: RotationDeps, credential: Credential, lease: Lease): Promise<'completed' | 'restored' | 'failed'> {
  const adapter = deps.adapters[credential.provider];
  const current = await findCurrentVersion(deps.db.kysely, credential.id);
  const pending = await findNewestVersion(deps.db.kysely, credential.id, 'pending');
  const pendingValue = pending ? await openVersion(deps, deps.db.kysely, credential, pending) : null;
  const currentValue = current ? await openVersion(deps, deps.db.kysely, credential, current) : null;

  let complete = false;
  if (pending && pendingValue !== null && adapter.test) {
    const test = await adapter.test(credential, pendingValue);
    complete = test.healthy;
  }
  // When the previous value cannot be put back (the provider fails), the attempt is still closed, as
  // `failed`: left `rotating`, the credential would refuse every change until the provider recovers.
  let restoreError: string | null = null;
  // The provider id the restore moved the credential to, if setValue replaced it (older n8n).
  let movedTo: string | null = null;
  if (!complete && adapter.setValue && currentValue !== null) {
    try {
      movedTo = (await adapter.setValue(credential, currentValue, pendingValue))?.providerCredentialId ?? null;
    } catch (error) {
      restoreError = scrubSecrets((error as Error).message, [pendingValue ?? '', currentValue]);
    }
  }

  const now = deps.clock.now();
  await deps.db.kysely.transaction().execute(async (trx) => {
    if (!(await stillHolds(trx, deps.db.dialect, lease))) throw new Error('the lease was taken over during recovery');
    // The row as it is now, locked before its versions, as every change takes them: the recovery sets
    // only status, value and rotation times over it.
    const fresh = (await findCredentialForChange(trx, deps.db.dialect, { id: credential.id })) ?? credential;
    await trx.updateTable('aegis_credential_versions').set({ state: 'failed' }).where('credential_id', '=', credential.id).where('state', '=', 'pending').where('version', '!=', complete ? pending!.version : -1).execute();
    let status: CredentialStatus;
    if (complete) status = 'active';
    else if (restoreError !== null) status = 'failed';
    else status = await statusOfKeptVersion(trx, fresh, now);
    let updated: Credential = { ...fresh, status, updatedAt: now.toISOString() };
    // The provider may hold the attempted value or neither, so automatic rotation pauses as after a
    // rotation that fails this way. Otherwise the scheduled run that recovered it would rotate it at once.
    const paused = restoreError !== null && fresh.nextRotationAt !== null;
    if (paused) updated.nextRotationAt = null;
    if (movedTo !== null && current) {
      updated = { ...updated, providerCredentialId: movedTo };
      await trx
        .updateTable('aegis_credential_versions')
        .set({ provider_credential_id: movedTo })
        .where('credential_id', '=', credential.id)
        .where('version', '=', current.version)
        .execute();
    }
    if (complete && pending) {
      await makeCurrent(trx, credential.id, pending.version);
      // As the rotation's own commit would have: expiry moved on where it applies, schedule from now.
      updated = rotatedCredential(updated, now, pending.encryptedValue, pending.encryptionKeyId, 'recovery');
    }
    await saveCredential(trx, updated);
    const previousVersion = current?.version ?? null;
    const newVersion = pending?.version ?? null;
    // A rotation writes its pending version in the transaction that marks the credential rotating, and
    // a rollback writes none, so a credential left rotating without one was stopped during a rollback.
    const interrupted = pending === undefined ? 'a rollback' : 'the rotation';
    const error = complete
      ? null
      : restoreError === null
        ? `the process stopped during ${interrupted}; the previous value was restored`
        : `the process stopped during ${interrupted}, and putting the previous value back failed (${restoreError}); the provider may hold the attempted value or neither, so check it before rotating again${paused ? `. ${pausedSentence}` : ''}`;
    await insertRotation(trx, {
      credentialId: credential.id,
      rotatedAt: now.toISOString(),
      previousVersion,
      newVersion,
      trigger: 'recovery',
      durationMs: 0,
      success: complete,
      errorMessage: error,
      actor: 'system',
      reason: `recovery after an interrupted ${pending === undefined ? 'rollback' : 'rotation'}`,
      attempts: 1,
    });
    await deps.audit.recordIn(trx, {
      credentialId: credential.id,
      credentialName: credential.name,
      action: 'rotated',
      actor: 'system',
      success: complete,
      errorMessage: error,
      details: { trigger: 'recovery', previous_version: previousVersion, new_version: newVersion, outcome: complete ? 'completed' : restoreError === null ? 'restored' : 'unknown' },
    });
    if (!complete && (newVersion !== null || restoreError !== null)) {
      await enqueueAlert(
        trx,
        {
          type: 'rotation_failed',
          // An interrupted rollback attempted no new version, so its key names the recovery's time: each
          // rollback left unrestored is a condition of its own and alerts.
          conditionKey: `rotation_failed:${credential.id}:${newVersion ?? `recovery:${now.toISOString()}`}`,
          credentialId: credential.id,
          credentialName: credential.name,
          message: alertMessages.rotationFailed(credential.name, scrubSecrets(error!, [pendingValue ?? '', currentValue ?? ''])),
          details: { attempted_version: newVersion, trigger: 'recovery', provider_state: restoreError === null ? 'restored' : 'unknown' },
        },
        now,
      );
    }
  });
  return complete ? 'completed' : restoreError === null ? 'restored' : 'failed';
}

/**
 * Derives the status of a credential whose current version was kept, which the interrupted rotation or
 * rollback had marked `rotating`. It is `failed` while its newest health check is unhealthy, and while a
 * failed rotation is newer than that check with no successful rotation or rollback since. Otherwise it
 * is the status its expiry date gives. Checks with an `unknown` result are passed over, because they
 * leave the status as it was.
 */
async function statusOfKeptVersion(trx: Executor, credential: Credential, now: Date): Promise<CredentialStatus> {
  const check = await findNewestDecisiveCheck(trx, credential.id);
  if (check?.status === 'unhealthy') return 'failed';
  const failedAt = await failedRotationTime(trx, credential.id);
  if (failedAt !== undefined && (check === undefined || Date.parse(check.checkedAt) <= failedAt)) return 'failed';
  return expiryStatus(credential, now);
}

/**
 * Returns when the credential's newest rotation failed, or undefined when its newest rotation or rollback
 * succeeded or it has none. Recovery entries that failed are passed over, because a recovery that put
 * the previous value back leaves the status the credential had.
 * NOTE: that also passes over a recovery that could not put the value back and left the credential
 * `failed`, so a later interrupted rollback of that credential may recover it as `active`.
 */
async function failedRotationTime(trx: Executor, credentialId: string): Promise<number | undefined> {
  const row = await trx
    .selectFrom('aegis_rotation_history')
    .select(['success', 'rotated_at'])
    .where('credential_id', '=', credentialId)
    .where((eb) => eb.or([eb('success', '=', true), eb('trigger', '!=', 'recovery')]))
    .orderBy('rotated_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (row === undefined || toBool(row.success)) return undefined;
  return Date.parse(toIso(row.rotated_at));
}
