import { sql } from 'kysely';
import type { Keyring } from '../crypto/keyring.js';
import { currentMasterKeyId } from '../crypto/master-keys.repository.js';
import type { Db } from '../db/database.js';
import { toNumber } from '../db/values.js';
import type { Clock } from '../lib/clock.js';
import { AegisError, ValidationError } from '../lib/errors.js';
import { appendEntries, missingHeadError, readChainPage } from './audit.repository.js';
import { MIN_AUDIT_RETENTION_DAYS } from './audit-settings.js';
import { AuditAction, GENESIS_HASH } from './audit.types.js';
import { insertCheckpoint, listCheckpoints, signCheckpoint } from './checkpoints.js';
import { checkEntry, type ChainAnchor } from './verify.js';

export interface PruneSettings {
  /** Entries younger than this many days are kept (AEGIS_AUDIT_RETENTION_DAYS). */
  retentionDays: number;
  /** Removes entries older than this instant instead; it must lie at least `retentionDays` in the past. */
  before?: Date;
  /** The actor recorded in the audit entry the prune writes; `system` for the scheduler. */
  actor?: string;
  /** Entries removed per transaction; each transaction writes its own checkpoint. */
  batchSize?: number;
}

export interface PruneResult {
  /** Entries older than this instant were removed. */
  cutoff: string;
  removed: number;
  /** The removed range, or null when nothing was old enough. */
  firstSeq: number | null;
  lastSeq: number | null;
  checkpoints: number;
}

const dayMs = 86_400_000;

/**
 * Removes the oldest audit entries, those older than the retention period (or `settings.before`), and
 * leaves a signed checkpoint per batch so the remaining chain still verifies. Only a prefix of the chain
 * is removed: the first entry at or after the cutoff and everything after it stay, even if a later
 * entry has an older timestamp. Before removing a batch, its entries are verified against the previous
 * checkpoint, and a batch that fails is not removed, so pruning never erases the evidence of tampering.
 */
export async function pruneAudit(db: Db, keyring: Keyring, clock: Clock, settings: PruneSettings): Promise<PruneResult> {
  const retentionDays = Math.max(settings.retentionDays, MIN_AUDIT_RETENTION_DAYS);
  const latestAllowed = new Date(clock.now().getTime() - retentionDays * dayMs);
  const cutoff = settings.before ?? latestAllowed;
  if (cutoff.getTime() > latestAllowed.getTime()) {
    throw new ValidationError(
      'before',
      `must be on or before ${latestAllowed.toISOString()}, because audit entries are kept for ${retentionDays} days (AEGIS_AUDIT_RETENTION_DAYS); got ${cutoff.toISOString()}.`,
    );
  }

  const batchSize = settings.batchSize ?? 50_000;
  const result: PruneResult = { cutoff: cutoff.toISOString(), removed: 0, firstSeq: null, lastSeq: null, checkpoints: 0 };
  for (;;) {
    const batch = await pruneBatch(db, keyring, clock, cutoff.toISOString(), batchSize, settings.actor ?? 'system');
    if (!batch) break;
    result.removed += batch.removed;
    result.firstSeq ??= batch.firstSeq;
    result.lastSeq = batch.lastSeq;
    result.checkpoints += 1;
    if (batch.removed < batchSize) break;
  }
  return result;
}

async function pruneBatch(
  db: Db,
  keyring: Keyring,
  clock: Clock,
  cutoff: string,
  batchSize: number,
  actor: string,
): Promise<{ firstSeq: number; lastSeq: number; removed: number } | null> {
  return db.kysely.transaction().execute(async (trx) => {
    // Lock the head as appends do, so no entry is written while the range is chosen and removed.
    let headQuery = trx.selectFrom('aegis_audit_head').select(['seq', 'entry_hash']).where('id', '=', 1);
    if (db.dialect === 'postgres') headQuery = headQuery.forUpdate();
    const head = await headQuery.executeTakeFirstOrThrow(missingHeadError);
    const headSeq = toNumber(head.seq);

    const previous = (await listCheckpoints(trx)).at(-1);
    const firstSeq = (previous?.seq ?? 0) + 1;
    const kept = await trx
      .selectFrom('aegis_audit_log')
      .select(sql<string | number | null>`min(seq)`.as('seq'))
      .where('timestamp', '>=', cutoff)
      .executeTakeFirst();
    const firstKept = kept?.seq === null || kept?.seq === undefined ? headSeq + 1 : toNumber(kept.seq);
    const lastSeq = Math.min(firstKept - 1, firstSeq + batchSize - 1, headSeq);
    if (lastSeq < firstSeq) return null;

    const anchor = previous ? { seq: previous.seq, id: null, entryHash: previous.entryHash } : { seq: 0, id: null, entryHash: GENESIS_HASH };
    const last = await verifyRange(trx, anchor, lastSeq, cutoff);

    await trx.deleteFrom('aegis_audit_log').where('seq', '>=', firstSeq).where('seq', '<=', lastSeq).execute();
    const now = clock.now().toISOString();
    const checkpoint = await signCheckpoint(
      keyring,
      {
        seq: lastSeq,
        entryHash: last.entryHash,
        firstSeq,
        removedCount: lastSeq - firstSeq + 1,
        prunedBefore: cutoff,
        createdAt: now,
        keyId: await currentMasterKeyId(trx),
      },
      trx,
    );
    await insertCheckpoint(trx, checkpoint);
    await appendEntries(
      trx,
      db.dialect,
      [
        {
          credentialName: '*',
          action: AuditAction.auditPruned,
          actor,
          target: 'chain',
          success: true,
          details: { first_seq: firstSeq, last_seq: lastSeq, removed: checkpoint.removedCount, pruned_before: cutoff, key_id: checkpoint.keyId },
        },
      ],
      now,
    );
    return { firstSeq, lastSeq, removed: checkpoint.removedCount };
  });
}

/**
 * Verifies the entries after `anchor` up to `lastSeq` and returns the last one. Throws when one fails
 * verification or is not older than `cutoff`. The range was chosen by comparing the stored text, so each
 * entry's parsed timestamp is checked too, and no entry inside the retention period is removed.
 */
async function verifyRange(trx: Parameters<typeof readChainPage>[0], anchor: ChainAnchor, lastSeq: number, cutoff: string): Promise<ChainAnchor> {
  let previous = anchor;
  const pageSize = 2_000;
  while (previous.seq < lastSeq) {
    const page = await readChainPage(trx, previous.seq, lastSeq, pageSize);
    if (page.length === 0) break;
    for (const entry of page) {
      const problem = checkEntry(entry, previous);
      if (problem) {
        throw new AegisError(409, 'audit_chain_invalid', `Pruning stopped and removed nothing, because the entries to remove fail verification: ${problem.message} Run \`aegis audit verify\`.`);
      }
      const time = Date.parse(entry.timestamp);
      if (Number.isNaN(time) || time >= Date.parse(cutoff)) {
        throw new AegisError(
          409,
          'audit_chain_invalid',
          `Pruning stopped and removed nothing, because entry ${entry.seq} (${entry.id}) has the timestamp ${JSON.stringify(entry.timestamp)}, which is not before the cutoff ${cutoff}. Run \`aegis audit verify\`.`,
        );
      }
      previous = entry;
    }
  }
  if (previous.seq !== lastSeq) {
    throw new AegisError(409, 'audit_chain_invalid', `Pruning stopped and removed nothing, because entry ${previous.seq + 1} is missing. Run \`aegis audit verify\`.`);
  }
  return previous;
}
