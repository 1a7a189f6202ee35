import type { Command } from 'commander';
import { importDotenv } from '../../import/dotenv-import.js';
import type { ImportReport } from '../../import/import-report.js';
import { importN8nExport } from '../../import/n8n-import.js';
import { deriveLegacyKey, readLegacyKeyFile } from '../../import/legacy/legacy-key.js';
import { importLegacy, type LegacyImportReport } from '../../import/legacy/legacy-import.js';
import { readProviderConfigs } from '../../import/legacy/provider-configs.js';
import type { FernetKey } from '../../import/legacy/fernet.js';
import { escapeControls } from '../../lib/text.js';
import { CommandError, cliCaller, collectTag, printJson, withVault } from '../context.js';

function printReport(report: ImportReport, json: boolean | undefined): void {
  if (json) return printJson(report);
  if (report.dry_run) {
    process.stdout.write(`dry run of ${report.source}, nothing written: ${report.created.length} would be created, ${report.skipped.length} skipped\n`);
  } else {
    process.stdout.write(`imported from ${report.source}: ${report.created.length} created, ${report.skipped.length} skipped\n`);
  }
  const verb = report.dry_run ? 'would create' : 'created';
  for (const entry of report.created) process.stdout.write(`  ${verb}  ${entry.name}${entry.detail ? ` (${entry.detail})` : ''}\n`);
  // A skipped entry keeps the name from the file (an n8n name, or a --prefix), so control characters
  // are escaped before they reach a terminal.
  for (const entry of report.skipped) process.stdout.write(`  skipped  ${escapeControls(entry.name)}: ${escapeControls(entry.reason)}\n`);
}

function printLegacyReport(report: LegacyImportReport, json: boolean | undefined): void {
  if (json) return printJson(report);
  const counts = `${report.skipped.length} skipped, ${report.not_carried_over.length} not carried over`;
  if (report.dry_run) {
    process.stdout.write(`dry run of ${report.source}, nothing written: ${report.created.length} would be created, ${counts}. Run again with --apply to import.\n`);
  } else {
    process.stdout.write(`imported from ${report.source}: ${report.created.length} created, ${counts}\n`);
  }
  const verb = report.dry_run ? 'would create' : 'created';
  for (const entry of report.created) process.stdout.write(`  ${verb}  ${entry.name}${entry.detail ? ` (${entry.detail})` : ''}\n`);
  for (const entry of report.skipped) process.stdout.write(`  skipped  ${entry.name}: ${entry.reason}\n`);
  // Rejected names and providers come from the legacy rows unchecked, so control characters are escaped before they reach a terminal.
  for (const entry of report.not_carried_over) process.stdout.write(`  not carried over  ${escapeControls(entry.name)}: ${escapeControls(entry.reason)}\n`);
  for (const note of report.notes) process.stdout.write(`  note: ${note}\n`);
}

interface LegacyOptions {
  from: string;
  schema: string;
  legacyPassphraseEnv?: string;
  legacyKeyFile?: string;
  providerConfig?: string;
  apply?: boolean;
  json?: boolean;
}

/** Reads the legacy key from exactly one of the two key options; returns it with a label that names the option, never the key. */
async function legacyKey(options: LegacyOptions): Promise<{ key: FernetKey; keySource: string }> {
  if ((options.legacyPassphraseEnv === undefined) === (options.legacyKeyFile === undefined)) {
    throw new CommandError('Pass exactly one of --legacy-passphrase-env VAR (the old master key, in that environment variable) and --legacy-key-file FILE (the old Fernet key).', 2);
  }
  if (options.legacyKeyFile !== undefined) return { key: readLegacyKeyFile(options.legacyKeyFile), keySource: `--legacy-key-file ${options.legacyKeyFile}` };
  const variable = options.legacyPassphraseEnv!;
  const masterKey = process.env[variable];
  if (masterKey === undefined || masterKey === '') throw new CommandError(`The environment variable ${variable} (--legacy-passphrase-env) is not set or empty. Set it to the earlier service's master key.`, 2);
  return { key: await deriveLegacyKey(masterKey), keySource: `the environment variable ${variable}` };
}

export function registerImportCommands(program: Command): void {
  const importCommand = program.command('import').description('Register credentials from files other tools write');

  importCommand
    .command('dotenv <file>')
    .description('Register each variable of a .env file as an env credential with its value sealed; the file must lie in AEGIS_ENV_ALLOWED_DIRS')
    .option('--prefix <text>', 'put before each variable name to make the credential name, e.g. billing/')
    .option('--tag <tag>', 'tag every imported credential; repeatable', collectTag)
    .option('--dry-run', 'report what would be created and skipped, without writing anything')
    .option('--json', 'print JSON')
    .action(async (file: string, options: { prefix?: string; tag?: string[]; dryRun?: boolean; json?: boolean }) => {
      await withVault(async (vault) => {
        const report = await importDotenv(vault, cliCaller(), file, { prefix: options.prefix, tags: options.tag, dryRun: options.dryRun });
        printReport(report, options.json);
      });
    });

  importCommand
    .command('n8n <file>')
    .description('Register the credentials of `n8n export:credentials --all --decrypted` output as n8n credentials')
    .option('--tag <tag>', 'tag every imported credential; repeatable', collectTag)
    .option('--dry-run', 'report what would be created and skipped, without writing anything')
    .option('--json', 'print JSON')
    .action(async (file: string, options: { tag?: string[]; dryRun?: boolean; json?: boolean }) => {
      await withVault(async (vault) => {
        const report = await importN8nExport(vault, cliCaller(), file, { tags: options.tag, dryRun: options.dryRun });
        printReport(report, options.json);
      });
    });

  importCommand
    .command('legacy')
    .description('Migrate an earlier AEGIS deployment (Fernet-encrypted values in PostgreSQL) into this vault. Without --apply it only reports')
    .requiredOption('--from <url>', 'the legacy PostgreSQL database, e.g. postgres://aegis@db.internal:5432/aegis (put a password in PGPASSWORD, not the URL)')
    .option('--schema <name>', 'the schema that contains the legacy tables', 'public')
    .option('--legacy-passphrase-env <var>', 'the environment variable that holds the old master key, from which the Fernet key is derived (PBKDF2-SHA256)')
    .option('--legacy-key-file <file>', 'a file holding the old Fernet key itself (urlsafe base64 of 32 bytes)')
    .option('--provider-config <file>', 'a JSON object of legacy credential names to provider_config, needed for env and supabase credentials')
    .option('--apply', 'write the credentials; without it nothing is written')
    .option('--json', 'print JSON')
    .action(async (options: LegacyOptions) => {
      const { key, keySource } = await legacyKey(options);
      const providerConfigs = options.providerConfig === undefined ? {} : readProviderConfigs(options.providerConfig);
      await withVault(async (vault) => {
        const report = await importLegacy(vault, cliCaller(), { from: options.from, schema: options.schema, key, keySource, providerConfigs, apply: options.apply ?? false });
        printLegacyReport(report, options.json);
      });
    });
}
