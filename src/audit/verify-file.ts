import fs from 'node:fs';
import readline from 'node:readline';
import { findDuplicateKey } from '../lib/duplicate-keys.js';
import { entryHash, isCanonicalTimestamp } from './chain.js';
import { EXPORT_COLUMNS, parseCsvRecord, type CsvField, type ExportFormat } from './export.js';
import { GENESIS_HASH, type AuditEntry } from './audit.types.js';

export interface FileProblem {
  /** The line the failing record starts on, counting from 1 (the CSV header is line 1). */
  line: number;
  seq: number | null;
  message: string;
}

export interface FileReport {
  ok: boolean;
  format: ExportFormat;
  /** Entries whose own hash was recomputed and matched. */
  entries: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** Links checked between entries with consecutive sequence numbers (and from entry 1 to the genesis hash). */
  linksChecked: number;
  /** Places where the sequence numbers jump (a filtered export): the link across them cannot be checked. */
  gaps: number;
  problem: FileProblem | null;
}

/**
 * Verifies an export written by `aegis audit export` or GET /audit/export without the vault: recomputes
 * each entry's hash and checks each link to the line before when their sequence numbers are consecutive.
 * The file is read line by line, so its size does not matter. The format is taken from the first line
 * unless given.
 */
export async function verifyExportFile(file: string, format?: ExportFormat): Promise<FileReport> {
  const lines = readline.createInterface({ input: fs.createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  const report: FileReport = { ok: true, format: format ?? 'jsonl', entries: 0, firstSeq: null, lastSeq: null, linksChecked: 0, gaps: 0, problem: null };
  let previous: { seq: number; entryHash: string } | null = null;
  let lineNumber = 0;
  let pending: { text: string; startLine: number } | null = null;
  let headerSeen = false;

  const fail = (line: number, seq: number | null, message: string): FileReport => {
    lines.close();
    return { ...report, ok: false, problem: { line, seq, message } };
  };

  for await (const line of lines) {
    lineNumber += 1;
    if (lineNumber === 1 && format === undefined) report.format = line.startsWith('{') ? 'jsonl' : 'csv';

    let entry: AuditEntry;
    let startLine = lineNumber;
    if (report.format === 'jsonl') {
      if (line.trim() === '') continue;
      try {
        entry = fromJsonLine(line);
      } catch (error) {
        return fail(lineNumber, null, `Line ${lineNumber} is not a valid export line: ${(error as Error).message}.`);
      }
    } else {
      if (!headerSeen) {
        if (line !== EXPORT_COLUMNS.join(',')) return fail(lineNumber, null, `Line ${lineNumber} is not the export's CSV header (${EXPORT_COLUMNS.join(',')}).`);
        headerSeen = true;
        continue;
      }
      const text: string = pending ? `${pending.text}\n${line}` : line;
      startLine = pending?.startLine ?? lineNumber;
      if (text === '' && !pending) continue;
      let fields: CsvField[] | null;
      try {
        fields = parseCsvRecord(text);
      } catch (error) {
        return fail(startLine, null, `Line ${startLine} is not valid CSV: ${(error as Error).message}.`);
      }
      if (fields === null) {
        pending = { text, startLine };
        continue;
      }
      pending = null;
      try {
        entry = fromCsvFields(fields);
      } catch (error) {
        return fail(startLine, null, `Line ${startLine} is not a valid export line: ${(error as Error).message}.`);
      }
    }

    const { entryHash: stored, ...rest } = entry;
    if (entryHash(rest) !== stored) {
      return fail(startLine, entry.seq, `Line ${startLine} (entry ${entry.seq}) was changed after it was exported: its fields no longer match its entry_hash.`);
    }
    if (!isCanonicalTimestamp(entry.timestamp)) {
      return fail(
        startLine,
        entry.seq,
        `Line ${startLine} (entry ${entry.seq}) was changed after it was written: its timestamp ${JSON.stringify(entry.timestamp)} is not in the form AEGIS writes (YYYY-MM-DDTHH:MM:SS.sssZ).`,
      );
    }
    if (previous && entry.seq <= previous.seq) {
      return fail(startLine, entry.seq, `Line ${startLine} (entry ${entry.seq}) comes after entry ${previous.seq}: lines were reordered or repeated.`);
    }
    if (previous && entry.seq === previous.seq + 1) {
      if (entry.prevHash !== previous.entryHash) {
        return fail(startLine, entry.seq, `Line ${startLine} (entry ${entry.seq}) does not link to entry ${previous.seq} on the line before: an entry was replaced or inserted.`);
      }
      report.linksChecked += 1;
    } else if (previous) {
      report.gaps += 1;
    } else if (entry.seq === 1) {
      if (entry.prevHash !== GENESIS_HASH) return fail(startLine, entry.seq, `Line ${startLine} (entry 1) does not start from the genesis hash.`);
      report.linksChecked += 1;
    }
    previous = { seq: entry.seq, entryHash: stored };
    report.entries += 1;
    report.firstSeq ??= entry.seq;
    report.lastSeq = entry.seq;
  }
  if (pending) return fail(pending.startLine, null, `Line ${pending.startLine} opens a quoted field that the file never closes.`);
  if (report.format === 'csv' && !headerSeen) return fail(1, null, 'The file is empty: an export has at least the CSV header.');
  // An export of the whole log is never empty, and an empty file proves nothing.
  if (report.entries === 0) return fail(Math.max(lineNumber, 1), null, 'The file holds no entries, so nothing was verified.');
  return report;
}

const exportColumns = new Set<string>(EXPORT_COLUMNS);

/**
 * Reads one JSONL line. A field outside the export's columns or a key that appears twice makes the line
 * invalid, because JSON.parse keeps the last of two keys and hashes that, while a reader or grep finds the first.
 */
function fromJsonLine(line: string): AuditEntry {
  const fields = JSON.parse(line) as Record<string, unknown>;
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new Error('not a JSON object');
  const duplicate = findDuplicateKey(line);
  if (duplicate !== undefined) throw new Error(`key ${JSON.stringify(duplicate.at(-1))} appears twice in one object`);
  for (const key of Object.keys(fields)) {
    if (!exportColumns.has(key)) throw new Error(`field ${JSON.stringify(key)} is not an export column`);
  }
  for (const column of EXPORT_COLUMNS) {
    if (!(column in fields)) throw new Error(`field ${column} is missing`);
  }
  return toEntry(fields);
}


function fromCsvFields(fields: CsvField[]): AuditEntry {
  if (fields.length !== EXPORT_COLUMNS.length) throw new Error(`${fields.length} fields instead of ${EXPORT_COLUMNS.length}`);
  const byColumn: Record<string, unknown> = {};
  EXPORT_COLUMNS.forEach((column, index) => {
    const field = fields[index]!;
    byColumn[column] = field.quoted ? field.text : field.text === '' ? null : field.text;
  });
  if (!/^\d+$/.test(String(byColumn.seq))) throw new Error('seq is not a whole number');
  if (byColumn.success !== 'true' && byColumn.success !== 'false') throw new Error('success is neither true nor false');
  return toEntry({
    ...byColumn,
    seq: Number(byColumn.seq),
    success: byColumn.success === 'true',
    details: JSON.parse(String(byColumn.details)),
  });
}

function toEntry(fields: Record<string, unknown>): AuditEntry {
  const text = (name: string): string => {
    if (typeof fields[name] !== 'string') throw new Error(`${name} is not a string`);
    return fields[name] as string;
  };
  const nullableText = (name: string): string | null => (fields[name] === null ? null : text(name));
  if (typeof fields.seq !== 'number' || !Number.isInteger(fields.seq)) throw new Error('seq is not a whole number');
  if (typeof fields.success !== 'boolean') throw new Error('success is not a boolean');
  if (typeof fields.details !== 'object' || fields.details === null || Array.isArray(fields.details)) throw new Error('details is not an object');
  return {
    seq: fields.seq,
    id: text('id'),
    timestamp: text('timestamp'),
    credentialId: nullableText('credential_id'),
    credentialName: text('credential_name'),
    action: text('action'),
    actor: text('actor'),
    target: nullableText('target'),
    details: fields.details as Record<string, unknown>,
    ipAddress: nullableText('ip_address'),
    success: fields.success,
    errorMessage: nullableText('error_message'),
    prevHash: text('prev_hash'),
    entryHash: text('entry_hash'),
  };
}
