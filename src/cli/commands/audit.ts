import fs from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { InvalidArgumentError, type Command } from 'commander';
import { AuditAction } from '../../audit/audit.types.js';
import { exportLines, type ExportFormat } from '../../audit/export.js';
import { pruneAudit, type PruneResult } from '../../audit/prune.js';
import { verifyExportFile, type FileReport } from '../../audit/verify-file.js';
import { prunedView, recordVerification, verifyAuditChain, type ChainReport } from '../../audit/verify.js';
import { buildAuditReport, type AuditReport } from '../../audit/report.js';
import { isStorableDateTime } from '../../http/validation.js';
import { cannotRead } from '../../import/import-report.js';
import { AegisError } from '../../lib/errors.js';
import { escapeControls } from '../../lib/text.js';
import type { Vault } from '../../vault.js';
import { CommandError, USAGE_EXIT_CODE, cliCaller, printJson, printTable, withVault } from '../context.js';
import { rethrowWithOptionName } from '../input-check.js';
import { checkOutputPath, writeOutputFile } from '../output-file.js';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('Check, report on, prune and export the audit log');

  audit
    .command('verify')
    .description(
      'Walk the audit hash chain from the newest prune checkpoint; exit 1 and name the first bad entry or checkpoint if any was changed, inserted or removed. With --file, verify an export offline instead.',
    )
    .option('--file <file>', 'verify this file written by `aegis audit export` without opening the vault')
    .option('--json', 'print JSON')
    .action(async (options: { file?: string; json?: boolean }) => {
      if (options.file !== undefined) {
        // Checked without opening the file, which could be a named pipe that an export is writing to.
        try {
          fs.accessSync(options.file, fs.constants.R_OK);
          if (fs.statSync(options.file).isDirectory()) throw Object.assign(new Error('is a folder'), { code: 'EISDIR' });
        } catch (error) {
          throw new CommandError(cannotRead(options.file, error));
        }
        const report = await verifyExportFile(options.file);
        printFileReport(options.file, report, options.json === true);
        if (!report.ok) process.exitCode = 1;
        return;
      }
      await withVault(async (vault) => {
        const report = await verifyAuditChain(vault.db.kysely, vault.keyring);
        const auditError = await recordVerification(vault.audit, cliCaller(), report);
        // The JSON has the same fields as GET /audit/verify.
        if (options.json) printJson({ ok: report.ok, checked: report.checked, head_seq: report.headSeq, pruned: prunedView(report.pruned), problem: report.problem });
        else printChainReport(report);
        if (auditError) process.stderr.write(`aegis: writing the audit entry for this check failed too: ${auditError.message.split('\n')[0]}\n`);
        if (!report.ok) process.exitCode = 1;
      });
    });

  audit
    .command('prune')
    .description('Remove audit entries older than the retention period (AEGIS_AUDIT_RETENTION_DAYS, at least 365 days) and write a signed checkpoint')
    .option('--before <date>', 'remove entries older than this ISO-8601 date or date-time instead; it must lie at least the retention period in the past', parseDate)
    .option('--json', 'print JSON')
    .action(async (options: { before?: Date; json?: boolean }) => {
      await withVault(async (vault) => {
        const actor = cliCaller().actor;
        const requested = { before: options.before?.toISOString() ?? null };
        let result: PruneResult;
        try {
          result = await pruneAudit(vault.db, vault.keyring, vault.clock, {
            retentionDays: vault.config.audit.retentionDays,
            ...(options.before ? { before: options.before } : {}),
            actor,
          });
        } catch (error) {
          await recordPruneOutcome(vault, { actor, success: false, errorMessage: pruneFailureText(error), details: requested });
          rethrowWithOptionName({ before: '--before' }, error);
        }
        // A prune that removed something appended its own audit_pruned entry with the range.
        if (result.removed === 0) {
          await recordPruneOutcome(vault, { actor, success: true, details: { ...requested, removed: 0, pruned_before: result.cutoff } });
        }
        if (options.json) {
          printJson({ cutoff: result.cutoff, removed: result.removed, first_seq: result.firstSeq, last_seq: result.lastSeq, checkpoints: result.checkpoints });
        } else if (result.removed === 0) {
          process.stdout.write(`no audit entries older than ${result.cutoff}; nothing was removed\n`);
        } else {
          process.stdout.write(
            `removed ${result.removed} audit entries (${result.firstSeq} to ${result.lastSeq}) older than ${result.cutoff}; wrote ${result.checkpoints} signed checkpoint(s)\n`,
          );
        }
      });
    });

  audit
    .command('report')
    .description('Summarize a period of the audit log, as GET /audit/report does: accesses by credential, action and actor, failures, rotations and anomalies (each anomaly also raises one alert)')
    .requiredOption('--start-date <date>', 'start of the period, an ISO-8601 date or date-time', parseDate)
    .requiredOption('--end-date <date>', 'end of the period, an ISO-8601 date or date-time; entries at this instant are left out', parseDate)
    .option('--json', 'print JSON with the fields of GET /audit/report')
    .action(async (options: { startDate: Date; endDate: Date; json?: boolean }) => {
      const start = options.startDate.toISOString();
      const end = options.endDate.toISOString();
      if (start > end) throw new CommandError(`--start-date (${start}) must not be after --end-date (${end}).`, USAGE_EXIT_CODE);
      await withVault(async (vault) => {
        const report = await buildAuditReport(vault.db, { start, end }, { anomalies: vault.config.audit.anomalies, clock: vault.clock });
        await vault.audit.record({
          credentialName: '*',
          action: AuditAction.auditReported,
          actor: cliCaller().actor,
          target: 'report',
          success: true,
          details: { start, end, entries: report.summary.total_accesses, anomalies: report.anomalies.length },
        });
        if (options.json) printJson(report);
        else printAuditReport(report);
      });
    });

  audit
    .command('export')
    .description('Write audit entries, oldest first, as CSV or JSON lines with their hashes, so `aegis audit verify --file` can check them offline')
    .requiredOption('--format <format>', 'csv or jsonl', parseFormat)
    .option('--start-date <date>', 'only entries at or after this ISO-8601 date-time', parseDate)
    .option('--end-date <date>', 'only entries at or before this ISO-8601 date-time', parseDate)
    .option('--credential <name>', 'only entries about this credential')
    .option('--actor <actor>', 'only entries by this actor')
    .option('--action <action>', 'only entries with this action, e.g. revealed')
    .option('--success <true|false>', 'only successful entries (true), or only failed and denied ones (false)', parseSuccess)
    .option('--output <file>', 'write to this file instead of standard output: mode 0600, replaced if it exists, only once the export is complete')
    .action(async (options: { format: ExportFormat; startDate?: Date; endDate?: Date; credential?: string; actor?: string; action?: string; success?: boolean; output?: string }) => {
      const startDate = options.startDate?.toISOString();
      const endDate = options.endDate?.toISOString();
      if (startDate && endDate && startDate > endDate) throw new CommandError(`--start-date (${startDate}) must not be after --end-date (${endDate}).`, USAGE_EXIT_CODE);
      if (options.output !== undefined) checkOutputPath(options.output);
      await withVault(async (vault) => {
        const caller = cliCaller();
        await vault.audit.record({
          credentialName: options.credential ?? '*',
          action: AuditAction.auditExported,
          actor: caller.actor,
          target: 'export',
          success: true,
          details: {
            format: options.format,
            start_date: startDate ?? null,
            end_date: endDate ?? null,
            actor: options.actor ?? null,
            action: options.action ?? null,
            success: options.success ?? null,
            to_file: options.output !== undefined,
          },
        });
        const filter = { startDate, endDate, credentialName: options.credential, actor: options.actor, action: options.action, success: options.success };
        const writeLines = async (out: Writable) => {
          for await (const chunk of exportLines(vault.db.kysely, filter, options.format)) {
            if (!out.write(chunk)) await once(out, 'drain');
          }
        };
        if (options.output) await writeOutputFile(options.output, writeLines);
        else await writeLines(process.stdout);
      });
    });
}

