import fs from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../../config/config.js';
import { LATEST_MIGRATION } from '../../db/migrate.js';
import { CommandError, printJson, withVault } from '../context.js';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('Bring the database schema up to date and exit. Every command and aegis serve do this when they open the vault; run it to migrate before starting servers')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const config = loadConfig();
      // Opening a new vault registers its first master key. Without a configured key that would be a
      // development key in the data folder, and the vault would be tied to it before the real key is set.
      if (config.keySource.kind === 'file' && config.keySource.generated && !fs.existsSync(config.keySource.path)) {
        throw new CommandError(
          'No master key is configured, so migrating would generate a development key in the data folder. Set AEGIS_MASTER_KEY_FILE, AEGIS_MASTER_KEY or AEGIS_MASTER_PASSPHRASE first, or run `aegis init` for a development vault.',
          2,
        );
      }
      await withVault(async (vault) => {
        const applied = vault.appliedMigrations;
        if (options.json) printJson({ applied, latest: LATEST_MIGRATION });
        else if (applied.length === 0) process.stdout.write(`the database schema is up to date (${LATEST_MIGRATION})\n`);
        else process.stdout.write(`applied ${applied.length} migrations (${applied.join(', ')}); the schema is now at ${LATEST_MIGRATION}\n`);
      }, config, { create: true });
    });
}
