import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { requireCaller } from '../http/auth.js';
import { dateTime, errorResponses, plainTextPattern } from '../http/shared-schemas.js';
import type { AuditSettings } from './audit-settings.js';
import type { Db } from '../db/database.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Clock } from '../lib/clock.js';
import { ForbiddenError, ValidationError } from '../lib/errors.js';
import type { AuditLog } from './audit.service.js';
import { auditReach, auditReachCondition } from './audit-reach.js';
import { AuditAction, type StoredAuditEntry } from './audit.types.js';
import { storedFields } from './chain.js';
import { exportContentTypes, exportLines, type ExportFormat } from './export.js';
import { buildAuditReport } from './report.js';
import { prunedView, recordVerification, verifyAuditChain } from './verify.js';

export interface AuditRouteDeps {
  audit: AuditLog;
  db: Db;
  keyring: Keyring;
  clock: Clock;
  config: { audit: AuditSettings };
}

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
    // A string only for a row whose stored details are not a JSON object, which verification names as changed.
    details: { type: ['object', 'string'], additionalProperties: true },
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

/** Shows an entry with every stored field under its column name. */
export function entryView(entry: StoredAuditEntry) {
  return storedFields(entry);
}

/**
 * `GET /audit/log` with the request's filters, `GET /audit/verify`, which checks the hash chain,
 * `GET /audit/report` and `GET /audit/export`.
 */
export function registerAuditRoutes(app: FastifyInstance, deps: AuditRouteDeps): void {
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
      const { startDate, endDate } = readDateRange(query);
      const result = await deps.audit.query({
        credentialName: query.credential_name,
        action: query.action,
        actor: query.actor,
        startDate,
        endDate,
        success: query.success,
        reach: auditReach(deps.db.dialect, caller),
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
              head_seq: { type: ['integer', 'null'] },
              pruned: {
                type: ['object', 'null'],
                properties: { first_seq: { type: 'integer' }, last_seq: { type: 'integer' }, checkpoints: { type: 'integer' }, last_pruned_at: dateTime },
              },
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
      const report = await verifyAuditChain(deps.db.kysely, deps.keyring);
      const auditError = await recordVerification(deps.audit, caller, report);
      if (auditError) request.log.error({ err: auditError, problem: report.problem }, 'failed to record an audit chain check that found a problem');
      return { ok: report.ok, checked: report.checked, head_seq: report.headSeq, pruned: prunedView(report.pruned), problem: report.problem };
    },
  );

  registerReportRoute(app, deps);
  registerExportRoute(app, deps, text);
}

/** Reads optional start_date and end_date, normalized to ISO-8601 UTC, and rejects a start after the end. */
function readDateRange(query: { start_date?: string | undefined; end_date?: string | undefined }) {
  const startDate = query.start_date ? new Date(query.start_date).toISOString() : undefined;
  const endDate = query.end_date ? new Date(query.end_date).toISOString() : undefined;
  if (startDate && endDate && startDate > endDate) throw new ValidationError('querystring.start_date', `must not be after end_date (${endDate}), got ${startDate}`);
  return { startDate, endDate };
}

const countSchema = { type: 'integer' } as const;
const anomalySchema = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    reason: { type: 'string' },
    actor: { type: ['string', 'null'] },
    credential_name: { type: ['string', 'null'] },
    ip_address: { type: ['string', 'null'] },
    first_at: dateTime,
    last_at: dateTime,
    entry_count: countSchema,
    entry_seqs: { type: 'array', items: countSchema },
    entry_ids: { type: 'array', items: { type: 'string' } },
  },
} as const;

