import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'dotenv';
import { AegisError } from '../lib/errors.js';
import { isValidCredentialName } from '../lib/names.js';
import type { RegistryService } from '../registry/registry.service.js';
import type { Caller } from '../tokens/caller.js';
import { emptyReport, type ImportReport } from './import-report.js';

export interface DotenvImportOptions {
  /** Put before each variable name to make the credential name, e.g. `billing/`. */
  prefix?: string;
  tags?: string[];
  dryRun?: boolean;
}

/**
 * Registers each variable of a `.env` file as an `env` credential that points back at the file and
 * variable, with the variable's value sealed as version 1. Existing names, empty values and names AEGIS
 * cannot use are skipped with the reason.
 */
export async function importDotenv(registry: RegistryService, caller: Caller, file: string, options: DotenvImportOptions = {}): Promise<ImportReport> {
  const absolute = path.resolve(file);
  const variables = parse(fs.readFileSync(absolute));
  const report = emptyReport(absolute);
  for (const [variable, value] of Object.entries(variables)) {
    const name = `${options.prefix ?? ''}${variable}`;
    if (!isValidCredentialName(name)) {
      report.skipped.push({ name, reason: 'not a valid credential name (letters, digits, . _ - / up to 128 characters)' });
      continue;
    }
    if (value === '') {
      report.skipped.push({ name, reason: 'empty value' });
      continue;
    }
    if (options.dryRun) {
      report.created.push({ name, detail: 'dry run' });
      continue;
    }
    try {
      await registry.create(caller, {
        name,
        credential_type: 'env_var',
        provider: 'env',
        provider_config: { file: absolute, variable },
        value,
        tags: options.tags ?? [],
        metadata: { imported_from: 'dotenv' },
      });
      report.created.push({ name });
    } catch (error) {
      if (!(error instanceof AegisError)) throw error;
      report.skipped.push({ name, reason: error.code === 'credential_exists' ? 'already exists' : error.message });
    }
  }
  return report;
}