/**
 * Records a prune that removed nothing, or failed, as an `audit_pruned` entry. When the entry cannot be
 * written, writes that to stderr and sets exit code 1, and the prune's own outcome is still reported.
 */
async function recordPruneOutcome(vault: Vault, outcome: { actor: string; success: boolean; errorMessage?: string; details: Record<string, unknown> }): Promise<void> {
  try {
    await vault.audit.record({ credentialName: '*', action: AuditAction.auditPruned, target: 'chain', ...outcome });
  } catch (error) {
    process.exitCode = 1;
    process.stderr.write(`aegis: writing the audit entry for this prune failed: ${error instanceof Error ? error.message.split('\n')[0] : 'unknown error'}\n`);
  }
}

/**
 * Describes a failed prune for its audit entry, as the API records failures: code, then message. Other
 * errors (a database driver's) are named by class only, because their messages may quote stored data.
 */
function pruneFailureText(error: unknown): string {
  if (error instanceof AegisError) return `${error.code}: ${error.message}`;
  return `unexpected_error: ${error instanceof Error ? error.name : typeof error}`;
}

function printAuditReport(report: AuditReport): void {
  const { summary } = report;
  process.stdout.write(
    `audit report ${report.period.start} to ${report.period.end}: ${summary.total_accesses} entries, ${summary.failures} failed or denied, ${summary.rotations} rotations, ${summary.unique_actors} actors\n`,
  );
  if (report.by_credential.length > 0) {
    process.stdout.write('\nby credential:\n');
    printTable(['CREDENTIAL', 'ACCESSES', 'FAILURES', 'LAST ACCESS'], report.by_credential.map((row) => [row.credential_name, row.accesses, row.failures, row.last_access]));
  }
  if (report.by_action.length > 0) {
    process.stdout.write('\nby action:\n');
    printTable(['ACTION', 'ENTRIES', 'FAILURES'], report.by_action.map((row) => [row.action, row.count, row.failures]));
  }
  if (report.by_actor.length > 0) {
    process.stdout.write('\nby actor:\n');
    printTable(['ACTOR', 'ENTRIES', 'FAILURES'], report.by_actor.map((row) => [row.actor, row.count, row.failures]));
  }
  process.stdout.write(`\n${report.anomalies.length} anomalies${report.anomalies.length > 0 ? ':' : ''}\n`);
  // Reasons quote names and addresses from the entries, which a client may have chosen.
  for (const anomaly of report.anomalies) process.stdout.write(`- ${anomaly.type}: ${escapeControls(anomaly.reason)}\n`);
}

