import type { AuditLog } from '../audit/audit.service.js';
import { markAudited } from '../audit/audited-errors.js';
import type { Executor } from '../db/database.js';
import { AegisError, ForbiddenError, NotFoundError } from '../lib/errors.js';
import { callerReaches, type Caller } from '../tokens/caller.js';
import type { Credential } from './credential.types.js';
import { findCredentialByName } from './credentials.repository.js';

/** Loads a credential by name for a caller, with the errors of `requireReachable`. */
export async function loadReachableCredential(db: Executor, caller: Caller, name: string): Promise<Credential> {
  return requireReachable(caller, name, await findCredentialByName(db, name));
}

/**
 * Returns the credential when it exists and the caller's token reaches it. A name the token's limits
 * exclude is a 403 whether or not a credential has it, so a limited token cannot tell from the status
 * which names exist. A missing name is a 404 only for a token that would reach it, judged as a
 * credential without tags.
 */
export function requireReachable(caller: Caller, name: string, credential: Credential | undefined): Credential {
  if (!callerReaches(caller, credential ?? { name, tags: [] })) {
    throw new ForbiddenError(`This token is limited to other names or tags and cannot reach credential "${name}".`);
  }
  if (!credential) throw new NotFoundError(`Credential "${name}" not found. List credentials with GET /credentials.`, 'credential_not_found');
  return credential;
}

/**
 * Runs a call and, when it fails, writes the failure to the audit log (with the credential's id when
 * it exists) before passing the error on. `mapError` may turn a driver error into a clearer one first.
 * `failureEntry` adds the target and details a successful call's entry would have, and the entry id
 * when the call chose one.
 */
export async function runAudited<T>(
  deps: { audit: AuditLog; db: Executor },
  caller: Caller,
  action: string,
  name: string,
  run: () => Promise<T>,
  mapError: (error: unknown) => unknown = (error) => error,
  failureEntry: { target?: string; details?: Record<string, unknown>; entryId?: string } = {},
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const failure = mapError(error);
    const credential = name === '*' ? undefined : await findCredentialByName(deps.db, name).catch(() => undefined);
    await deps.audit.record({
      // A limited token reads its own actor's entries, so the id of a credential it does not reach stays out.
      credentialId: credential !== undefined && callerReaches(caller, credential) ? credential.id : null,
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
