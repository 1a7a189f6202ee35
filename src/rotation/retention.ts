import type { Executor } from '../db/database.js';
import { lockCredentials } from '../registry/credentials.repository.js';
import type { RotationDeps } from './rotation-deps.js';
import { rotationLeaseName } from './rotation.engine.js';

export interface RetentionResult {
  versionsRemoved: number;
  historyRemoved: number;
}

/**
 * Removes versions that are neither current nor the newest committed version before the current one
 * (the default rollback target) once they are older than `versionDays`, and rotation history older
 * than `historyDays`. The current version is never removed, and neither are the versions of a
 * credential that a rotation or rollback is changing.
 */
export async function applyRetention(deps: Pick<RotationDeps, 'db' | 'clock' | 'log'>, versionDays: number, historyDays: number): Promise<RetentionResult> {
  const now = deps.clock.now().getTime();
  const versionCutoff = new Date(now - versionDays * 86_400_000).toISOString();
  const historyCutoff = new Date(now - historyDays * 86_400_000).toISOString();
  return deps.db.kysely.transaction().execute(async (trx) => {
    const candidates = await trx
      .selectFrom('aegis_credential_versions')
      .select(['id', 'credential_id', 'version'])
      .where('is_current', '=', false)
      .where('created_at', '<', versionCutoff)
      .execute();
    const credentialIds = [...new Set(candidates.map((row) => row.credential_id))];
    // Each credential's row is locked before its versions, as every change takes them. A rollback
    // that holds the rotation lease has already read its target, so that credential is left alone.
    credentialIds.sort();
    for (let start = 0; start < credentialIds.length; start += 500) await lockCredentials(trx, deps.db.dialect, credentialIds.slice(start, start + 500));
    const busy = await credentialsUnderLease(trx, credentialIds, deps.clock.now());
    const keep = new Set(candidates.filter((row) => busy.has(row.credential_id)).map((row) => row.id));
    for (const credentialId of credentialIds) {
      if (busy.has(credentialId)) continue;
      const versions = await trx
        .selectFrom('aegis_credential_versions')
        .select(['id', 'version', 'is_current', 'state'])
        .where('credential_id', '=', credentialId)
        .orderBy('version', 'desc')
        .execute();
      const current = versions.find((row) => row.is_current === true || row.is_current === 1);
      const rollbackTarget = versions.find((row) => row.state === 'committed' && current !== undefined && row.version < current.version);
      if (rollbackTarget) keep.add(rollbackTarget.id);
    }
    const remove = candidates.filter((row) => !keep.has(row.id)).map((row) => row.id);
    for (let start = 0; start < remove.length; start += 500) {
      await trx.deleteFrom('aegis_credential_versions').where('id', 'in', remove.slice(start, start + 500)).where('is_current', '=', false).execute();
    }
    const history = await trx.deleteFrom('aegis_rotation_history').where('rotated_at', '<', historyCutoff).executeTakeFirst();
    const result = { versionsRemoved: remove.length, historyRemoved: Number(history.numDeletedRows) };
    if (result.versionsRemoved > 0 || result.historyRemoved > 0) deps.log.info(result, 'applied retention to versions and rotation history');
    return result;
  });
}

/** Returns the ids among `credentialIds` whose rotation lease is held and not yet expired at `now`. */
async function credentialsUnderLease(trx: Executor, credentialIds: ReadonlyArray<string>, now: Date): Promise<Set<string>> {
  const busy = new Set<string>();
  for (let start = 0; start < credentialIds.length; start += 500) {
    const names = credentialIds.slice(start, start + 500).map(rotationLeaseName);
    const leases = await trx.selectFrom('aegis_leases').select('name').where('name', 'in', names).where('expires_at', '>', now.toISOString()).execute();
    for (const lease of leases) busy.add(lease.name.slice(rotationLeaseName('').length));
  }
  return busy;
}
