import crypto from 'node:crypto';
import type { Transaction } from 'kysely';
import { AuditAction } from '../../audit/audit.types.js';
import { currentMasterKeyId } from '../../crypto/master-keys.repository.js';
import type { Database } from '../../db/schema.js';
import { toJson } from '../../db/values.js';
import { findCredentialByName, insertCredential } from '../../registry/credentials.repository.js';
import { insertVersion } from '../../registry/versions.repository.js';
import type { Caller } from '../../tokens/caller.js';
import type { Vault } from '../../vault.js';
import type { ImportTarget } from '../import-report.js';
import type { CredentialPlan } from './legacy-plan.js';

/** The parts of an open vault the legacy import writes through. */
export type LegacyImportTarget = ImportTarget & Pick<Vault, 'keyring' | 'clock'>;

/**
 * Writes one planned credential in one transaction: the credential, every version, its rotation history
 * and health checks, and an `imported` audit entry. Each version is sealed under the current master key
 * with a new data key, bound to the new credential id and version number. Returns false, having written
 * nothing, when a credential of that name appeared since the plan was made.
 */
export async function writeCredentialPlan(target: LegacyImportTarget, caller: Caller, plan: CredentialPlan, source: string): Promise<boolean> {
  return target.db.kysely.transaction().execute(async (trx) => {
    if (await findCredentialByName(trx, plan.credential.name)) return false;
    const keyId = await currentMasterKeyId(trx);
    const sealed = new Map<number, string | null>();
    for (const version of plan.versions) {
      const context = { credentialId: plan.credential.id, version: version.version };
      sealed.set(version.version, version.value === null ? null : await target.keyring.seal(version.value, context, keyId, trx));
    }
    const current = plan.versions.find((version) => version.isCurrent)!;
    const currentEnvelope = sealed.get(current.version) ?? null;
    await insertCredential(trx, { ...plan.credential, encryptedValue: currentEnvelope, encryptionKeyId: currentEnvelope === null ? null : keyId });
    for (const version of plan.versions) {
      const envelope = sealed.get(version.version) ?? null;
      await insertVersion(trx, {
        id: crypto.randomUUID(),
        credentialId: plan.credential.id,
        version: version.version,
        encryptedValue: envelope,
        encryptionKeyId: envelope === null ? null : keyId,
        providerCredentialId: version.providerCredentialId,
        createdAt: version.createdAt,
        createdBy: version.createdBy,
        reason: version.reason,
        isCurrent: version.isCurrent,
        state: 'committed',
      });
    }
    await insertHistory(trx, plan, caller);
    await target.audit.recordIn(trx, {
      credentialId: plan.credential.id,
      credentialName: plan.credential.name,
      action: AuditAction.imported,
      actor: caller.actor,
      ipAddress: caller.ipAddress,
      target: source,
      success: true,
      details: {
        format: 'aegis-legacy',
        legacy_id: plan.origin.legacy_id,
        provider: plan.credential.provider,
        versions: plan.versions.map((version) => version.version),
        current_version: current.version,
        rotations: plan.rotations.length,
        health_checks: plan.healthChecks.length,
      },
    });
    return true;
  });
}

async function insertHistory(trx: Transaction<Database>, plan: CredentialPlan, caller: Caller): Promise<void> {
  for (const rotation of plan.rotations) {
    await trx
      .insertInto('aegis_rotation_history')
      .values({
        id: crypto.randomUUID(),
        credential_id: plan.credential.id,
        rotated_at: rotation.rotatedAt,
        previous_version: rotation.previousVersion,
        new_version: rotation.newVersion,
        trigger: rotation.trigger,
        duration_ms: rotation.durationMs,
        success: rotation.success,
        error_message: rotation.errorMessage,
        rolled_back: rotation.rolledBack,
        rollback_at: rotation.rollbackAt,
        actor: null,
        reason: `imported from the earlier AEGIS by ${caller.actor}`,
        attempts: 1,
      })
      .execute();
  }
  for (const check of plan.healthChecks) {
    await trx
      .insertInto('aegis_health_checks')
      .values({
        id: crypto.randomUUID(),
        credential_id: plan.credential.id,
        checked_at: check.checkedAt,
        status: check.status,
        response_time_ms: check.responseTimeMs,
        details: toJson(check.details),
        error_message: check.errorMessage,
      })
      .execute();
  }
}
