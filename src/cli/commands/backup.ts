import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { backupSqlite } from '../../backup/sqlite-backup.js';
import { backupLocationProblem, databaseFileProblem } from '../../backup/locations.js';
import { pgDumpCommand } from '../../backup/pg-dump.js';
import { rejectExisting } from '../../backup/secret-file.js';
import { loadConfig } from '../../config/config.js';
import { AuditAction } from '../../audit/audit.types.js';
import { CommandError, printJson } from '../context.js';
import { recordWithoutVault } from '../database-audit.js';

export function registerBackupCommand(program: Command): void {
  program
    .command('backup')
    .description('Copy the SQLite database to a file while servers keep running (mode 0600); on PostgreSQL, print the pg_dump command to use instead')
    .requiredOption('--to <file>', 'the backup file to write; keep it apart from the data folder and the key file')
    .option('--force', 'replace the file if it exists')
    .option('--allow-data-dir', 'accept a path inside the data folder or beside the SQLite file (a backup there is lost with the data)')
    .option('--json', 'print JSON')
    .action(async (options: { to: string; force?: boolean; allowDataDir?: boolean; json?: boolean }) => {
      const config = loadConfig();
      if (config.databaseUrl) {
        throw new CommandError(
          `aegis backup copies SQLite databases only, and this vault is on PostgreSQL. Back it up with pg_dump (it reads the password from PGPASSWORD or ~/.pgpass):\n  ${pgDumpCommand(config.databaseUrl, config.databaseSchema, options.to)}`,
        );
      }
      const folder = path.dirname(path.resolve(options.to));
      if (!fs.existsSync(folder)) throw new CommandError(`The folder ${folder} does not exist; create it (mode 0700) first.`);
      // Checked even with --allow-data-dir and --force. A copy renamed over the live file or a journal
      // leaves running servers writing to the unlinked file, which corrupts the vault.
      const overwritesDatabase = databaseFileProblem(options.to, config);
      if (overwritesDatabase) throw new CommandError(`${overwritesDatabase} Nothing was written.`);
      const problem = backupLocationProblem(options.to, config, {
        outsideDataDir: options.allowDataDir !== true,
        apartFromSqliteFile: options.allowDataDir !== true,
        apartFromKeyFile: true,
      });
      if (problem) throw new CommandError(`${problem}${options.allowDataDir ? '' : ' (--allow-data-dir accepts a path inside the data folder or beside the SQLite file.)'} Nothing was written.`);
      rejectExisting(options.to, options.force === true);

      const result = await backupSqlite(config.sqlitePath, options.to, options.force === true);
      const file = path.resolve(options.to);
      // A copy of the database is a copy of every sealed value, so it is on record like a reveal.
      const audit = await recordWithoutVault(
        { credentialName: '*', action: AuditAction.databaseBackedUp, target: `file:${file}`, success: true, details: { bytes: result.bytes, credentials: result.credentials } },
        'backup',
      );
      if (options.json) {
        return printJson({ file, source: config.sqlitePath, bytes: result.bytes, credentials: result.credentials, audit_entries: result.auditEntries, audit_entry: audit });
      }
      process.stdout.write(
        `copied ${config.sqlitePath} to ${options.to} (${result.bytes} bytes, ${result.credentials} credentials, ${result.auditEntries} audit entries, integrity check ok, mode 0600)\n` +
          `audit entry: ${audit}\n` +
          'The copy holds encrypted values only; restoring it needs the master keys too (`aegis keys backup`).\n',
      );
    });
}
