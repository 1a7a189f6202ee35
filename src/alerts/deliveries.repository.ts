import { sql } from 'kysely';
import type { DialectName, Executor } from '../db/database.js';
import { fromJson, toIso } from '../db/values.js';
import { alertReachCondition } from './alert-reach.js';
import type { OutgoingAlert } from './sinks/index.js';

export type DeliveryState = 'pending' | 'delivered' | 'dead';

/** A pending delivery of one alert to one sink whose next attempt is due. */
export interface DueDelivery {
  alert: OutgoingAlert;
  sink: string;
  /** Failed attempts so far. */
  attempts: number;
  /** The stored `next_attempt_at`, exactly as read, so a SQLite claim can compare it. */
  storedNextAttemptAt: Date | string;
}

/**
 * Creates a pending delivery row, due at once, for each sink that has none yet for a pending alert.
 * Alerts already delivered or dead get no rows for a sink added later.
 */
export async function createMissingDeliveries(db: Executor, sinks: ReadonlyArray<string>): Promise<void> {
  for (const sink of sinks) {
    const missing = db
      .selectFrom('aegis_alert_outbox as o')
      // The alert's creation time is the first due time: it lies in the past and has the column's type on both dialects.
      .select(['o.id', sql<string>`cast(${sink} as text)`.as('sink'), 'o.created_at'])
      .where('o.state', '=', 'pending')
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('aegis_alert_deliveries as d').select('d.alert_id').whereRef('d.alert_id', '=', 'o.id').where('d.sink', '=', sink))),
      );
    await db
      .insertInto('aegis_alert_deliveries')
      .columns(['alert_id', 'sink', 'next_attempt_at'])
      .expression(missing)
      .onConflict((conflict) => conflict.columns(['alert_id', 'sink']).doNothing())
      .execute();
  }
}

/** Selects the oldest due delivery among the sinks; on PostgreSQL it locks the row and skips rows other transactions hold. */
export async function selectDueDelivery(db: Executor, dialect: DialectName, sinks: ReadonlyArray<string>, now: string): Promise<DueDelivery | undefined> {
  let query = db
    .selectFrom('aegis_alert_deliveries as d')
    .innerJoin('aegis_alert_outbox as o', 'o.id', 'd.alert_id')
    .select([
      'd.sink',
      'd.attempts',
      'd.next_attempt_at',
      'o.id',
      'o.alert_type',
      'o.credential_name',
      'o.message',
      'o.priority',
      'o.channel',
      'o.details',
      'o.created_at',
    ])
    .where('d.state', '=', 'pending')
    .where('d.next_attempt_at', '<=', now)
    .where('d.sink', 'in', sinks)
    .orderBy('d.next_attempt_at')
    .orderBy('o.created_at')
    .limit(1);
  if (dialect === 'postgres') query = query.forUpdate('d').skipLocked();
  const row = await query.executeTakeFirst();
  if (!row) return undefined;
  return {
    sink: row.sink,
    attempts: row.attempts,
    storedNextAttemptAt: row.next_attempt_at,
    alert: {
      id: row.id,
      alertType: row.alert_type,
      credentialName: row.credential_name,
      message: row.message,
      priority: row.priority,
      channel: row.channel,
      details: fromJson<Record<string, unknown>>(row.details),
      createdAt: toIso(row.created_at),
    },
  };
}

/**
 * Moves a pending delivery's next attempt to `until` if no other process changed the row since it was
 * read; returns whether this caller has reserved it. SQLite has no row locks, so this compare-and-set is
 * how concurrent runs on one file avoid sending the same alert at once.
 */
