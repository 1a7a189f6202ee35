import { isUtf8 } from 'node:buffer';
import path from 'node:path';
import { parse } from 'dotenv';
import { AegisError, ValidationError } from '../lib/errors.js';
import { isValidCredentialName } from '../lib/names.js';
import { isBlank } from '../registry/credential-input.js';
import type { Caller } from '../tokens/caller.js';
import { scanDotenvLines, type DotenvLines } from './dotenv-lines.js';
import { credentialExists, emptyReport, readImportFile, recordImport, type ImportReport, type ImportTarget } from './import-report.js';

export interface DotenvImportOptions {
  /** Put before each variable name to make the credential name, e.g. `billing/`. */
  prefix?: string | undefined;
  tags?: string[] | undefined;
  dryRun?: boolean | undefined;
}

/**
 * Registers each variable of a `.env` file as an `env` credential that points back at the file and
 * variable, with the variable's value sealed as version 1. Existing names, empty values, names AEGIS cannot
 * use, lines dotenv skips and variables it does not read (`__proto__`) are listed as skipped with the reason.
 * A file outside AEGIS_ENV_ALLOWED_DIRS is rejected. A dry run applies the same checks and writes nothing,
 * not even an audit entry.
 */
export async function importDotenv(target: ImportTarget, caller: Caller, file: string, options: DotenvImportOptions = {}): Promise<ImportReport> {
  const absolute = path.resolve(file);
  const bytes = readImportFile(absolute);
  // Decoding puts U+FFFD in place of bytes that are not UTF-8, so in such a file a value containing
  // U+FFFD would be stored changed. It is skipped, and so is a real U+FFFD in that file.
  const validUtf8 = isUtf8(bytes);
  const variables = parse(bytes);
  const lines = scanDotenvLines(bytes.toString('utf8'));
  // The file's folder decides for every variable at once, so a file outside the allowed folders is an
  // error rather than a report that skips each variable for the same reason.
  try {
    target.adapters.env.checkConfig({ file: absolute, variable: 'IMPORT' });
  } catch (error) {
    if (!(error instanceof AegisError)) throw error;
    throw new ValidationError('file', error.message.replace(/^provider_config\.file: /, ''));
  }
  const dryRun = options.dryRun ?? false;
  const report = emptyReport(absolute, dryRun);
  for (const [variable, value] of Object.entries(variables)) {
    const name = `${options.prefix ?? ''}${variable}`;
    const problem =
      !validUtf8 && value.includes('\uFFFD') ? 'value is not valid UTF-8, so AEGIS cannot store it as text' : await describeProblem(target, name, variable, value, absolute);
    if (problem) {
      report.skipped.push({ name, reason: problem });
      continue;
    }
    if (dryRun) {
      report.created.push({ name, detail: `from ${variable}` });
      continue;
    }
    try {
      await target.registry.create(caller, {
        name,
        credential_type: 'env_var',
        provider: 'env',
        provider_config: { file: absolute, variable },
        value,
        tags: options.tags ?? [],
        metadata: { imported_from: 'dotenv' },
      });
      report.created.push({ name, detail: `from ${variable}` });
    } catch (error) {
      if (!(error instanceof AegisError)) throw error;
      report.skipped.push({ name, reason: error.code === 'credential_exists' ? 'already exists' : error.message });
    }
  }
  reportUnread(report, lines, variables, options.prefix ?? '');
  if (!dryRun) await recordImport(target, caller, 'dotenv', report);
  return report;
}

/**
 * Adds to the skipped list, by line, what `parse` drops silently: lines that are not
 * assignments, and assignments of a variable it does not return. dotenv 17 assigns each variable to a
 * plain object, so `__proto__=...` sets that object's prototype instead, and the variable is lost to
 * every program that reads the file with dotenv. The line's text is never reported, because it may be a value.
 */
function reportUnread(report: ImportReport, lines: DotenvLines, variables: Record<string, string>, prefix: string): void {
  const unread = new Map<string, number>();
  for (const { variable, line } of lines.assignments) {
    if (!Object.hasOwn(variables, variable)) unread.set(variable, line);
  }
  const entries = [
    ...[...unread].map(([variable, line]) => ({ name: `${prefix}${variable}`, line, reason: `dotenv does not read a variable named ${variable}, so AEGIS could not read it from the file either. Rename it to import it` })),
    ...lines.unparsed.map((line) => ({ name: `line ${line}`, line, reason: 'not an assignment (NAME=value) that dotenv reads, so nothing was imported from it' })),
  ];
  report.skipped.push(...entries.sort((a, b) => a.line - b.line));
}

async function describeProblem(target: ImportTarget, name: string, variable: string, value: string, file: string): Promise<string | null> {
  if (!isValidCredentialName(name)) return 'not a valid credential name (1 to 128 letters, digits, . _ - /, no ..)';
  if (isBlank(value)) return 'empty value';
  try {
    target.adapters.env.checkConfig({ file, variable });
  } catch (error) {
    if (!(error instanceof AegisError)) throw error;
    return error.message;
  }
  if (await credentialExists(target, name)) return 'already exists';
  return null;
}
