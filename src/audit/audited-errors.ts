/** Errors already written to the audit log, so an outer layer does not record the same failure twice. */
const audited = new WeakSet<object>();

export function markAudited(error: unknown): void {
  if (typeof error === 'object' && error !== null) audited.add(error);
}

export function wasAudited(error: unknown): boolean {
  return typeof error === 'object' && error !== null && audited.has(error);
}

/** Wraps the error of an audit entry that could not be written for a request denied before it had a caller. */
export class DeniedAuditError extends Error {
  constructor(readonly auditError: unknown) {
    super('The audit entry of a denied request could not be written.');
    this.name = 'DeniedAuditError';
  }
}
