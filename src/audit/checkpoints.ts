import crypto from 'node:crypto';
import type { Executor } from '../db/database.js';
import { toIso, toNumber } from '../db/values.js';
import type { Keyring } from '../crypto/keyring.js';
import { canonicalJson } from '../lib/json.js';

/** A signed record of one prune: the entries `firstSeq` to `seq` were removed, and entry `seq` had hash `entryHash`. */
export interface AuditCheckpoint {
  seq: number;
  entryHash: string;
  firstSeq: number;
  removedCount: number;
  /** Entries older than this instant were eligible for removal. */
  prunedBefore: string;
  createdAt: string;
  /** The master key the signing key was derived from. */
  keyId: string;
  /** HMAC-SHA256 in hex over the other fields. */
  signature: string;
}

/** HKDF label of the checkpoint signing key; changing it invalidates every stored checkpoint. */
const signingKeyInfo = 'AEGIS audit checkpoint signing key v1';

/** Derives the checkpoint signing key from a master key with HKDF-SHA256, so the master key itself never signs. */
function signingKey(masterKey: Buffer): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', masterKey, Buffer.alloc(0), signingKeyInfo, 32));
}

function signedText(checkpoint: Omit<AuditCheckpoint, 'signature'>): string {
  return canonicalJson({
    version: 1,
    seq: checkpoint.seq,
    entry_hash: checkpoint.entryHash,
    first_seq: checkpoint.firstSeq,
    removed_count: checkpoint.removedCount,
    pruned_before: checkpoint.prunedBefore,
    created_at: checkpoint.createdAt,
    key_id: checkpoint.keyId,
  });
}

export async function signCheckpoint(keyring: Keyring, checkpoint: Omit<AuditCheckpoint, 'signature'>, db?: Executor): Promise<AuditCheckpoint> {
  const key = signingKey(await keyring.key(checkpoint.keyId, db));
  const signature = crypto.createHmac('sha256', key).update(signedText(checkpoint)).digest('hex');
  return { ...checkpoint, signature };
}

/** Tells whether a checkpoint's signature matches its fields; throws KeyUnavailableError when its master key is not held. */
export async function checkpointSignatureValid(keyring: Keyring, checkpoint: AuditCheckpoint, db?: Executor): Promise<boolean> {
  const expected = (await signCheckpoint(keyring, checkpoint, db)).signature;
  const given = Buffer.from(checkpoint.signature, 'hex');
  const wanted = Buffer.from(expected, 'hex');
  return given.length === wanted.length && crypto.timingSafeEqual(given, wanted);
}

export async function insertCheckpoint(db: Executor, checkpoint: AuditCheckpoint): Promise<void> {
  await db
    .insertInto('aegis_audit_checkpoints')
    .values({
      seq: checkpoint.seq,
      entry_hash: checkpoint.entryHash,
      first_seq: checkpoint.firstSeq,
      removed_count: checkpoint.removedCount,
      pruned_before: checkpoint.prunedBefore,
      created_at: checkpoint.createdAt,
      key_id: checkpoint.keyId,
      signature: checkpoint.signature,
    })
    .execute();
}

/** Lists every checkpoint, oldest first. There is one per prune batch, so the list stays short. */
export async function listCheckpoints(db: Executor): Promise<AuditCheckpoint[]> {
  const rows = await db.selectFrom('aegis_audit_checkpoints').selectAll().orderBy('seq').execute();
  return rows.map((row) => ({
    seq: toNumber(row.seq),
    entryHash: row.entry_hash,
    firstSeq: toNumber(row.first_seq),
    removedCount: toNumber(row.removed_count),
    prunedBefore: toIso(row.pruned_before),
    createdAt: toIso(row.created_at),
    keyId: row.key_id,
    signature: row.signature,
  }));
}
