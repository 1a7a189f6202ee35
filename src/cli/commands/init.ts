import type { Command } from 'commander';
import { describeKeySource } from '../../crypto/key-sources.js';
import { loadConfig } from '../../config/config.js';
import { withVault } from '../context.js';

export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description('Create the database, the master key (when none is configured) and the first admin token')
    .action(async () => {
      const config = loadConfig();
      await withVault(async (vault) => {
        const token = await vault.tokens.createInitialAdmin();
        process.stdout.write(`Vault ready: ${vault.db.dialect} at ${vault.db.location}\nMaster key: ${describeKeySource(config.keySource)}\n`);
        if (token) process.stdout.write(`Admin token (shown once; store it now):\n${token}\n`);
        else process.stdout.write('The vault already has tokens; no admin token was created. Use `aegis tokens create`.\n');
      }, config, { create: true });
    });

}
