import crypto from 'node:crypto';
import type { DialectName, Executor } from '../db/database.js';
import { toBool, toIso } from '../db/values.js';
import { reachCondition } from '../registry/credentials.repository.js';

/** What started a rotation. `expiry` is the on_expiry strategy; `rollback` and `recovery` are AEGIS's own. */
export type RotationTrigger = 'scheduled' | 'manual' | 'emergency' | 'expiry' | 'rollback' | 'recovery';

export interface RotationRecord {
  id: string;
  credentialId: string;
  credentialName: string;
  rotatedAt: string;
  previousVersion: number | null;
  newVersion: number | null;
  trigger: RotationTrigger;
  durationMs: number | null;
  success: boolean;
  errorMessage: string | null;
  rolledBack: boolean;
  rollbackAt: string | null;
  actor: string | null;
  reason: string | null;
  attempts: number;
}

export async function insertRotation(db: Executor, record: Omit<RotationRecord, 'id' | 'credentialName' | 'rolledBack' | 'rollbackAt'>): Promise<void> {
  await db
    .insertInto('aegis_rotation_history')
    .values({
      id: crypto.randomUUID(),
      credential_id: record.credentialId,
      rotated_at: record.rotatedAt,
      previous_version: record.previousVersion,
      new_version: record.newVersion,
      trigger: record.trigger,
      duration_ms: record.durationMs,
      success: record.success,
      error_message: record.errorMessage,
      rolled_back: false,
      actor: record.actor,
      reason: record.reason,
      attempts: record.attempts,
    })
    .execute();
}

/** Marks the successful rotations that made `version` current as rolled back. */
export async function markRolledBack(db: Executor, credentialId: string, version: number, at: string): Promise<void> {
  await db
    .updateTable('aegis_rotation_history')
    .set({ rolled_back: true, rollback_at: at })
    .where('credential_id', '=', credentialId)
    .where('new_version', '=', version)
    .where('success', '=', true)
    .where('rolled_back', '=', false)
    .execute();
}

export async function listRotations(
  db: Executor,
  dialect: DialectName,
  filter: { credentialName?: string | undefined; reach: { namePatterns: string[]; tags: string[] }; limit: number; offset: number },
): Promise<{ history: RotationRecord[]; total: number }> {
  let query = db.selectFrom('aegis_rotation_history as h').innerJoin('aegis_credentials as c', 'c.id', 'h.credential_id');
  if (filter.credentialName !== undefined) query = query.where('c.name', '=', filter.credentialName);
  const reach = reachCondition(dialect, filter.reach, 'c');
  if (reach !== undefined) query = query.where(reach);
  const rows = await query
    .selectAll('h')
    .select('c.name as credential_name')
    .orderBy('h.rotated_at', 'desc')
    .orderBy('h.id')
    .limit(filter.limit)
    .offset(filter.offset)
    .execute();
  const count = await query.select((eb) => eb.fn.countAll<string | number>().as('count')).executeTakeFirstOrThrow();
  return {
    total: Number(count.count),
    history: rows.map((row) => ({
      id: row.id,
      credentialId: row.credential_id,
      credentialName: row.credential_name,
      rotatedAt: toIso(row.rotated_at),
      previousVersion: row.previous_version,
      newVersion: row.new_version,
      trigger: row.trigger as RotationTrigger,
      durationMs: row.duration_ms,
      success: toBool(row.success),
      errorMessage: row.error_message,
      rolledBack: toBool(row.rolled_back),
      rollbackAt: toIso(row.rollback_at),
      actor: row.actor,
      reason: row.reason,
      attempts: row.attempts,
    })),
  };
}