export async function reserveDelivery(db: Executor, delivery: DueDelivery, until: string): Promise<boolean> {
  const result = await db
    .updateTable('aegis_alert_deliveries')
    .set({ next_attempt_at: until })
    .where('alert_id', '=', delivery.alert.id)
    .where('sink', '=', delivery.sink)
    .where('state', '=', 'pending')
    .where('next_attempt_at', '=', delivery.storedNextAttemptAt as string)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** The outcome of one attempt: delivered, or failed with the time of the next attempt or with the delivery given up. */
export type AttemptOutcome =
  | { kind: 'delivered' }
  | { kind: 'retry'; error: string; nextAttemptAt: string }
  | { kind: 'dead'; error: string };

export async function recordAttempt(db: Executor, delivery: DueDelivery, outcome: AttemptOutcome, now: string): Promise<void> {
  const key = db
    .updateTable('aegis_alert_deliveries')
    .where('alert_id', '=', delivery.alert.id)
    .where('sink', '=', delivery.sink)
    .where('state', '=', 'pending');
  const attempts = delivery.attempts + 1;
  switch (outcome.kind) {
    // A finished delivery's next attempt is the time it finished, not a SQLite reservation left in the future.
    case 'delivered':
      await key.set({ state: 'delivered', attempts, delivered_at: now, next_attempt_at: now, last_error: null }).execute();
      return;
    case 'retry':
      await key.set({ attempts, next_attempt_at: outcome.nextAttemptAt, last_error: outcome.error }).execute();
      return;
    case 'dead':
      await key.set({ state: 'dead', attempts, next_attempt_at: now, last_error: outcome.error }).execute();
  }
}

/**
 * Sets the outbox row's state from its configured sinks' deliveries: `delivered` once every sink has it,
 * `dead` once every sink is done and one gave up. On PostgreSQL the outbox row is locked first, so two
 * transactions that finish the last two sinks of one alert cannot each miss the other's row.
 * NOTE: this runs only after an attempt, so an alert that waited only on a sink since removed from the
 * settings stays `pending` in the outbox, although every configured sink has it.
 */
export async function settleAlert(db: Executor, dialect: DialectName, alertId: string, sinks: ReadonlyArray<string>, now: string): Promise<void> {
  if (dialect === 'postgres') {
    await db.selectFrom('aegis_alert_outbox').select('id').where('id', '=', alertId).forUpdate().execute();
  }
  const rows = await db
    .selectFrom('aegis_alert_deliveries')
    .select(['state', 'last_error'])
    .where('alert_id', '=', alertId)
    .where('sink', 'in', sinks)
    .execute();
  if (rows.length < sinks.length || rows.some((row) => row.state === 'pending')) return;
  const dead = rows.find((row) => row.state === 'dead');
  await db
    .updateTable('aegis_alert_outbox')
    .set(dead ? { state: 'dead', last_error: dead.last_error } : { state: 'delivered', delivered_at: now, last_error: null })
    .where('id', '=', alertId)
    .where('state', '=', 'pending')
    .execute();
}

export async function countPendingDeliveries(db: Executor, sinks: ReadonlyArray<string>): Promise<number> {
  if (sinks.length === 0) return 0;
  const row = await db
    .selectFrom('aegis_alert_deliveries')
    .select((eb) => eb.fn.countAll<string | number>().as('count'))
    .where('state', '=', 'pending')
    .where('sink', 'in', sinks)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export interface AlertFilter {
  alertType?: string | undefined;
  credentialName?: string | undefined;
  state?: DeliveryState | undefined;
  /** Name and tag limits of the token: when either list is not empty, only alerts about credentials it reaches are listed. */
  reach?: { namePatterns: string[]; tags: string[] } | undefined;
  limit: number;
  offset: number;
}

export interface DeliveryRecord {
  sink: string;
  state: string;
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
  deliveredAt: string | null;
}

export interface AlertRecord {
  id: string;
  alertType: string;
  credentialName: string;
  message: string;
  priority: string;
  channel: string;
  details: Record<string, unknown>;
  createdAt: string;
  state: string;
  deliveredAt: string | null;
  deliveries: DeliveryRecord[];
}

/** Lists alerts newest first, each with its delivery to every sink that has a row for it. */
export async function listAlerts(db: Executor, dialect: DialectName, filter: AlertFilter): Promise<{ alerts: AlertRecord[]; total: number }> {
  let base = db.selectFrom('aegis_alert_outbox');
  if (filter.alertType !== undefined) base = base.where('alert_type', '=', filter.alertType);
  if (filter.credentialName !== undefined) base = base.where('credential_name', '=', filter.credentialName);
  if (filter.state !== undefined) base = base.where('state', '=', filter.state);
  const reach = filter.reach === undefined ? undefined : alertReachCondition(dialect, filter.reach);
  if (reach !== undefined) base = base.where(reach);

  const counted = await base.select((eb) => eb.fn.countAll<string | number>().as('count')).executeTakeFirstOrThrow();
  // Both keys descend, so the (created_at, id) indexes return a page in order when read backwards.
  const rows = await base.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(filter.limit).offset(filter.offset).execute();

  const deliveries = new Map<string, DeliveryRecord[]>();
  if (rows.length > 0) {
    const deliveryRows = await db
      .selectFrom('aegis_alert_deliveries')
      .selectAll()
      .where(
        'alert_id',
        'in',
        rows.map((row) => row.id),
      )
      .orderBy('sink')
      .execute();
    for (const row of deliveryRows) {
      const list = deliveries.get(row.alert_id) ?? [];
      list.push({
        sink: row.sink,
        state: row.state,
        attempts: row.attempts,
        nextAttemptAt: toIso(row.next_attempt_at),
        lastError: row.last_error,
        deliveredAt: toIso(row.delivered_at),
      });
      deliveries.set(row.alert_id, list);
    }
  }

  return {
    total: Number(counted.count),
    alerts: rows.map((row) => ({
      id: row.id,
      alertType: row.alert_type,
      credentialName: row.credential_name,
      message: row.message,
      priority: row.priority,
      channel: row.channel,
      details: fromJson<Record<string, unknown>>(row.details),
      createdAt: toIso(row.created_at),
      state: row.state,
      deliveredAt: toIso(row.delivered_at),
      deliveries: deliveries.get(row.id) ?? [],
    })),
  };
}