function printChainReport(report: ChainReport): void {
  const pruned = report.pruned
    ? `entries ${report.pruned.firstSeq} to ${report.pruned.lastSeq} were pruned (${report.pruned.checkpoints} signed checkpoint(s), the last at ${report.pruned.lastPrunedAt})`
    : null;
  if (report.ok) {
    process.stdout.write(`audit chain verified: ${report.checked} entries, head ${report.headSeq}${pruned ? `; ${pruned}` : ''}\n`);
    return;
  }
  // The problem's message ends with a full stop, so the pruned range follows as a sentence of its own.
  const prunedSentence = pruned ? ` ${pruned.charAt(0).toUpperCase()}${pruned.slice(1)}.` : '';
  process.stdout.write(`audit chain verification failed after ${report.checked} good entries: ${escapeControls(report.problem!.message)}${prunedSentence}\n`);
}

function printFileReport(file: string, report: FileReport, json: boolean): void {
  if (json) {
    printJson({
      ok: report.ok,
      format: report.format,
      entries: report.entries,
      first_seq: report.firstSeq,
      last_seq: report.lastSeq,
      links_checked: report.linksChecked,
      gaps: report.gaps,
      problem: report.problem,
    });
    return;
  }
  if (!report.ok) {
    process.stdout.write(`${file}: verification failed after ${report.entries} good entries: ${escapeControls(report.problem!.message)}\n`);
    return;
  }
  const range = `${report.entries} entries (${report.firstSeq} to ${report.lastSeq})`;
  const gaps =
    report.gaps === 0
      ? 'every link between consecutive lines checked'
      : `${report.linksChecked} links checked; the links across ${report.gaps} gap(s) in the sequence numbers (a filtered export) were not checkable, only each line's own hash`;
  // The file alone cannot show lines cut from its end, nor from its start unless it begins at entry 1.
  const ends = `lines cut from the end${report.firstSeq === 1 ? '' : ' or the start'} cannot show in the file alone: compare the last entry with the vault's head (aegis audit verify)`;
  process.stdout.write(`${file}: ${range} verified; ${gaps}; ${ends}\n`);
}

function parseSuccess(value: string): boolean {
  if (value !== 'true' && value !== 'false') throw new InvalidArgumentError('Use true or false.');
  return value === 'true';
}

function parseFormat(value: string): ExportFormat {
  if (value !== 'csv' && value !== 'jsonl') throw new InvalidArgumentError('Use csv or jsonl.');
  return value;
}

/**
 * Parses a date (midnight UTC) or a date-time with `Z` or an offset, as the API accepts them. A time
 * without an offset would be read in the machine's time zone, and `new Date` turns 2026-02-30 into
 * March 2, so both are rejected.
 */
function parseDate(value: string): Date {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const text = dateOnly ? `${value}T00:00:00Z` : value;
  if (!isStorableDateTime(text)) {
    throw new InvalidArgumentError('Expected an ISO-8601 date such as 2025-01-31, or a date-time with Z or an offset such as 2025-01-31T00:00:00Z.');
  }
  return new Date(text);
}
