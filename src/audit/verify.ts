import type { Executor } from '../db/database.js';
import { readChainPage, readHead, readLastEntry } from './audit.repository.js';
import type { AuditLog } from './audit.service.js';
import { entryHash } from './chain.js';
import { AuditAction, GENESIS_HASH, type AuditEntry } from './audit.types.js';

export interface ChainProblem {
  /** Sequence number of the first entry that does not verify (for a removed tail, the first missing one). */
  seq: number;
  /** Id of that entry, when it still exists. */
  id: string | null;
  reason: 'changed' | 'inserted_or_reordered' | 'missing_before' | 'missing_tail' | 'inserted_after_head';
  message: string;
}

export interface ChainReport {
  ok: boolean;
  checked: number;
  headSeq: number;
  problem: ChainProblem | null;
}

/**
 * Walks the audit chain from the first entry up to the head row read at the start, and stops at the
 * first entry that does not verify. It finds a changed entry (its hash no longer matches), an inserted
 * or reordered one (its link to the previous hash is broken) and one whose predecessor was removed (a
 * gap). It also finds a removed tail (the chain ends before the head) and an entry stored beyond the head.
 *
 * Entries appended while the walk runs lie beyond the head it read, so a live vault verifies cleanly.
 * NOTE: the chain is not keyed, so someone who rewrites every entry from some point on and the head row
 * too produces a chain that verifies; only the entries before that point stay proven.
 */
export async function verifyAuditChain(db: Executor, pageSize = 2_000): Promise<ChainReport> {
  const head = await readHead(db);
  let previous: AuditEntry | null = null;
  let checked = 0;
  for (;;) {
    const page = await readChainPage(db, previous?.seq ?? 0, head.seq, pageSize);
    for (const entry of page) {
      const problem = checkEntry(entry, previous);
      if (problem) return { ok: false, checked, headSeq: head.seq, problem };
      previous = entry;
      checked += 1;
    }
    if (page.length < pageSize) break;
  }

  const tailProblem = checkTail(previous, head);
  if (tailProblem) return { ok: false, checked, headSeq: head.seq, problem: tailProblem };

  const beyondProblem = await checkBeyondHead(db);
  if (beyondProblem) return { ok: false, checked, headSeq: head.seq, problem: beyondProblem };

  return { ok: true, checked, headSeq: head.seq, problem: null };
}

function checkEntry(entry: AuditEntry, previous: AuditEntry | null): ChainProblem | null {
  const { entryHash: stored, ...rest } = entry;
  const previousSeq = previous?.seq ?? 0;
  const previousHash = previous?.entryHash ?? GENESIS_HASH;
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
function checkTail(last: AuditEntry | null, head: { seq: number; entryHash: string }): ChainProblem | null {
  const lastSeq = last?.seq ?? 0;
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
  if (last && last.entryHash !== head.entryHash) {
    return {
      seq: last.seq,
      id: last.id,
      reason: 'changed',
      message: `Entry ${last.seq} (${last.id}) does not match the hash the head records for it: the entry was replaced or the head row was changed.`,
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
  const head = await readHead(db);
  if (last.seq <= head.seq) return null;
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
      details: { verified: report.ok, checked: report.checked, problem_seq: report.problem?.seq ?? null },
    });
    return null;
  } catch (error) {
    if (report.ok || !(error instanceof Error)) throw error;
    return error;
  }
}
