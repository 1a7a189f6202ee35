import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RouteOptions } from 'fastify';
import { registerAlertRoutes } from '../alerts/alerts.routes.js';
import { DeniedAuditError, wasAudited } from '../audit/audited-errors.js';
import { registerAuditRoutes } from '../audit/audit.routes.js';
import { registerHealthMonitorRoutes } from '../health/health.routes.js';
import { AegisError } from '../lib/errors.js';
import { registerN8nRoutes } from '../providers/n8n/n8n.routes.js';
import { registerCredentialRoutes } from '../registry/credentials.routes.js';
import { registerSupabaseRotationGuard } from '../providers/supabase/rotation-guard.js';
import { registerRotationRoutes } from '../rotation/rotation.routes.js';
import { registerSchedulerRoutes } from '../scheduler/scheduler.routes.js';
import { TemplateService } from '../templates/templates.service.js';
import { registerTemplateRoutes } from '../templates/templates.routes.js';
import { registerTokenRoutes } from '../tokens/tokens.routes.js';
import type { Vault } from '../vault.js';
import { registerDashboardRoutes } from '../web/dashboard.routes.js';
import { registerMetricsRoutes } from '../metrics/metrics.routes.js';
import { auditedCredentialName, registerAuthentication } from './auth.js';
import { API_CSP, registerSecurityHeaders, securityHeaders } from './security-headers.js';
import { AEGIS_VERSION, registerHealthRoute } from './health.routes.js';
import { auditFailureProblem, problem, requestLabel, sendProblem, toProblem } from './problem.js';
import { serializerCompiler } from './serialization.js';
import { validatorCompiler } from './validation.js';
import { rejectUnexpectedBodies } from './no-body.js';
import { trackAllowedMethods } from './allowed-methods.js';
import { checkQueryParameters } from './query-check.js';
import { parseJsonBodies } from './json-body.js';
import { clientErrorHandler } from './client-errors.js';

/**
 * Maximum time a client may take to send a whole request, headers and body. Fastify's default of 0
 * turns Node's limit off, so a client that sent its headers and then stalled the body kept its
 * connection open for good. Node checks every 30 s, so such a client gets 408 between 30 and 60 s
 * after it started. 30 s still lets a client send the largest body (512 KiB by default) at 18 KB/s.
 */
export const REQUEST_TIMEOUT_MS = 30_000;

export interface BuildAppOptions {
  /** Called with the options of each route as Fastify registers it; tests use it to list every route. */
  onRoute?: (route: RouteOptions) => void;
  /** Certificate chain and key (PEM); when given, the server speaks HTTPS. */
  https?: { cert: Buffer; key: Buffer };
}

