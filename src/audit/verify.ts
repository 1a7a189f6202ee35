import type { Executor } from '../db/database.js';
import { readChainPage, readHead } from './audit.repository.js';
import { entryHash } from './chain.js';
import { GENESIS_HASH } from './audit.types.js';

export interface ChainProblem {
  /** Sequence number of the first entry that does not verify (for a removed tail, the head's). */
  seq: number;
  /** Id of that entry, when it still exists. */
  id: string | null;
  reason: 'changed' | 'inserted_or_reordered' | 'missing_before' | 'missing_tail';
  message: string;
}

export interface ChainReport {
  ok: boolean;
  checked: number;
  headSeq: number;
  problem: ChainProblem | null;
}

/**
 * Walks the audit chain from the first entry and stops at the first entry that does not verify:
 * a changed entry (its hash no longer matches), an inserted or reordered one (its link to the previous
 * hash is broken or its number repeats), one whose predecessor was removed (a gap), or a removed tail
 * (the chain ends before the recorded head).
 */
export async function verifyAuditChain(db: Executor, pageSize = 2_000): Promise<ChainReport> {
  const head = await readHead(db);
  let previousSeq = 0;
  let previousHash = GENESIS_HASH;
  let checked = 0;
  for (;;) {
    const page = await readChainPage(db, previousSeq, pageSize);
    for (const entry of page) {
      const problem = checkEntry(entry, previousSeq, previousHash);
      if (problem) return { ok: false, checked, headSeq: head.seq, problem };
      previousSeq = entry.seq;
      previousHash = entry.entryHash;
      checked += 1;
    }
    if (page.length < pageSize) break;
  }
  if (previousSeq !== head.seq || previousHash !== head.entryHash) {
    const message =
      previousSeq < head.seq
        ? `Entries ${previousSeq + 1} to ${head.seq} are missing: the chain ends at ${previousSeq} but the head records ${head.seq}.`
        : `The chain ends at entry ${previousSeq} but the head records ${head.seq}; the head or the last entries were changed.`;
    return { ok: false, checked, headSeq: head.seq, problem: { seq: previousSeq + 1, id: null, reason: 'missing_tail', message } };
  }
  return { ok: true, checked, headSeq: head.seq, problem: null };
}

function checkEntry(
  entry: Awaited<ReturnType<typeof readChainPage>>[number],
  previousSeq: number,
  previousHash: string,
): ChainProblem | null {
  const { entryHash: stored, ...rest } = entry;
  if (entry.seq !== previousSeq + 1) {
    return {
      seq: entry.seq,
      id: entry.id,
      reason: 'missing_before',
      message: `Entry ${entry.seq} (${entry.id}) follows entry ${previousSeq}: ${entry.seq - previousSeq - 1} entries before it were removed.`,
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
