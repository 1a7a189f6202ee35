import type { Executor } from '../db/database.js';
import { KeyUnavailableError, type Keyring } from '../crypto/keyring.js';
import { findHead, readChainPage, readLastEntry } from './audit.repository.js';
import type { AuditLog } from './audit.service.js';
import { entryHash, isCanonicalTimestamp } from './chain.js';
import { checkpointSignatureValid, listCheckpoints, type AuditCheckpoint } from './checkpoints.js';
import { AuditAction, GENESIS_HASH, type StoredAuditEntry } from './audit.types.js';

export interface ChainProblem {
  /**
   * Sequence number of the first entry that does not verify. For a removed tail it is the first missing
   * one, for a checkpoint its last pruned entry, and for a removed head row the last entry stored (0 if none).
   */
  seq: number;
  /** Id of that entry, when it still exists. */
  id: string | null;
  reason: 'changed' | 'inserted_or_reordered' | 'missing_before' | 'missing_tail' | 'inserted_after_head' | 'checkpoint_invalid' | 'head_missing';
  message: string;
}

/** The entries removed by pruning, as the signed checkpoints record them. */
export interface PrunedRange {
  firstSeq: number;
  lastSeq: number;
  checkpoints: number;
  /** When the newest checkpoint was written. */
  lastPrunedAt: string;
}

export interface ChainReport {
  ok: boolean;
  checked: number;
  /** Null when the head row is missing. */
  headSeq: number | null;
  /** Null when nothing was ever pruned. */
  pruned: PrunedRange | null;
  problem: ChainProblem | null;
}

/** The point the walk links the next entry to: the genesis hash, a checkpoint or the last entry walked. */
export interface ChainAnchor {
  seq: number;
  id: string | null;
  entryHash: string;
}

/**
 * Walks the audit chain from the newest checkpoint (or the genesis hash when nothing was pruned) up to
 * the head row read at the start, and stops at the first entry that does not verify. It finds a changed
 * entry (its hash no longer matches), an inserted or reordered one (its link to the previous hash is
 * broken) and one whose predecessor was removed (a gap). It also finds a removed tail (the chain ends
 * before the head) and an entry stored beyond the head.
 *
 * Every checkpoint's signature is checked first with the master key it names, and the checkpoints must
 * cover one unbroken range from entry 1, so a changed, removed or forged checkpoint fails the check.
 *
 * Entries appended while the walk runs lie beyond the head it read, so a live vault verifies cleanly.
 * NOTE: the chain is not keyed. Someone who rewrites every entry after the newest checkpoint, and the head
 * row too, produces a chain that verifies, so only the entries up to that checkpoint stay proven.
 */
export async function verifyAuditChain(db: Executor, keyring: Keyring, pageSize = 2_000): Promise<ChainReport> {
  const head = await findHead(db);
  // Without the head row, the entries are walked up to the last one stored, then the report fails.
  const throughSeq = head?.seq ?? (await readLastEntry(db))?.seq ?? 0;
  const checkpoints = await listCheckpoints(db);
  const pruned = prunedRange(checkpoints);
  const fail = (checked: number, problem: ChainProblem): ChainReport => ({ ok: false, checked, headSeq: head?.seq ?? null, pruned, problem });

  const checkpointProblem = await checkCheckpoints(db, keyring, checkpoints, throughSeq);
  if (checkpointProblem) return fail(0, checkpointProblem);

  const newest = checkpoints.at(-1);
  let previous: ChainAnchor = newest ? { seq: newest.seq, id: null, entryHash: newest.entryHash } : { seq: 0, id: null, entryHash: GENESIS_HASH };
  const [leftBehind] = newest ? await readChainPage(db, 0, newest.seq, 1) : [];
  if (leftBehind) {
    return fail(0, {
      seq: leftBehind.seq,
      id: leftBehind.id,
      reason: 'inserted_or_reordered',
      message: `Entry ${leftBehind.seq} (${leftBehind.id}) lies within the pruned range that ends at entry ${newest!.seq}: it was inserted after the prune.`,
    });
  }

  let checked = 0;
  for (;;) {
    const page = await readChainPage(db, previous.seq, throughSeq, pageSize);
    for (const entry of page) {
      const problem = checkEntry(entry, previous);
      if (problem) return fail(checked, problem);
      previous = entry;
      checked += 1;
    }
    if (page.length < pageSize) break;
  }

  if (!head) {
    return fail(checked, {
      seq: previous.seq,
      id: previous.id,
      reason: 'head_missing',
      message: `The chain head row (aegis_audit_head) is missing, so entries removed from the end of the chain cannot be detected, and no entry can be appended. The entries up to ${previous.seq}, the last one stored, verify. Restore the row from a backup, or compare the last entry with an export and write its seq and entry_hash back.`,
    });
  }

  const tailProblem = checkTail(previous, head);
  if (tailProblem) return fail(checked, tailProblem);

  const beyondProblem = await checkBeyondHead(db);
  if (beyondProblem) return fail(checked, beyondProblem);

  return { ok: true, checked, headSeq: head.seq, pruned, problem: null };
}