/** Builds the HTTP API on an open vault. The caller listens, or calls `inject` in tests. */
export async function buildApp(vault: Vault, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const routerOptions = { maxParamLength: 256 };
  const app = Fastify({
    loggerInstance: vault.log as FastifyBaseLogger,
    // The onResponse hook below writes one line per request instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: vault.config.bodyLimitBytes,
    requestTimeout: REQUEST_TIMEOUT_MS,
    // request.ip, which the failed-authentication limit and the audit log use, follows X-Forwarded-For
    // only through these proxies. With none, it is the socket's peer address.
    trustProxy: vault.config.trustedProxies.length > 0 ? [...vault.config.trustedProxies] : false,
    // Large integers and prototype keys in JSON bodies are rejected rather than silently reshaped.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    routerOptions,
    // Errors Fastify raises before routing (a malformed percent-encoding in the path) get a problem body too.
    // Hooks do not run for these, so the security headers are set here.
    frameworkErrors: (error, _request, reply) => {
      reply.headers({ ...securityHeaders(vault.config), 'content-security-policy': API_CSP });
      // The router's message repeats the whole path, which can be long here.
      const detail = error.message.includes('max param length')
        ? `A path segment is longer than ${routerOptions.maxParamLength} characters; credential names have at most 128.`
        : `${error.message}. Percent-encode each path segment as UTF-8.`;
      void sendProblem(reply, problem(400, 'invalid_url', detail, { field: 'path' }));
    },
    clientErrorHandler: clientErrorHandler({ ...securityHeaders(vault.config), 'content-security-policy': API_CSP }),
    // Fastify types an HTTPS instance apart from an HTTP one; callers use only what both have.
    ...((options.https ? { https: options.https } : {}) as object),
  });
  // Node's limit for the headers alone (60 s by default) may not exceed the limit for the whole request.
  app.server.headersTimeout = REQUEST_TIMEOUT_MS;
  if (options.onRoute) app.addHook('onRoute', options.onRoute);
  rejectUnexpectedBodies(app);
  checkQueryParameters(app);
  const allowedMethods = trackAllowedMethods(app, routerOptions);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // Every body is JSON. Fastify also parses text/plain by default, which a browser may send across
  // origins without a preflight, so it is removed and such a body gets 415.
  app.removeContentTypeParser('text/plain');
  parseJsonBodies(app);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'AEGIS credential vault', version: AEGIS_VERSION, description: 'Credentials by name for automation platforms and AI agents.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  registerAuthentication(app, { tokens: vault.tokens, audit: vault.audit, limiter: vault.authFailures });

  registerSecurityHeaders(app, vault.config);

  // One log line per request: ids and outcome, never bodies or headers. The line's fields are fixed and
  // hold no secret, so it skips the logger's redaction, which tripled the cost of a line.
  const requestLog = vault.log.child({}, { redact: { paths: [] } });
  app.addHook('onResponse', (request, reply, done) => {
    requestLog.info(
      {
        reqId: request.id,
        method: request.method,
        route: request.routeOptions.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        actor: request.caller?.actor,
        ip: request.ip,
      },
      'request',
    );
    done();
  });

  app.setErrorHandler(async (error, request, reply) => {
    if (error instanceof DeniedAuditError) {
      request.log.error({ err: describeError(error.auditError) }, 'failed to write the audit entry of a denied request');
      return sendProblem(reply, auditFailureProblem(error.auditError));
    }
    const body = toProblem(error);
    // A 5xx that AEGIS raised on purpose (a provider that failed, n8n not configured) logs as a
    // warning. Anything else, an unreachable database included, logs as an error. An unreachable
    // database fails every request the same way, so its lines leave out the stack.
    if (body.status >= 500) {
      const expected = error instanceof AegisError && body.status !== 500;
      const err = body.code === 'database_unavailable' ? { ...describeError(error), stack: undefined } : describeError(error);
      request.log[expected ? 'warn' : 'error']({ err, route: requestLabel(request) }, 'request failed');
    }
    const caller = request.caller;
    if (caller && !wasAudited(error)) {
      // Failures the services did not record themselves (validation, unknown token ids, ...).
      try {
        await vault.audit.record({
          ...auditedCredentialName(request),
          action: request.routeOptions.config.action ?? 'unknown',
          actor: caller.actor,
          target: requestLabel(request),
          ipAddress: caller.ipAddress,
          success: false,
          errorMessage: `${body.code}: ${body.detail}`,
        });
      } catch (auditError) {
        request.log.error({ err: describeError(auditError) }, 'failed to write the audit entry of a failed request');
        return sendProblem(reply, auditFailureProblem(auditError));
      }
    }
    return sendProblem(reply, body);
  });

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = allowedMethods(path);
    if (allowed.length > 0) {
      void reply.header('allow', allowed.join(', '));
      return sendProblem(reply, problem(405, 'method_not_allowed', `${request.method} is not allowed on ${path}; it takes ${allowed.join(', ')}. The API is described at /openapi.json.`));
    }
    const trailingSlash = path.length > 1 && path.endsWith('/') && allowedMethods(path.slice(0, -1)).length > 0;
    const slashHint = trailingSlash ? ' Remove the trailing /.' : /^\/credentials\/[^/]+\/[^/]+/.test(path) ? ' Encode a / inside a credential name as %2F.' : '';
    return sendProblem(reply, problem(404, 'route_not_found', `No route ${request.method} ${path}.${slashHint} The API is described at /openapi.json.`));
  });

  app.get('/openapi.json', { config: { scope: null }, schema: { hide: true } }, async () => app.swagger());

  registerHealthRoute(app, { db: vault.db, clock: vault.clock });
  registerCredentialRoutes(app, vault.registry);
  registerTokenRoutes(app, vault.tokens);
  registerAuditRoutes(app, vault);
  registerSupabaseRotationGuard(app, vault.db.kysely);
  registerRotationRoutes(app, vault.rotation);
  registerTemplateRoutes(app, new TemplateService({ db: vault.db, clock: vault.clock, log: vault.log, audit: vault.audit, registry: vault.registry }));
  registerHealthMonitorRoutes(app, vault.health);
  registerSchedulerRoutes(app, { scheduler: vault.scheduler, audit: vault.audit });
  registerAlertRoutes(app, { alerts: vault.alerts, audit: vault.audit });
  registerN8nRoutes(app, vault.n8n);
  registerDashboardRoutes(app);
  registerMetricsRoutes(app, vault);
  return app;
}

/** Keeps what helps an operator (class, code, message of our own errors) and drops upstream text that might carry a value. */
function describeError(error: unknown): Record<string, unknown> {
  if (error instanceof AegisError) return { type: error.name, code: error.code, message: error.message };
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { type: error.name, code, stack: error.stack?.split('\n').slice(0, 6).join('\n') };
  }
  return { type: typeof error };
}
