import crypto from 'node:crypto';
import type { Executor } from '../db/database.js';
import { toJson } from '../db/values.js';
import { ALERT_TYPES, type AlertType } from './alert-types.js';

export interface AlertInput {
  type: AlertType;
  /** Names the condition; a second alert with the same key is dropped, so each condition alerts once. */
  conditionKey: string;
  credentialId: string | null;
  credentialName: string;
  message: string;
  details?: Record<string, unknown>;
  /** Overrides the type's priority, e.g. `critical` for an emergency rotation. */
  priority?: string;
}

/**
 * Writes an alert to the outbox, inside the caller's transaction so it commits with the change that
 * caused it. Delivery to the sinks reads the outbox later. Returns false when the condition already alerted.
 */
export async function enqueueAlert(db: Executor, alert: AlertInput, now: Date): Promise<boolean> {
  const settings = ALERT_TYPES[alert.type];
  const result = await db
    .insertInto('aegis_alert_outbox')
    .values({
      id: crypto.randomUUID(),
      alert_type: alert.type,
      condition_key: alert.conditionKey,
      credential_id: alert.credentialId,
      credential_name: alert.credentialName,
      message: alert.message,
      priority: alert.priority ?? settings.priority,
      channel: settings.channel,
      details: toJson(alert.details ?? {}),
      created_at: now.toISOString(),
      state: 'pending',
      attempts: 0,
      next_attempt_at: now.toISOString(),
    })
    .onConflict((conflict) => conflict.column('condition_key').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}
