import type { RotationRecord } from './history.repository.js';

/** Converts a rotation history record to the snake_case form of GET /rotation/history and `aegis rotation history --json`. */
export function historyEntryView(entry: RotationRecord) {
  return {
    id: entry.id,
    credential_name: entry.credentialName,
    rotated_at: entry.rotatedAt,
    previous_version: entry.previousVersion,
    new_version: entry.newVersion,
    trigger: entry.trigger,
    duration_ms: entry.durationMs,
    success: entry.success,
    error_message: entry.errorMessage,
    rolled_back: entry.rolledBack,
    rollback_at: entry.rollbackAt,
    actor: entry.actor,
    reason: entry.reason,
    attempts: entry.attempts,
  };
}
