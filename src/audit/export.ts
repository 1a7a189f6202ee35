import type { RawBuilder } from 'kysely';
import type { Executor } from '../db/database.js';
import { fromRow, readHead } from './audit.repository.js';
import { storedFields } from './chain.js';
import type { StoredAuditEntry } from './audit.types.js';

export type ExportFormat = 'csv' | 'jsonl';

export interface ExportFilter {
  /** Entries at or after this instant (ISO-8601). */
  startDate?: string | undefined;
  /** Entries at or before this instant, as GET /audit/log reads `end_date`. */
  endDate?: string | undefined;
  credentialName?: string | undefined;
  actor?: string | undefined;
  action?: string | undefined;
  /** Condition from `auditReachCondition` that keeps only the entries a limited token may read. */
  reach?: RawBuilder<boolean> | undefined;
  /** Only successful entries (true), or only failed and denied ones (false). */
  success?: boolean | undefined;
}

/** The exported fields in order: every field the entry hash covers, then the entry's own hash. */
export const EXPORT_COLUMNS = [
  'seq',
  'id',
  'timestamp',
  'credential_id',
  'credential_name',
  'action',
  'actor',
  'target',
  'details',
  'ip_address',
  'success',
  'error_message',
  'prev_hash',
  'entry_hash',
] as const;

export const exportContentTypes: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  jsonl: 'application/x-ndjson; charset=utf-8',
};

/** Rows read per query. The export keeps one page in memory at a time, whatever the number of entries. */
const exportPageSize = 1_000;

export function hasFilter(filter: ExportFilter): boolean {
  return Object.values(filter).some((value) => value !== undefined);
}

/**
 * Yields the export line by line (each ending in a newline), oldest entry first, reading the entries in
 * pages by sequence number (keyset pagination). Only entries up to the head at the start are exported,
 * so the export is a fixed slice of the chain even while entries are appended.
 */
export async function* exportLines(db: Executor, filter: ExportFilter, format: ExportFormat): AsyncGenerator<string> {
  const head = await readHead(db);
  if (format === 'csv') yield `${EXPORT_COLUMNS.join(',')}\n`;
  let afterSeq = 0;
  for (;;) {
    let query = db.selectFrom('aegis_audit_log').selectAll().where('seq', '>', afterSeq).where('seq', '<=', head.seq);
    if (filter.startDate !== undefined) query = query.where('timestamp', '>=', filter.startDate);
    if (filter.endDate !== undefined) query = query.where('timestamp', '<=', filter.endDate);
    if (filter.credentialName !== undefined) query = query.where('credential_name', '=', filter.credentialName);
    if (filter.actor !== undefined) query = query.where('actor', '=', filter.actor);
    if (filter.action !== undefined) query = query.where('action', '=', filter.action);
    if (filter.reach !== undefined) query = query.where(filter.reach);
    if (filter.success !== undefined) query = query.where('success', '=', filter.success);
    const rows = await query.orderBy('seq').limit(exportPageSize).execute();
    let page = '';
    for (const row of rows) page += formatLine(fromRow(row), format);
    if (page !== '') yield page;
    if (rows.length < exportPageSize) break;
    afterSeq = fromRow(rows.at(-1)!).seq;
  }
}

export function formatLine(entry: StoredAuditEntry, format: ExportFormat): string {
  const fields = storedFields(entry);
  if (format === 'jsonl') return `${JSON.stringify(fields)}\n`;
  return `${EXPORT_COLUMNS.map((column) => csvField(column === 'details' ? JSON.stringify(fields.details) : fields[column])).join(',')}\n`;
}

/**
 * Writes one CSV field (RFC 4180). Null becomes an empty unquoted field and every string is quoted,
 * so an empty string (`""`) and null stay apart and the entry hash can be recomputed from the file.
 */
function csvField(value: string | number | boolean | null): string {
  if (value === null) return '';
  if (typeof value !== 'string') return String(value);
  return `"${value.replace(/"/g, '""')}"`;
}

export interface CsvField {
  text: string;
  quoted: boolean;
}

/**
 * Parses one CSV record. Returns null when the text ends inside a quoted field, so the caller appends
 * the next line (a quoted field may hold a line break); throws on malformed quoting.
 */
export function parseCsvRecord(text: string): CsvField[] | null {
  const fields: CsvField[] = [];
  let index = 0;
  for (;;) {
    if (text[index] === '"') {
      let value = '';
      index += 1;
      for (;;) {
        const quote = text.indexOf('"', index);
        if (quote === -1) return null;
        value += text.slice(index, quote);
        if (text[quote + 1] === '"') {
          value += '"';
          index = quote + 2;
          continue;
        }
        index = quote + 1;
        break;
      }
      fields.push({ text: value, quoted: true });
    } else {
      const comma = text.indexOf(',', index);
      const end = comma === -1 ? text.length : comma;
      const value = text.slice(index, end);
      if (value.includes('"')) throw new Error('a quote inside an unquoted field');
      fields.push({ text: value, quoted: false });
      index = end;
    }
    if (index === text.length) return fields;
    if (text[index] !== ',') throw new Error('text after a closing quote');
    index += 1;
  }
}