/** The pruned range in the API's field names, as GET /audit/verify and `aegis audit verify --json` print it. */
export function prunedView(pruned: PrunedRange | null) {
  return pruned ? { first_seq: pruned.firstSeq, last_seq: pruned.lastSeq, checkpoints: pruned.checkpoints, last_pruned_at: pruned.lastPrunedAt } : null;
}

function prunedRange(checkpoints: AuditCheckpoint[]): PrunedRange | null {
  const [oldest] = checkpoints;
  const newest = checkpoints.at(-1);
  if (!oldest || !newest) return null;
  return { firstSeq: oldest.firstSeq, lastSeq: newest.seq, checkpoints: checkpoints.length, lastPrunedAt: newest.createdAt };
}

/** Checks each checkpoint's signature and that together they cover entries 1 to the newest one's without a gap. */
async function checkCheckpoints(db: Executor, keyring: Keyring, checkpoints: AuditCheckpoint[], headSeq: number): Promise<ChainProblem | null> {
  let coveredSeq = 0;
  for (const checkpoint of checkpoints) {
    const invalid = (message: string): ChainProblem => ({ seq: checkpoint.seq, id: null, reason: 'checkpoint_invalid', message });
    let valid: boolean;
    try {
      valid = await checkpointSignatureValid(keyring, checkpoint, db);
    } catch (error) {
      if (!(error instanceof KeyUnavailableError)) throw error;
      return invalid(
        `The checkpoint for entries ${checkpoint.firstSeq} to ${checkpoint.seq} was signed with master key ${checkpoint.keyId}, which the keyring does not hold; add that key to check it.`,
      );
    }
    if (!valid) {
      return invalid(`The checkpoint for entries ${checkpoint.firstSeq} to ${checkpoint.seq} was changed after it was written: its signature does not verify.`);
    }
    if (checkpoint.firstSeq !== coveredSeq + 1 || checkpoint.seq < checkpoint.firstSeq) {
      return invalid(
        `The checkpoint for entries ${checkpoint.firstSeq} to ${checkpoint.seq} does not follow the previous one, which ends at entry ${coveredSeq}: a checkpoint was removed.`,
      );
    }
    if (checkpoint.seq > headSeq) {
      return invalid(`The checkpoint for entries ${checkpoint.firstSeq} to ${checkpoint.seq} lies beyond the head, which records ${headSeq}.`);
    }
    coveredSeq = checkpoint.seq;
  }
  return null;
}

