import { constants } from 'node:buffer';
import fs from 'node:fs';
import { AuditAction } from '../audit/audit.types.js';
import { ValidationError } from '../lib/errors.js';
import { findCredentialByName } from '../registry/credentials.repository.js';
import type { Caller } from '../tokens/caller.js';
import type { Vault } from '../vault.js';

/** The outcome of an import for each entry of its input. It never contains a value. */
export interface ImportReport {
  source: string;
  /** True when nothing was written: `created` then lists what a real run would create. */
  dry_run: boolean;
  created: Array<{ name: string; detail?: string }>;
  /** `line` is the line of the input file, for entries that have one. */
  skipped: Array<{ name: string; reason: string; line?: number }>;
}

/** The parts of an open vault an import uses. */
export type ImportTarget = Pick<Vault, 'registry' | 'db' | 'audit' | 'adapters'>;

export function emptyReport(source: string, dryRun: boolean): ImportReport {
  return { source, dry_run: dryRun, created: [], skipped: [] };
}

const readErrorReasons: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'is a folder',
  EACCES: 'permission denied',
};

/** Describes why a file could not be read: `cannot read FILE: no such file`. */
export function cannotRead(file: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const reason = readErrorReasons[code] ?? `read failed (${code || (error as Error).message})`;
  return `cannot read ${file}: ${reason}`;
}

/**
 * The largest input file, in bytes. Its text must fit in one JavaScript string, whose maximum length is
 * buffer.constants.MAX_STRING_LENGTH (2^29 - 24 UTF-16 code units in 64-bit Node.js 20). UTF-8 never
 * decodes to more code units than bytes.
 */
export const MAX_IMPORT_FILE_BYTES = constants.MAX_STRING_LENGTH;

/** Reads an input file, turning a missing, unreadable or too large file into an error that names it. */
export function readImportFile(file: string): Buffer {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (error) {
    throw new ValidationError('file', cannotRead(file, error));
  }
  // Checked before reading, so a huge file is not loaded into memory only to fail when it is decoded.
  if (size > MAX_IMPORT_FILE_BYTES) {
    throw new ValidationError('file', `${file} is ${size} bytes, more than the ${MAX_IMPORT_FILE_BYTES} bytes an import reads; split it into smaller files`);
  }
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new ValidationError('file', cannotRead(file, error));
  }
}

/**
 * Tells whether a credential of this name exists, without writing an audit entry, so a dry run writes
 * nothing. A real run still relies on the registry's own check, which also catches a concurrent create.
 */
export async function credentialExists(target: ImportTarget, name: string): Promise<boolean> {
  return (await findCredentialByName(target.db.kysely, name)) !== undefined;
}

/** Records one `imported` audit entry that sums up a real import run. Each created credential also has its own `created` entry. */
export async function recordImport(target: ImportTarget, caller: Caller, format: 'dotenv' | 'n8n', report: ImportReport): Promise<void> {
  await target.audit.record({
    credentialName: '*',
    action: AuditAction.imported,
    actor: caller.actor,
    ipAddress: caller.ipAddress,
    target: report.source,
    success: true,
    details: {
      format,
      created: report.created.map((entry) => entry.name),
      skipped: report.skipped.map((entry) => ({ name: entry.name, reason: entry.reason, ...(entry.line === undefined ? {} : { line: entry.line }) })),
    },
  });
}
