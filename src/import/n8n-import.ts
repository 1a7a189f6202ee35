import { isUtf8 } from 'node:buffer';
import path from 'node:path';
import { AegisError, ValidationError } from '../lib/errors.js';
import { isValidCredentialName, isValidCredentialType } from '../lib/names.js';
import { describeJsonError } from '../lib/json.js';
import type { Caller } from '../tokens/caller.js';
import { credentialExists, emptyReport, readImportFile, recordImport, type ImportReport, type ImportTarget } from './import-report.js';

/**
 * One entry of the array that `n8n export:credentials --all --decrypted` writes. The export also contains
 * `createdAt`, `updatedAt` and `isManaged`; only these fields are read.
 */
interface N8nExportedCredential {
  id?: unknown;
  name?: unknown;
  type?: unknown;
  data?: unknown;
}

export interface N8nImportOptions {
  tags?: string[] | undefined;
  dryRun?: boolean | undefined;
}

/**
 * Registers each credential of an n8n export as an `n8n` credential: its n8n id as the provider
 * credential id, its n8n type as the credential type, and its data (as JSON) sealed as version 1.
 * An n8n name AEGIS cannot use as is becomes a safe name, and the original is kept in the metadata.
 * A dry run applies the same checks and writes nothing, not even an audit entry.
 */
export async function importN8nExport(target: ImportTarget, caller: Caller, file: string, options: N8nImportOptions = {}): Promise<ImportReport> {
  const absolute = path.resolve(file);
  const entries = readExport(absolute);
  const dryRun = options.dryRun ?? false;
  const report = emptyReport(absolute, dryRun);
  const usedNames = new Set<string>();
  const seenIds = new Set<string>();
  for (const [index, entry] of entries.entries()) {
    const label = typeof entry.name === 'string' && entry.name !== '' ? entry.name : `entry ${index + 1}`;
    const problem = describeProblem(entry);
    if (problem) {
      report.skipped.push({ name: label, reason: problem });
      continue;
    }
    // Two credentials bound to one n8n id would both write to it on rotation.
    const id = String(entry.id);
    if (seenIds.has(id)) {
      report.skipped.push({ name: label, reason: `n8n id ${id} appears earlier in the file` });
      continue;
    }
    seenIds.add(id);
    const name = safeName(entry.name as string, entry.id as string | number, usedNames);
    usedNames.add(name);
    const detail = `n8n id ${String(entry.id)}, type ${entry.type as string}`;
    if (await credentialExists(target, name)) {
      report.skipped.push({ name, reason: 'already exists' });
      continue;
    }
    if (dryRun) {
      report.created.push({ name, detail });
      continue;
    }
    try {
      await target.registry.create(caller, {
        name,
        credential_type: entry.type as string,
        provider: 'n8n',
        provider_credential_id: String(entry.id),
        value: JSON.stringify(entry.data),
        tags: options.tags ?? [],
        metadata: { imported_from: 'n8n', n8n_name: entry.name },
      });
      report.created.push({ name, detail });
    } catch (error) {
      if (!(error instanceof AegisError)) throw error;
      report.skipped.push({ name, reason: error.code === 'credential_exists' ? 'already exists' : error.message });
    }
  }
  if (!dryRun) await recordImport(target, caller, 'n8n', report);
  return report;
}

function readExport(file: string): N8nExportedCredential[] {
  const bytes = readImportFile(file);
  // Decoding would put U+FFFD in place of invalid bytes and store values changed. n8n writes UTF-8, so such a file is damaged.
  if (!isUtf8(bytes)) throw new ValidationError('file', `${file} is not valid UTF-8, as n8n writes its exports; export the credentials again`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    if (error instanceof ValidationError) throw error;
    throw new ValidationError('file', `${file} is ${describeJsonError(error)}`);
  }
  // `n8n export:credentials --separate` writes one object per file; accept that as a list of one.
  const list = Array.isArray(parsed) ? parsed : [parsed];
  if (!list.every((entry) => typeof entry === 'object' && entry !== null && !Array.isArray(entry))) {
    throw new ValidationError('file', `${file} must contain an array of credential objects, as \`n8n export:credentials --all --decrypted\` writes`);
  }
  return list as N8nExportedCredential[];
}

function describeProblem(entry: N8nExportedCredential): string | null {
  if (typeof entry.id === 'number' ? !Number.isSafeInteger(entry.id) : typeof entry.id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(entry.id)) {
    return 'missing or invalid id';
  }
  if (typeof entry.name !== 'string' || entry.name.trim() === '') return 'missing name';
  if (typeof entry.type !== 'string' || !isValidCredentialType(entry.type)) return 'missing or invalid type';
  if (typeof entry.data === 'string') return 'data is encrypted; export again with `n8n export:credentials --all --decrypted`';
  if (typeof entry.data !== 'object' || entry.data === null || Array.isArray(entry.data)) return 'missing data';
  return null;
}

/**
 * Replaces characters a credential name cannot hold with `-` (accents are dropped first, so `Café`
 * becomes `Cafe`), and adds the n8n id when two names in one export collide, then `-2`, `-3` and so on
 * when an earlier entry already has that name too. The mapping depends only on the file, so importing the
 * same export again yields the same names.
 */
export function safeName(n8nName: string, id: string | number, usedNames: ReadonlySet<string>): string {
  const base =
    n8nName
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .replace(/[^A-Za-z0-9._/-]+/g, '-')
      .replace(/\.{2,}/g, '.')
      .replace(/^[-/]+|[-/]+$/g, '')
      .slice(0, 100) || 'n8n-credential';
  if (!usedNames.has(base) && isValidCredentialName(base)) return base;
  const fallback = `n8n-credential-${String(id)}`;
  // n8n sync passes ids unchecked. An id that no name can contain gives an invalid name, which the caller reports.
  if (!isValidCredentialName(fallback)) return fallback;
  const withId = isValidCredentialName(`${base}-${String(id)}`) ? `${base}-${String(id)}` : fallback;
  // An earlier entry may carry this name as its own, as "Mailer-c2" before two entries named "Mailer".
  let name = withId;
  for (let count = 2; usedNames.has(name) || !isValidCredentialName(name); count += 1) {
    name = isValidCredentialName(`${withId}-${count}`) ? `${withId}-${count}` : `${fallback}-${count}`;
    // A long id leaves no room for the counter, and the caller reports the invalid name.
    if (!isValidCredentialName(name)) return name;
  }
  return name;
}
