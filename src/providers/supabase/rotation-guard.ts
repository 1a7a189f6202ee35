import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Executor } from '../../db/database.js';
import { ConflictError } from '../../lib/errors.js';
import { findCredentialByName } from '../../registry/credentials.repository.js';
import { callerReaches } from '../../tokens/caller.js';
import { supabaseRotationBlocker } from './supabase.adapter.js';

/**
 * Rejects `POST /credentials/:name/rotate` with 409 `rotation_unsupported` and the reason when the
 * credential is a Supabase key AEGIS cannot rotate (legacy JWT or publishable) and no value is supplied.
 * The engine rejects such a rotation too, but only with a message that does not say why.
 * NOTE: this covers the HTTP API only; the CLI and the scheduler get the engine's generic 409.
 */
export function registerSupabaseRotationGuard(app: FastifyInstance, db: Executor): void {
  // Every route passes through this hook, so the others leave it without a promise.
  app.addHook('preHandler', (request, _reply, done) => {
    if (request.routeOptions.url !== '/credentials/:name/rotate' || request.method !== 'POST') {
      done();
      return;
    }
    checkRotation(request).then(() => done(), done);
  });

  async function checkRotation(request: FastifyRequest): Promise<void> {
    const body = request.body as { value?: unknown } | null | undefined;
    if (body?.value !== undefined) return;
    const name = (request.params as { name?: string }).name;
    const caller = request.caller;
    if (name === undefined || !caller) return;
    const credential = await findCredentialByName(db, name);
    // Unknown or unreachable credentials are left to the engine, which answers 404 or 403.
    if (!credential || !callerReaches(caller, credential)) return;
    const reason = supabaseRotationBlocker(credential);
    if (reason !== null) throw new ConflictError('rotation_unsupported', reason, { key_type: credential.providerConfig.key_type });
  }
}
