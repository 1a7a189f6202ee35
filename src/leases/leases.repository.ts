import { sql, type Transaction } from 'kysely';
import type { Db, Executor } from '../db/database.js';
import type { Database } from '../db/schema.js';
import { toNumber } from '../db/values.js';

/** A lease held by one process: exclusive use of a named resource until `expiresAt`. */
export interface Lease {
  name: string;
  owner: string;
  /** Grows by one with every new holder; a holder proves it still holds the lease with it. */
  fencingToken: number;
  expiresAt: string;
}

/**
 * Takes the lease when nobody holds it or the last holder's lease has expired; returns null while
 * another holder's lease runs. Safe under concurrency: the insert and the takeover are single
 * statements, so of two processes racing for one lease only one gets it.
 */
export async function acquireLease(db: Db, name: string, owner: string, ttlMs: number, now: Date): Promise<Lease | null> {
  const at = now.toISOString();
  const expiresAt = new Date(now.getTime() + ttlMs).toISOString();
  const inserted = await db.kysely
    .insertInto('aegis_leases')
    .values({ name, owner, fencing_token: 1, acquired_at: at, expires_at: expiresAt, heartbeat_at: at })
    .onConflict((conflict) => conflict.column('name').doNothing())
    .returning(['fencing_token'])
    .executeTakeFirst();
  if (inserted) return { name, owner, fencingToken: toNumber(inserted.fencing_token), expiresAt };

  const takenOver = await db.kysely
    .updateTable('aegis_leases')
    .set({ owner, fencing_token: sql`fencing_token + 1`, acquired_at: at, expires_at: expiresAt, heartbeat_at: at })
    .where('name', '=', name)
    .where('expires_at', '<', at)
    .returning(['fencing_token'])
    .executeTakeFirst();
  return takenOver ? { name, owner, fencingToken: toNumber(takenOver.fencing_token), expiresAt } : null;
}

/** Extends a lease this holder still has; false when it was taken over. */
export async function renewLease(db: Executor, lease: Lease, ttlMs: number, now: Date): Promise<boolean> {
  const result = await db
    .updateTable('aegis_leases')
    .set({ expires_at: new Date(now.getTime() + ttlMs).toISOString(), heartbeat_at: now.toISOString() })
    .where('name', '=', lease.name)
    .where('owner', '=', lease.owner)
    .where('fencing_token', '=', lease.fencingToken)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/**
 * Tells, inside the transaction that is about to commit, whether this holder still has the lease.
 * On PostgreSQL the row stays locked until the commit, so no takeover can slip in between.
 */
export async function stillHolds(trx: Transaction<Database>, dialect: Db['dialect'], lease: Lease): Promise<boolean> {
  let query = trx.selectFrom('aegis_leases').select(['owner', 'fencing_token']).where('name', '=', lease.name);
  if (dialect === 'postgres') query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row !== undefined && row.owner === lease.owner && toNumber(row.fencing_token) === lease.fencingToken;
}

/** Gives the lease up, unless another holder has taken it over meanwhile. */
export async function releaseLease(db: Executor, lease: Lease): Promise<void> {
  await db
    .deleteFrom('aegis_leases')
    .where('name', '=', lease.name)
    .where('owner', '=', lease.owner)
    .where('fencing_token', '=', lease.fencingToken)
    .execute();
}
