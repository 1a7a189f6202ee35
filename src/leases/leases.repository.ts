import crypto from 'node:crypto';
import os from 'node:os';
import { sql, type Transaction } from 'kysely';
import type { Db, Executor } from '../db/database.js';
import type { Database } from '../db/schema.js';
import { toNumber } from '../db/values.js';
import { processIsGone } from '../lib/process.js';

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
export async function acquireLease(db: Executor, name: string, owner: string, ttlMs: number, now: Date): Promise<Lease | null> {
  const at = now.toISOString();
  const expiresAt = new Date(now.getTime() + ttlMs).toISOString();
  // A released lease's row is deleted, so a new row starts at the time in milliseconds rather than 1: a
  // holder that stalled past a release never finds its old token again, even within its own process.
  const inserted = await db
    .insertInto('aegis_leases')
    .values({ name, owner, fencing_token: now.getTime(), acquired_at: at, expires_at: expiresAt, heartbeat_at: at })
    .onConflict((conflict) => conflict.column('name').doNothing())
    .returning(['fencing_token'])
    .executeTakeFirst();
  if (inserted) return { name, owner, fencingToken: toNumber(inserted.fencing_token), expiresAt };

  const takenOver = await db
    .updateTable('aegis_leases')
    .set({ owner, fencing_token: sql`fencing_token + 1`, acquired_at: at, expires_at: expiresAt, heartbeat_at: at })
    .where('name', '=', name)
    .where('expires_at', '<', at)
    .returning(['fencing_token'])
    .executeTakeFirst();
  return takenOver ? { name, owner, fencingToken: toNumber(takenOver.fencing_token), expiresAt } : null;
}

/**
 * Takes a lease over from `holder` before it expires, because the caller knows that holder is gone (see
 * `ownerProcessIsGone`). Compares owner and fencing token in the update, so a lease that changed hands
 * meanwhile stays with its new holder and this returns null.
 */
export async function takeOverLease(db: Executor, holder: Lease, owner: string, ttlMs: number, now: Date): Promise<Lease | null> {
  const at = now.toISOString();
  const expiresAt = new Date(now.getTime() + ttlMs).toISOString();
  const takenOver = await db
    .updateTable('aegis_leases')
    .set({ owner, fencing_token: sql`fencing_token + 1`, acquired_at: at, expires_at: expiresAt, heartbeat_at: at })
    .where('name', '=', holder.name)
    .where('owner', '=', holder.owner)
    .where('fencing_token', '=', holder.fencingToken)
    .returning(['fencing_token'])
    .executeTakeFirst();
  return takenOver ? { name: holder.name, owner, fencingToken: toNumber(takenOver.fencing_token), expiresAt } : null;
}

/** Reads the current holder of a lease, or undefined when the lease is free. */
export async function findLease(db: Executor, name: string): Promise<Lease | undefined> {
  const row = await db.selectFrom('aegis_leases').select(['name', 'owner', 'fencing_token', 'expires_at']).where('name', '=', name).executeTakeFirst();
  return row ? leaseFromRow(row) : undefined;
}

/**
 * Reads the current holder of a lease inside a transaction. On PostgreSQL its row stays locked until the
 * commit, so the holder can neither commit under the lease nor release it meanwhile. A free lease has
 * no row to lock, so another process may still take it, which `acquireLease` then finds.
 */
export async function findLeaseForChange(trx: Transaction<Database>, dialect: Db['dialect'], name: string): Promise<Lease | undefined> {
  let query = trx.selectFrom('aegis_leases').select(['name', 'owner', 'fencing_token', 'expires_at']).where('name', '=', name);
  if (dialect === 'postgres') query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? leaseFromRow(row) : undefined;
}

function leaseFromRow(row: { name: string; owner: string; fencing_token: string | number | bigint; expires_at: string | Date }): Lease {
  return { name: row.name, owner: row.owner, fencingToken: toNumber(row.fencing_token), expiresAt: new Date(row.expires_at).toISOString() };
}

/** Builds a lease owner name that is unique per process: host name, process id and a random suffix. */
export function processOwner(): string {
  return `${os.hostname()}:${process.pid}:${crypto.randomBytes(3).toString('hex')}`;
}

/**
 * Tells whether a lease owner named by `processOwner` was a process on this host that no longer runs,
 * so its leases can be taken over at once instead of after they expire (a crashed server restarting).
 * Owners on other hosts, and names in another form, count as alive: only their expiry frees their leases.
 * NOTE: two containers that share a database and a host name but not a process namespace can see each
 * other's live process ids as gone. The fencing token then keeps the earlier holder from committing.
 */
export function ownerProcessIsGone(owner: string): boolean {
  const match = /^(.+):(\d+):[0-9a-f]+$/.exec(owner);
  if (!match || match[1] !== os.hostname()) return false;
  const pid = Number(match[2]);
  return pid !== process.pid && processIsGone(pid);
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
