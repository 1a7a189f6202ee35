import type { FastifyInstance } from 'fastify';
import { requireCaller } from '../http/auth.js';
import { dateTime, errorResponses, plainTextPattern } from '../http/shared-schemas.js';
import type { Db } from '../db/database.js';
import { ValidationError } from '../lib/errors.js';
import type { AuditLog } from './audit.service.js';
import { AuditAction, type AuditEntry } from './audit.types.js';
import { recordVerification, verifyAuditChain } from './verify.js';

const entrySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    seq: { type: 'integer' },
    timestamp: dateTime,
    credential_id: { type: ['string', 'null'] },
    credential_name: { type: 'string' },
    action: { type: 'string' },
    actor: { type: 'string' },
    target: { type: ['string', 'null'] },
    details: { type: 'object', additionalProperties: true },
    ip_address: { type: ['string', 'null'] },
    success: { type: 'boolean' },
    error_message: { type: ['string', 'null'] },
    prev_hash: { type: 'string' },
    entry_hash: { type: 'string' },
  },
} as const;

interface LogQuery {
  credential_name?: string;
  action?: string;
  actor?: string;
  start_date?: string;
  end_date?: string;
  success?: boolean;
  limit: number;
  offset: number;
}

export function entryView(entry: AuditEntry) {
  return {
    id: entry.id,
    seq: entry.seq,
    timestamp: entry.timestamp,
    credential_id: entry.credentialId,
    credential_name: entry.credentialName,
    action: entry.action,
    actor: entry.actor,
    target: entry.target,
    details: entry.details,
    ip_address: entry.ipAddress,
    success: entry.success,
    error_message: entry.errorMessage,
    prev_hash: entry.prevHash,
    entry_hash: entry.entryHash,
  };
}

/** `GET /audit/log` with the request's filters, and `GET /audit/verify`, which checks the hash chain. */
export function registerAuditRoutes(app: FastifyInstance, deps: { audit: AuditLog; db: Db }): void {
  const text = { type: 'string', minLength: 1, maxLength: 128, pattern: plainTextPattern } as const;
  app.get<{ Querystring: LogQuery }>(
    '/audit/log',
    {
      config: { scope: 'audit:read', action: AuditAction.auditRead },
      schema: {
        tags: ['audit'],
        summary: 'Audit entries, newest first, filtered',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            credential_name: text,
            action: text,
            actor: text,
            start_date: dateTime,
            end_date: dateTime,
            success: { type: 'boolean' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0 },
          },
        },
        response: {
          200: { type: 'object', properties: { log: { type: 'array', items: entrySchema }, total: { type: 'integer' } } },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const caller = requireCaller(request);
      const query = request.query;
      const startDate = query.start_date ? new Date(query.start_date).toISOString() : undefined;
      const endDate = query.end_date ? new Date(query.end_date).toISOString() : undefined;
      if (startDate && endDate && startDate > endDate) throw new ValidationError('start_date', 'must not be after end_date');
      const result = await deps.audit.query({
        credentialName: query.credential_name,
        action: query.action,
        actor: query.actor,
        startDate,
        endDate,
        success: query.success,
        limit: query.limit,
        offset: query.offset,
      });
      await deps.audit.record({
        credentialName: query.credential_name ?? '*',
        action: AuditAction.auditRead,
        actor: caller.actor,
        ipAddress: caller.ipAddress,
        success: true,
        details: { returned: result.entries.length, total: result.total },
      });
      return { log: result.entries.map(entryView), total: result.total };
    },
  );

  app.get(
    '/audit/verify',
    {
      config: { scope: 'audit:read', action: AuditAction.auditRead },
      schema: {
        tags: ['audit'],
        summary: 'Check the audit hash chain and name the first entry that fails',
        response: {
          200: {
            type: 'object',
            properties: {
              ok: { type: 'boolean' },
              checked: { type: 'integer' },
              head_seq: { type: 'integer' },
              problem: {
                type: ['object', 'null'],
                properties: { seq: { type: 'integer' }, id: { type: ['string', 'null'] }, reason: { type: 'string' }, message: { type: 'string' } },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const caller = requireCaller(request);
      const report = await verifyAuditChain(deps.db.kysely);
      const auditError = await recordVerification(deps.audit, caller, report);
      if (auditError) request.log.error({ err: auditError, problem: report.problem }, 'failed to record an audit chain check that found a problem');
      return { ok: report.ok, checked: report.checked, head_seq: report.headSeq, problem: report.problem };
    },
  );
}
