import type { AuditLog } from '../audit/audit.service.js';
import { markAudited } from '../audit/audited-errors.js';
import type { Executor } from '../db/database.js';
import { AegisError, ForbiddenError, NotFoundError } from '../lib/errors.js';
import { callerReaches, type Caller } from '../tokens/caller.js';
import type { Credential } from './credential.types.js';
import { findCredentialByName } from './credentials.repository.js';

/** Loads a credential by name for a caller: 404 when it does not exist, 403 when the token's limits exclude it. */
export async function loadReachableCredential(db: Executor, caller: Caller, name: string): Promise<Credential> {
  const credential = await findCredentialByName(db, name);
  if (!credential) throw new NotFoundError(`Credential "${name}" not found. List credentials with GET /credentials.`, 'credential_not_found');
  if (!callerReaches(caller, credential)) {
    throw new ForbiddenError(`This token is limited to other names or tags and cannot reach credential "${name}".`);
  }
  return credential;
}

/**
 * Runs a call and, when it fails, writes the failure to the audit log (with the credential's id when
 * it exists) before passing the error on. `mapError` may turn a driver error into a clearer one first.
 * `failureEntry` adds the target and details a successful call's entry would have.
 */
export async function runAudited<T>(
  deps: { audit: AuditLog; db: Executor },
  caller: Caller,
  action: string,
  name: string,
  run: () => Promise<T>,
  mapError: (error: unknown) => unknown = (error) => error,
  failureEntry: { target?: string; details?: Record<string, unknown> } = {},
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const failure = mapError(error);
    const credential = name === '*' ? undefined : await findCredentialByName(deps.db, name).catch(() => undefined);
    await deps.audit.record({
      credentialId: credential?.id ?? null,
      credentialName: name,
      action,
      actor: caller.actor,
      ...failureEntry,
      ipAddress: caller.ipAddress,
      success: false,
      errorMessage: failure instanceof AegisError ? `${failure.code}: ${failure.message}` : 'internal error',
    });
    markAudited(failure);
    throw failure;
  }
}
