import type { Command } from 'commander';
import { LATEST_MIGRATION } from '../../db/migrate.js';
import { printJson, withVault } from '../context.js';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('Bring the database schema up to date and exit. Every command and aegis serve do this when they open the vault; run it to migrate before starting servers')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withVault(async (vault) => {
        const applied = vault.appliedMigrations;
        if (options.json) printJson({ applied, latest: LATEST_MIGRATION });
        else if (applied.length === 0) process.stdout.write(`the database schema is up to date (${LATEST_MIGRATION})\n`);
        else process.stdout.write(`applied ${applied.length} migrations (${applied.join(', ')}); the schema is now at ${LATEST_MIGRATION}\n`);
      });
    });
}
