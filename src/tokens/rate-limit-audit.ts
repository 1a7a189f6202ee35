import type { AuditLog } from '../audit/audit.service.js';
import { AuditAction, type AuditEntryInput } from '../audit/audit.types.js';
import type { BlockedRequests } from './auth-failures.js';

/** The error message of the audit entries about 429 responses. */
export const RATE_LIMITED_MESSAGE = 'rate_limited: too many failed authentications';

/** Builds the audit entry that stands for the 429s of a window after its first one. */
export function blockedRequestsEntry(blocked: BlockedRequests): AuditEntryInput {
  return {
    credentialName: '*',
    action: AuditAction.authenticate,
    actor: 'anonymous',
    target: null,
    ipAddress: blocked.address,
    success: false,
    errorMessage: RATE_LIMITED_MESSAGE,
    details: {
      rejected_requests: blocked.count,
      first_rejected_at: blocked.firstAt.toISOString(),
      last_rejected_at: blocked.lastAt.toISOString(),
      blocked_until: blocked.blockedUntil.toISOString(),
      network: blocked.network,
    },
  };
}

/**
 * Returns the limiter's `onBlockEnded`, which appends `blockedRequestsEntry` without waiting for it,
 * because the requests it counts already got their 429 responses.
 * NOTE: when the append fails, the count is only in the error log line, not in the audit log.
 */
export function recordBlockedRequests(
  audit: Pick<AuditLog, 'record'>,
  log: { error(fields: Record<string, unknown>, message: string): void },
): (blocked: BlockedRequests) => void {
  return (blocked) => {
    const entry = blockedRequestsEntry(blocked);
    audit.record(entry).catch((error: unknown) => {
      const err = error instanceof Error ? { type: error.name, message: error.message } : { type: typeof error };
      log.error({ err, ip: entry.ipAddress, ...entry.details }, 'failed to write the audit entry of rate-limited requests');
    });
  };
}