/** Checks one entry against the anchor before it: its sequence number, its link, the form of its timestamp and its own hash. */
export function checkEntry(entry: StoredAuditEntry, previous: ChainAnchor): ChainProblem | null {
  const { entryHash: stored, ...rest } = entry;
  const previousSeq = previous.seq;
  const previousHash = previous.entryHash;
  if (entry.seq !== previousSeq + 1) {
    const removed = entry.seq - previousSeq - 1;
    const missing = removed === 1 ? `entry ${previousSeq + 1} was removed` : `entries ${previousSeq + 1} to ${entry.seq - 1} were removed`;
    return {
      seq: entry.seq,
      id: entry.id,
      reason: 'missing_before',
      message: `Entry ${entry.seq} (${entry.id}) follows entry ${previousSeq}: ${missing}.`,
    };
  }
  if (entry.prevHash !== previousHash) {
    return {
      seq: entry.seq,
      id: entry.id,
      reason: 'inserted_or_reordered',
      message: `Entry ${entry.seq} (${entry.id}) does not link to entry ${previousSeq}: an entry was inserted, reordered or replaced here.`,
    };
  }
  if (!isCanonicalTimestamp(entry.timestamp)) {
    return {
      seq: entry.seq,
      id: entry.id,
      reason: 'changed',
      message: `Entry ${entry.seq} (${entry.id}) was changed after it was written: its timestamp ${JSON.stringify(entry.timestamp)} is not in the form AEGIS writes (YYYY-MM-DDTHH:MM:SS.sssZ).`,
    };
  }
  if (entryHash(rest) !== stored) {
    return {
      seq: entry.seq,
      id: entry.id,
      reason: 'changed',
      message: `Entry ${entry.seq} (${entry.id}) was changed after it was written: its contents no longer match its hash.`,
    };
  }
  return null;
}

/** Compares the last entry walked with the head row, which every append updates in the same transaction. */
function checkTail(last: ChainAnchor, head: { seq: number; entryHash: string }): ChainProblem | null {
  const lastSeq = last.seq;
  if (lastSeq < head.seq) {
    return {
      seq: lastSeq + 1,
      id: null,
      reason: 'missing_tail',
      message:
        lastSeq + 1 === head.seq
          ? `Entry ${head.seq} is missing: the chain ends at entry ${lastSeq} but the head records ${head.seq}.`
          : `Entries ${lastSeq + 1} to ${head.seq} are missing: the chain ends at entry ${lastSeq} but the head records ${head.seq}.`,
    };
  }
  if (last.entryHash !== head.entryHash) {
    return {
      seq: last.seq,
      id: last.id,
      reason: 'changed',
      message: `Entry ${last.seq}${last.id ? ` (${last.id})` : ''} does not match the hash the head records for it: the entry was replaced or the head row was changed.`,
    };
  }
  return null;
}

/**
 * Finds an entry with a sequence number above the head's. Every append writes its entries and moves the
 * head in one transaction, so once an entry is visible, a head read after it covers it. That is why the
 * last entry is read before the head: an entry still above the head was not written by an append.
 */
async function checkBeyondHead(db: Executor): Promise<ChainProblem | null> {
  const last = await readLastEntry(db);
  if (!last) return null;
  const head = await findHead(db);
  // A head row removed during the walk is reported by the next run.
  if (!head || last.seq <= head.seq) return null;
  const [first] = await readChainPage(db, head.seq, last.seq, 1);
  const entry = first ?? last;
  return {
    seq: entry.seq,
    id: entry.id,
    reason: 'inserted_after_head',
    message: `Entry ${entry.seq} (${entry.id}) lies beyond the head, which records ${head.seq}: it was inserted without going through the audit log.`,
  };
}

/**
 * Records a verification run in the audit log. Tampering can also make appends fail (a forged row may
 * take the next sequence number), so when the check failed, a failed write is returned for the caller
 * to report beside the result. When the check passed, the write error is raised, as for any access.
 */
export async function recordVerification(
  audit: AuditLog,
  caller: { actor: string; ipAddress: string | null },
  report: ChainReport,
): Promise<Error | null> {
  try {
    await audit.record({
      credentialName: '*',
      action: AuditAction.auditRead,
      actor: caller.actor,
      ipAddress: caller.ipAddress,
      target: 'chain',
      success: true,
      details: {
        verified: report.ok,
        checked: report.checked,
        problem_seq: report.problem?.seq ?? null,
        pruned_through_seq: report.pruned?.lastSeq ?? null,
      },
    });
    return null;
  } catch (error) {
    if (report.ok || !(error instanceof Error)) throw error;
    return error;
  }
}
