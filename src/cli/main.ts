import { Command, CommanderError } from 'commander';
import { AEGIS_VERSION } from '../http/health.routes.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerBackupCommand } from './commands/backup.js';
import { registerCredentialCommands } from './commands/credentials.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerImportCommands } from './commands/import.js';
import { registerInitCommand } from './commands/init.js';
import { registerKeyCommands } from './commands/keys.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerRotationCommands } from './commands/rotation.js';
import { registerServeCommand } from './commands/serve.js';
import { registerTokenCommands } from './commands/tokens.js';
import { reportFailure } from './context.js';
import { rejectRepeatedOptions } from './repeated-options.js';
import { reportUsageErrors } from './usage-errors.js';

export function buildProgram(): Command {
  const program = new Command('aegis')
    .description('AEGIS: a self-hosted credential vault for automation platforms and AI agents.\nConfiguration comes from a file (--config or AEGIS_CONFIG) and environment variables; see docs/configuration.md.')
    .version(AEGIS_VERSION)
    .option('--config <file>', 'configuration file (overrides AEGIS_CONFIG); environment variables override its settings')
    .hook('preAction', (command) => {
      const file = command.opts<{ config?: string }>().config;
      if (file !== undefined) process.env.AEGIS_CONFIG = file;
    })
    // Program options count only before the command, so `rollback NAME --version 2` reaches rollback
    // instead of printing the program's version.
    .enablePositionalOptions();
  registerServeCommand(program);
  registerInitCommand(program);
  registerCredentialCommands(program);
  registerTokenCommands(program);
  registerAuditCommands(program);
  registerKeyCommands(program);
  registerBackupCommand(program);
  registerImportCommands(program);
  registerRotationCommands(program);
  registerDoctorCommand(program);
  registerMigrateCommand(program);
  // Applied to every command once all are registered, so each new command follows the same rules.
  for (const command of commandTree(program)) {
    rejectRepeatedOptions(command);
    reportUsageErrors(command);
  }
  return program;
}

function commandTree(command: Command): Command[] {
  return [command, ...command.commands.flatMap(commandTree)];
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    reportFailure(error);
  }
}
