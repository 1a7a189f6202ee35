import { AuditAction } from '../../audit/audit.types.js';
import { AegisError } from '../../lib/errors.js';
import { isValidCredentialName } from '../../lib/names.js';
import { findCredentialByName } from '../../registry/credentials.repository.js';
import type { Caller } from '../../tokens/caller.js';
import type { ImportReport } from '../import-report.js';
import { FernetError, verifyFernetToken, type FernetKey } from './fernet.js';
import { LEGACY_METADATA_KEY, legacyFingerprint, planCredential, type CredentialPlan, type LegacyOrigin } from './legacy-plan.js';
import { describeSourceUrl, readLegacyDatabase, type LegacyCredentialRow, type LegacyData } from './legacy-source.js';
import { writeCredentialPlan, type LegacyImportTarget } from './legacy-writer.js';

export interface LegacyImportOptions {
  /** The legacy PostgreSQL URL; it may contain a password, so it is never printed or stored. */
  from: string;
  schema: string;
  key: FernetKey;
  /** The key's source as the wrong-key message names it: an option and its argument, never the key. */
  keySource: string;
  providerConfigs: Readonly<Record<string, Record<string, unknown>>>;
  /** Writes the credentials when true; otherwise reports what a real run would do and writes nothing. */
  apply: boolean;
}

/** The import report with the rows that cannot be carried over, each with its reason. */
export interface LegacyImportReport extends ImportReport {
  not_carried_over: Array<{ name: string; reason: string }>;
  /** Facts about the whole source, such as legacy tables the schema lacks. */
  notes: string[];
}

/** Raised when no stored value verifies under the given key, before anything is listed or written. */
export class LegacyKeyMismatchError extends AegisError {
  constructor(message: string) {
    super(400, 'legacy_key_mismatch', message);
  }
}

/**
 * Migrates the credentials of an earlier AEGIS deployment: reads its tables read-only, checks the key,
 * decrypts every version and, with `apply`, writes each credential in its own transaction, sealed
 * under AEGIS's envelope scheme. A credential imported before from the same legacy row is skipped, and
 * one whose legacy row changed since is reported, never overwritten. No value reaches the report.
 */
export async function importLegacy(target: LegacyImportTarget, caller: Caller, options: LegacyImportOptions): Promise<LegacyImportReport> {
  const source = describeSourceUrl(options.from, options.schema);
  const data = await readLegacyDatabase(options.from, options.schema);
  checkKeyMatches(data, options.key, options.keySource, source);

  const report: LegacyImportReport = { source, dry_run: !options.apply, created: [], skipped: [], not_carried_over: [], notes: [] };
  for (const table of data.missingTables) report.notes.push(`the legacy schema has no ${table} table, so there was none of that to carry over`);
  const now = target.clock.now().toISOString();
  for (const row of data.credentials) {
    const skipReason = await alreadyImported(target, row, data);
    if (skipReason !== null) {
      report.skipped.push({ name: row.name, reason: skipReason });
      continue;
    }
    const outcome = planCredential(row, data, { key: options.key, adapters: target.adapters, providerConfigs: options.providerConfigs, now });
    if ('rejected' in outcome) {
      report.not_carried_over.push({ name: row.name, reason: outcome.rejected });
      continue;
    }
    if (options.apply && !(await writeCredentialPlan(target, caller, outcome.plan, source))) {
      report.skipped.push({ name: row.name, reason: 'a credential of this name was created while the import ran' });
      continue;
    }
    report.created.push({ name: row.name, detail: describePlan(outcome.plan) });
  }
  // A run that changed nothing writes nothing, not even a summary, so repeating an import leaves the vault as it was.
  if (options.apply && report.created.length > 0) await recordSummary(target, caller, report);
  return report;
}

/**
 * Fails fast when the key is wrong for every row: it checks each stored token's HMAC (cheap, no
 * decryption) and raises one message when none verifies, in place of one failure per row.
 */
function checkKeyMatches(data: LegacyData, key: FernetKey, keySource: string, source: string): void {
  const tokens = [
    ...data.credentials.map((row) => row.encrypted_value),
    ...[...data.versions.values()].flat().map((version) => version.encrypted_value),
  ].filter((token): token is string => token !== null);
  if (tokens.length === 0) return;
  const verified = tokens.filter((token) => {
    try {
      verifyFernetToken(key, token);
      return true;
    } catch (error) {
      if (error instanceof FernetError) return false;
      throw error;
    }
  }).length;
  if (verified > 0) return;
  throw new LegacyKeyMismatchError(
    `The legacy key from ${keySource} does not match ${source}: none of its ${tokens.length} stored values verifies under it (HMAC-SHA256). ` +
      'Pass the master key the earlier service was started with, exactly (a trailing newline changes the key), or its Fernet key with --legacy-key-file. Nothing was written.',
  );
}

/** Returns why a legacy row is skipped because AEGIS already has its name, or null when the name is free. */
async function alreadyImported(target: LegacyImportTarget, row: LegacyCredentialRow, data: LegacyData): Promise<string | null> {
  if (!isValidCredentialName(row.name)) return null;
  const existing = await findCredentialByName(target.db.kysely, row.name);
  if (!existing) return null;
  const origin = existing.metadata[LEGACY_METADATA_KEY] as Partial<LegacyOrigin> | undefined;
  if (origin?.legacy_id !== row.id) return 'a credential of this name already exists in AEGIS and was not imported from this legacy row';
  if (origin.fingerprint === legacyFingerprint(row, data.versions.get(row.id) ?? [])) return 'already imported, unchanged';
  return 'changed in the legacy database since it was imported; not overwritten. Compare the two, then update the AEGIS credential with AEGIS commands';
}

function describePlan(plan: CredentialPlan): string {
  const numbers = plan.versions.map((version) => version.version);
  const current = plan.versions.find((version) => version.isCurrent)!.version;
  const parts = [
    plan.credential.provider,
    numbers.length === 1 ? `version ${numbers[0]}` : `versions ${numbers.join(', ')} (current ${current})`,
  ];
  if (plan.rotations.length > 0) parts.push(count(plan.rotations.length, 'rotation'));
  if (plan.healthChecks.length > 0) parts.push(count(plan.healthChecks.length, 'health check'));
  return [parts.join(', '), ...plan.notes].join('; ');
}

function count(total: number, noun: string): string {
  return `${total} ${noun}${total === 1 ? '' : 's'}`;
}

async function recordSummary(target: LegacyImportTarget, caller: Caller, report: LegacyImportReport): Promise<void> {
  await target.audit.record({
    credentialName: '*',
    action: AuditAction.imported,
    actor: caller.actor,
    ipAddress: caller.ipAddress,
    target: report.source,
    success: true,
    details: {
      format: 'aegis-legacy',
      created: report.created.map((entry) => entry.name),
      skipped: report.skipped,
      not_carried_over: report.not_carried_over,
    },
  });
}
