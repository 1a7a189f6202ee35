/** What a caller records: one access to AEGIS, allowed, denied or failed. */
export interface AuditEntryInput {
  /**
   * The entry's id (a UUIDv7), when the caller chose it before recording so that it can find the entry
   * after a crash. Otherwise the log assigns one. The id is the primary key, so the log rejects a second
   * entry with the same id.
   */
  entryId?: string;
  credentialId?: string | null;
  /** The credential the call was about, or `*` for calls about no single credential (lists, tokens, keys). */
  credentialName: string;
  action: string;
  /** The token's actor; never a name the client supplied. */
  actor: string;
  target?: string | null;
  details?: Record<string, unknown>;
  ipAddress?: string | null;
  success: boolean;
  errorMessage?: string | null;
}

/** A stored audit entry, with its place in the hash chain. */
export interface AuditEntry {
  id: string;
  seq: number;
  timestamp: string;
  credentialId: string | null;
  credentialName: string;
  action: string;
  actor: string;
  target: string | null;
  details: Record<string, unknown>;
  ipAddress: string | null;
  success: boolean;
  errorMessage: string | null;
  prevHash: string;
  entryHash: string;
}

/**
 * An entry as read back from the database. When the stored details are not a JSON object, which only
 * a row changed in the database has, `details` is that text, and verification names the entry.
 */
export interface StoredAuditEntry extends Omit<AuditEntry, 'details'> {
  details: Record<string, unknown> | string;
}

/** The hash before the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** Actions, as stored in `aegis_audit_log.action`. */
export const AuditAction = {
  authenticate: 'authenticate',
  listed: 'listed',
  read: 'read',
  created: 'created',
  updated: 'updated',
  retired: 'retired',
  versionsRead: 'versions_read',
  revealed: 'revealed',
  auditRead: 'audit_read',
  tokenCreated: 'token_created',
  tokenRevoked: 'token_revoked',
  tokensListed: 'tokens_listed',
  keyRotationStarted: 'key_rotation_started',
  keyRotated: 'key_rotated',
  keysBackedUp: 'keys_backed_up',
  keysRestored: 'keys_restored',
  databaseBackedUp: 'database_backed_up',
  imported: 'imported',
  auditPruned: 'audit_pruned',
  auditExported: 'audit_exported',
  auditReported: 'audit_reported',
} as const;
