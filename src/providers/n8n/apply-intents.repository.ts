import type { Executor } from '../../db/database.js';
import { toIso } from '../../db/values.js';

/**
 * An n8n apply as written to `aegis_apply_intents` before AEGIS contacts n8n. It contains what the apply's
 * audit entry needs, so recovery can write that entry when the process stopped before it did.
 */
export interface ApplyIntent {
  /** The id the apply's audit entry gets (a UUIDv7). */
  auditEntryId: string;
  credentialId: string;
  credentialName: string;
  /** The key of the node's `credentials` entry that the apply sets: the credential's n8n type. */
  credentialType: string;
  n8nCredentialId: string;
  workflowId: string;
  nodeName: string;
  requestedBy: string | null;
  actor: string;
  ipAddress: string | null;
  /** The process running the apply, as `processOwner` names it. */
  owner: string;
  startedAt: string;
}

export async function insertApplyIntent(db: Executor, intent: ApplyIntent): Promise<void> {
  await db
    .insertInto('aegis_apply_intents')
    .values({
      audit_entry_id: intent.auditEntryId,
      credential_id: intent.credentialId,
      credential_name: intent.credentialName,
      credential_type: intent.credentialType,
      n8n_credential_id: intent.n8nCredentialId,
      workflow_id: intent.workflowId,
      node_name: intent.nodeName,
      requested_by: intent.requestedBy,
      actor: intent.actor,
      ip_address: intent.ipAddress,
      owner: intent.owner,
      started_at: intent.startedAt,
    })
    .execute();
}

/** Deletes an intent. Returns false when it was already gone, deleted by another recovery for example. */
export async function deleteApplyIntent(db: Executor, auditEntryId: string): Promise<boolean> {
  const result = await db.deleteFrom('aegis_apply_intents').where('audit_entry_id', '=', auditEntryId).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Lists every intent, oldest first. The table contains only the applies under way and those a stopped process left. */
export async function listApplyIntents(db: Executor): Promise<ApplyIntent[]> {
  const rows = await db.selectFrom('aegis_apply_intents').selectAll().orderBy('started_at').orderBy('audit_entry_id').execute();
  return rows.map((row) => ({
    auditEntryId: row.audit_entry_id,
    credentialId: row.credential_id,
    credentialName: row.credential_name,
    credentialType: row.credential_type,
    n8nCredentialId: row.n8n_credential_id,
    workflowId: row.workflow_id,
    nodeName: row.node_name,
    requestedBy: row.requested_by,
    actor: row.actor,
    ipAddress: row.ip_address,
    owner: row.owner,
    startedAt: toIso(row.started_at),
  }));
}

/** Tells whether the audit log has an entry with this id. */
export async function auditEntryExists(db: Executor, entryId: string): Promise<boolean> {
  const row = await db.selectFrom('aegis_audit_log').select('id').where('id', '=', entryId).executeTakeFirst();
  return row !== undefined;
}
