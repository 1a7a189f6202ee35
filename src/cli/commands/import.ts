import type { Command } from 'commander';
import { importDotenv } from '../../import/dotenv-import.js';
import type { ImportReport } from '../../import/import-report.js';
import { importN8nExport } from '../../import/n8n-import.js';
import { cliCaller, collectTag, printJson, withVault } from '../context.js';

function printReport(report: ImportReport, json: boolean | undefined): void {
  if (json) return printJson(report);
  if (report.dry_run) {
    process.stdout.write(`dry run of ${report.source}, nothing written: ${report.created.length} would be created, ${report.skipped.length} skipped\n`);
  } else {
    process.stdout.write(`imported from ${report.source}: ${report.created.length} created, ${report.skipped.length} skipped\n`);
  }
  const verb = report.dry_run ? 'would create' : 'created';
  for (const entry of report.created) process.stdout.write(`  ${verb}  ${entry.name}${entry.detail ? ` (${entry.detail})` : ''}\n`);
  for (const entry of report.skipped) process.stdout.write(`  skipped  ${entry.name}: ${entry.reason}\n`);
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
}
