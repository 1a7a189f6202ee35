import fs from 'node:fs';
import { AegisError, ValidationError } from '../lib/errors.js';
import type { RegistryService } from '../registry/registry.service.js';
import type { Caller } from '../tokens/caller.js';
import { emptyReport, type ImportReport } from './import-report.js';

/** One entry of the array that `n8n export:credentials --decrypted` writes; only these fields are read. */
interface N8nExportedCredential {
  id?: unknown;
  name?: unknown;
  type?: unknown;
  data?: unknown;
}

export interface N8nImportOptions {
  tags?: string[];
  dryRun?: boolean;
}

/**
 * Registers each credential of an n8n export as an `n8n` credential: its n8n id as the provider
 * credential id, its n8n type as the credential type, and its data (as JSON) sealed as version 1.
 * An n8n name AEGIS cannot use as is becomes a safe name, and the original is kept in the metadata.
 */
export async function importN8nExport(registry: RegistryService, caller: Caller, file: string, options: N8nImportOptions = {}): Promise<ImportReport> {
  const entries = readExport(file);
  const report = emptyReport(file);
  const taken = new Set<string>();
  for (const [index, entry] of entries.entries()) {
    const label = typeof entry.name === 'string' && entry.name !== '' ? entry.name : `entry ${index + 1}`;
    const problem = describeProblem(entry);
    if (problem) {
      report.skipped.push({ name: label, reason: problem });
      continue;
    }
    const name = safeName(entry.name as string, entry.id as string, taken);
    taken.add(name);
    if (options.dryRun) {
      report.created.push({ name, detail: 'dry run' });
      continue;
    }
    try {
      await registry.create(caller, {
        name,
        credential_type: entry.type as string,
        provider: 'n8n',
        provider_credential_id: String(entry.id),
        value: JSON.stringify(entry.data),
        tags: options.tags ?? [],
        metadata: { imported_from: 'n8n', n8n_name: entry.name },
      });
      report.created.push({ name, detail: `n8n id ${String(entry.id)}, type ${entry.type as string}` });
    } catch (error) {
      if (!(error instanceof AegisError)) throw error;
      report.skipped.push({ name, reason: error.code === 'credential_exists' ? 'already exists' : error.message });
    }
  }
  return report;
}

function readExport(file: string): N8nExportedCredential[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ValidationError('file', `${file} is not readable JSON: ${(error as Error).message.split('\n')[0]}`);
  }
  // `n8n export:credentials --separate` writes one object per file; accept that as a list of one.
  const list = Array.isArray(parsed) ? parsed : [parsed];
  if (!list.every((entry) => typeof entry === 'object' && entry !== null)) {
    throw new ValidationError('file', `${file} must hold an array of credential objects, as \`n8n export:credentials --decrypted\` writes`);
  }
  return list as N8nExportedCredential[];
}

function describeProblem(entry: N8nExportedCredential): string | null {
  if (typeof entry.id !== 'string' && typeof entry.id !== 'number') return 'missing id';
  if (typeof entry.name !== 'string' || entry.name.trim() === '') return 'missing name';
  if (typeof entry.type !== 'string' || !/^[A-Za-z0-9._:/-]{1,128}$/.test(entry.type)) return 'missing or invalid type';
  if (typeof entry.data === 'string') return 'data is encrypted; export again with `n8n export:credentials --all --decrypted`';
  if (typeof entry.data !== 'object' || entry.data === null) return 'missing data';
  return null;
}

/** Replaces characters a credential name cannot hold with `-`, and adds the n8n id when two names collide. */
function safeName(n8nName: string, id: string | number, taken: ReadonlySet<string>): string {
  const base = n8nName
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9._/-]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^-+|-+$/g, '')
    .slice(0, 100) || 'n8n-credential';
  return taken.has(base) ? `${base}-${String(id).slice(0, 24)}` : base;
}
