import { toJson } from '../db/values.js';
import type { AuditEntry } from './audit.types.js';

/** Returns an entry as the columns of `aegis_audit_log` store it, under their names. */
export function auditRow(entry: AuditEntry) {
  return {
    id: entry.id,
    seq: entry.seq,
    timestamp: entry.timestamp,
    credential_id: entry.credentialId,
    credential_name: entry.credentialName,
    action: entry.action,
    actor: entry.actor,
    target: entry.target,
    details: toJson(entry.details),
    ip_address: entry.ipAddress,
    success: entry.success,
    error_message: entry.errorMessage,
    prev_hash: entry.prevHash,
    entry_hash: entry.entryHash,
  };
}
