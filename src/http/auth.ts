import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditLog } from '../audit/audit.service.js';
import { DeniedAuditError, markAudited } from '../audit/audited-errors.js';
import { AuditAction } from '../audit/audit.types.js';
import { ForbiddenError, RateLimitedError, UnauthorizedError } from '../lib/errors.js';
import { isValidCredentialName } from '../lib/names.js';
import { escapeControls } from '../lib/text.js';
import type { AuthFailureLimiter } from '../tokens/auth-failures.js';
import { RATE_LIMITED_MESSAGE } from '../tokens/rate-limit-audit.js';
import type { Caller } from '../tokens/caller.js';
import { hasScope, type Scope } from '../tokens/scopes.js';
import type { TokenService } from '../tokens/tokens.service.js';
import { requestLabel } from './problem.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a token needs for this route; `null` for public routes. */
    scope?: Scope | null;
    /** The audit action this route records, also for its failures. */
    action?: string;
  }
  interface FastifyRequest {
    caller: Caller | null;
  }
}

export function requireCaller(request: FastifyRequest): Caller {
  if (!request.caller) throw new UnauthorizedError('This route needs a token.');
  return request.caller;
}

/** Maximum characters of a rejected credential name that an audit entry keeps. */
const maxRequestedNameLength = 128;

/**
 * Returns the credential name to record for a request, with details to add. The authentication hook
 * and the error handler run before or without the route's schema check, so a name that fails the
 * credential name pattern is recorded as `*`. The requested text then goes to `details.requested_name`,
 * JSON-escaped and cut to 128 characters, so a client cannot store control characters in the name column.
 */
export function auditedCredentialName(request: FastifyRequest): { credentialName: string; details?: Record<string, unknown> } {
  const name = (request.params as { name?: unknown } | undefined)?.name;
  if (typeof name !== 'string') return { credentialName: '*' };
  if (isValidCredentialName(name)) return { credentialName: name };
  return { credentialName: '*', details: { requested_name: escapeControls(JSON.stringify(name.slice(0, maxRequestedNameLength))) } };
}

/**
 * How often the limiter's ended windows are flushed, so that the 429 count of a blocked address is
 * written soon after its window ends, also when no further request arrives.
 */
const windowFlushIntervalMs = 10_000;

/**
 * Authenticates every route that declares a scope, before its body is read: a missing or bad token is
 * 401, a token without the scope 403, and an address with too many failures 429. Each 401 and 403 is
 * written to the audit log with the address and what was attempted. The 429s of one window get two
 * entries at most: the first one's, and one with the count of the rest when the window ends.
 */
export function registerAuthentication(
  app: FastifyInstance,
  deps: { tokens: TokenService; audit: AuditLog; limiter: AuthFailureLimiter },
): void {
  app.decorateRequest('caller', null);
  const flushTimer = setInterval(() => deps.limiter.flushEndedWindows(), windowFlushIntervalMs);
  flushTimer.unref();
  app.addHook('onClose', async () => clearInterval(flushTimer));
  app.addHook('onRequest', async (request) => {
    const { scope, action } = request.routeOptions.config;
    if (!scope) return;
    const address = request.ip;
    const deny = async (error: Error, actor: string, reason: string, attempted: string, details?: Record<string, unknown>) => {
      const named = auditedCredentialName(request);
      try {
        await deps.audit.record({
          ...named,
          details: { ...named.details, ...details },
          action: attempted,
          actor,
          target: requestLabel(request),
          ipAddress: address,
          success: false,
          errorMessage: reason,
        });
      } catch (auditError) {
        // The error handler responds with 503, as for any request whose audit entry could not be written.
        throw new DeniedAuditError(auditError);
      }
      markAudited(error);
      throw error;
    };

    /** Rejects the request with 429 while the address is blocked, and returns otherwise. */
    const rejectIfBlocked = async () => {
      const blockedFor = deps.limiter.blockedFor(address);
      if (blockedFor <= 0) return;
      const error = new RateLimitedError(`Too many failed authentications from ${address}; try again in ${blockedFor} seconds.`, blockedFor);
      const rejection = deps.limiter.countRejection(address);
      // Only the window's first 429 gets an entry here. The limiter counts the rest, and one entry with
      // their count is written when the window ends, so a flood cannot grow the audit log per request.
      if (!rejection.first) throw error;
      await deny(error, 'anonymous', RATE_LIMITED_MESSAGE, AuditAction.authenticate, {
        rejected_requests: 1,
        blocked_until: rejection.blockedUntil.toISOString(),
      });
    };

    await rejectIfBlocked();

    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      deps.limiter.recordFailure(address);
      await deny(
        new UnauthorizedError(
          header ? 'The Authorization header must be "Bearer <token>".' : 'Missing token. Send it as "Authorization: Bearer <token>".',
        ),
        'anonymous',
        'unauthorized: missing token',
        AuditAction.authenticate,
      );
      return;
    }
    let caller: Caller;
    try {
      caller = await deps.tokens.authenticate(match[1]!, address);
    } catch (error) {
      if (!(error instanceof UnauthorizedError)) throw error;
      // Requests sent at once all pass the first check before any of their lookups fails. Those that
      // fail after the address got blocked are 429s as well, so they add no entry each. The check and
      // the count run without a pause between them, so concurrent failures cannot all pass the check.
      if (deps.limiter.blockedFor(address) > 0) await rejectIfBlocked();
      deps.limiter.recordFailure(address);
      await deny(error, 'anonymous', 'unauthorized: invalid or expired token', AuditAction.authenticate);
      return;
    }
    if (!hasScope(caller.scopes, scope)) {
      await deny(
        new ForbiddenError(`This token lacks the scope ${scope}. Ask an admin for a token with it.`),
        caller.actor,
        `forbidden: missing scope ${scope}`,
        action ?? AuditAction.authenticate,
      );
    }
    request.caller = caller;
  });
}