function registerReportRoute(app: FastifyInstance, deps: AuditRouteDeps): void {
  app.get<{ Querystring: { start_date: string; end_date: string } }>(
    '/audit/report',
    {
      config: { scope: 'audit:read', action: AuditAction.auditReported },
      schema: {
        tags: ['audit'],
        summary: 'Compliance report of a period: totals, per credential, action and actor, and anomalies (UTC)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['start_date', 'end_date'],
          properties: { start_date: dateTime, end_date: dateTime },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              period: { type: 'object', properties: { start: dateTime, end: dateTime } },
              summary: {
                type: 'object',
                properties: { total_accesses: countSchema, rotations: countSchema, failures: countSchema, unique_actors: countSchema },
              },
              by_credential: {
                type: 'array',
                items: { type: 'object', properties: { credential_name: { type: 'string' }, accesses: countSchema, failures: countSchema, last_access: dateTime } },
              },
              by_action: { type: 'array', items: { type: 'object', properties: { action: { type: 'string' }, count: countSchema, failures: countSchema } } },
              by_actor: { type: 'array', items: { type: 'object', properties: { actor: { type: 'string' }, count: countSchema, failures: countSchema } } },
              anomalies: { type: 'array', items: anomalySchema },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const caller = requireCaller(request);
      if (caller.namePatterns.length > 0 || caller.tags.length > 0) {
        throw new ForbiddenError(
          'The audit report covers every credential of the vault, and this token is limited to names or tags. Use a token without name or tag limits, or GET /audit/log for the entries this token reaches.',
        );
      }
      const { startDate, endDate } = readDateRange(request.query);
      const report = await buildAuditReport(
        deps.db,
        { start: startDate!, end: endDate! },
        { anomalies: deps.config.audit.anomalies, clock: deps.clock },
      );
      await deps.audit.record({
        credentialName: '*',
        action: AuditAction.auditReported,
        actor: caller.actor,
        ipAddress: caller.ipAddress,
        target: 'report',
        success: true,
        details: { start: startDate, end: endDate, entries: report.summary.total_accesses, anomalies: report.anomalies.length },
      });
      return report;
    },
  );
}

interface ExportQuery {
  format: ExportFormat;
  start_date?: string;
  end_date?: string;
  credential_name?: string;
  actor?: string;
  action?: string;
  success?: boolean;
}

function registerExportRoute(app: FastifyInstance, deps: AuditRouteDeps, text: object): void {
  app.get<{ Querystring: ExportQuery }>(
    '/audit/export',
    {
      config: { scope: 'audit:read', action: AuditAction.auditExported },
      schema: {
        tags: ['audit'],
        summary: 'Stream audit entries as CSV or JSON lines, oldest first, with their hashes for offline verification',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            format: { type: 'string', enum: ['csv', 'jsonl'], default: 'jsonl' },
            start_date: dateTime,
            end_date: dateTime,
            credential_name: text,
            actor: text,
            action: text,
            success: { type: 'boolean' },
          },
        },
        response: { 200: { type: 'string', description: 'CSV with a header line, or one JSON object per line' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const caller = requireCaller(request);
      const query = request.query;
      const { startDate, endDate } = readDateRange(query);
      const reach = auditReach(deps.db.dialect, caller);
      const filter = { startDate, endDate, credentialName: query.credential_name, actor: query.actor, action: query.action, success: query.success, reach: reach && auditReachCondition(reach) };
      // The export is recorded before it starts: once the first line is sent, the status can no longer change.
      await deps.audit.record({
        credentialName: query.credential_name ?? '*',
        action: AuditAction.auditExported,
        actor: caller.actor,
        ipAddress: caller.ipAddress,
        target: 'export',
        success: true,
        details: {
          format: query.format,
          start_date: startDate ?? null,
          end_date: endDate ?? null,
          actor: query.actor ?? null,
          action: query.action ?? null,
          success: query.success ?? null,
        },
      });
      const extension = query.format === 'csv' ? 'csv' : 'jsonl';
      reply.type(exportContentTypes[query.format]);
      reply.header('content-disposition', `attachment; filename="aegis-audit.${extension}"`);
      return reply.send(Readable.from(exportLines(deps.db.kysely, filter, query.format)));
    },
  );
}
