import crypto from 'node:crypto';
import { canonicalJson } from '../lib/json.js';
import { uuid7 } from '../lib/uuid7.js';
import type { AuditEntry, AuditEntryInput, StoredAuditEntry } from './audit.types.js';

/**
 * Computes an entry's hash: SHA-256 over the canonical JSON of every stored field except the hash
 * itself, including the previous entry's hash. Adding, removing or renaming a field here invalidates
 * every stored chain, so such a change needs a chain format version.
 */
export function entryHash(entry: Omit<StoredAuditEntry, 'entryHash'>): string {
  return crypto.createHash('sha256').update(hashedJson(entry)).digest('hex');
}

/**
 * Writes `canonicalJson(hashedFields(entry))` without building and sorting the object: the keys below
 * are already in sorted order, and only `details` needs sorting. Every append hashes its entries, so
 * this runs once per audited request. An entry with a field that is not a string, number, boolean or
 * null takes the general path, which treats it as canonicalJson does.
 */
export function hashedJson(entry: Omit<StoredAuditEntry, 'entryHash'>): string {
  const { action, actor, credentialId, credentialName, details, errorMessage, id, ipAddress, prevHash, seq, success, target, timestamp } = entry;
  if (details === undefined || ![action, actor, credentialId, credentialName, errorMessage, id, ipAddress, prevHash, seq, success, target, timestamp].every(isScalar)) {
    return canonicalJson(hashedFields(entry));
  }
  const text = JSON.stringify;
  return (
    `{"action":${text(action)},"actor":${text(actor)},"credential_id":${text(credentialId)},"credential_name":${text(credentialName)},` +
    `"details":${canonicalJson(details)},"error_message":${text(errorMessage)},"id":${text(id)},"ip_address":${text(ipAddress)},` +
    `"prev_hash":${text(prevHash)},"seq":${text(seq)},"success":${text(success)},"target":${text(target)},"timestamp":${text(timestamp)}}`
  );
}

/**
 * Tells whether a timestamp is in the one form AEGIS writes (`Date.toISOString`: UTC, milliseconds, `Z`).
 * The date filters, reports and prunes compare the stored text, so the same instant in another form
 * (an offset, a six-digit year) sorts elsewhere and would move the entry out of those ranges.
 */
export function isCanonicalTimestamp(text: string): boolean {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(text) && !Number.isNaN(Date.parse(text)) && new Date(text).toISOString() === text;
}

/** Returns whether JSON writes the value the same alone as inside a sorted object, which is not so for undefined, a Date or an object. */
function isScalar(value: unknown): boolean {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/** Lists an entry's stored fields under their column names, all but `entry_hash`, which hashes them. */
export function hashedFields(entry: Omit<StoredAuditEntry, 'entryHash'>) {
  return {
    seq: entry.seq,
    id: entry.id,
    timestamp: entry.timestamp,
    credential_id: entry.credentialId,
    credential_name: entry.credentialName,
    action: entry.action,
    actor: entry.actor,
    target: entry.target,
    details: entry.details,
    ip_address: entry.ipAddress,
    success: entry.success,
    error_message: entry.errorMessage,
    prev_hash: entry.prevHash,
  };
}

/** Lists every stored field of an entry under its column name, as the API and exports show it. */
export function storedFields(entry: StoredAuditEntry) {
  return { ...hashedFields(entry), entry_hash: entry.entryHash };
}

/** The newest entry of the chain, as stored in `aegis_audit_head`. */
export interface ChainHead {
  seq: number;
  entryHash: string;
}

/**
 * Links entries into the chain after `head`, giving each its sequence number, id and hash. `ids`, when
 * given, contains one id per entry, chosen by the caller. Otherwise each entry gets its input's
 * `entryId`, or a new UUIDv7.
 */
export function chainEntries(
  head: ChainHead,
  inputs: ReadonlyArray<AuditEntryInput>,
  timestamp: string | ReadonlyArray<string>,
  ids?: ReadonlyArray<string>,
): AuditEntry[] {
  let seq = head.seq;
  let prevHash = head.entryHash;
  const entries: AuditEntry[] = [];
  for (const [index, input] of inputs.entries()) {
    seq += 1;
    const unhashed = {
      id: ids?.[index] ?? input.entryId ?? uuid7(),
      seq,
      timestamp: typeof timestamp === 'string' ? timestamp : timestamp[index]!,
      credentialId: input.credentialId ?? null,
      credentialName: input.credentialName,
      action: input.action,
      actor: input.actor,
      target: input.target ?? null,
      details: input.details ?? {},
      ipAddress: input.ipAddress ?? null,
      success: input.success,
      errorMessage: input.errorMessage ?? null,
      prevHash,
    };
    const entry = { ...unhashed, entryHash: entryHash(unhashed) };
    entries.push(entry);
    prevHash = entry.entryHash;
  }
  return entries;
}
