import { toJson } from '../db/values.js';
import { hashedFields } from './chain.js';
import type { AuditEntry } from './audit.types.js';

/** Returns an entry as the columns of `aegis_audit_log` store it, under their names. */
export function auditRow(entry: AuditEntry) {
  return { ...hashedFields(entry), details: toJson(entry.details), entry_hash: entry.entryHash };
}
