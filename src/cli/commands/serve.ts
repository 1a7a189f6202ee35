import type { Command } from 'commander';
import pino from 'pino';
import { loadConfig } from '../../config/config.js';
import { buildApp } from '../../http/app.js';
import { createLogger } from '../../lib/logger.js';
import { openVault } from '../../vault.js';
import { parseInteger } from '../context.js';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('Start the AEGIS HTTP API (default 127.0.0.1:8012, SQLite at ./data/aegis.db)')
    .option('--host <address>', 'address to listen on (overrides AEGIS_HOST)')
    .option('--port <number>', 'TCP port (overrides AEGIS_PORT)', parseInteger)
    .action(async (options: { host?: string; port?: number }) => {
      const config = loadConfig();
      const host = options.host ?? config.host;
      const port = options.port ?? config.port;
      const log = createLogger(config.logLevel, pino.destination(1));
      const vault = await openVault(config, { log });
      const adminToken = await vault.tokens.createInitialAdmin();
      // Rotations a crash interrupted are finished or undone before the first request.
      await vault.rotation.recover();
      const app = await buildApp(vault);
      await app.listen({ host, port });
      const address = app.server.address();
      const listening = typeof address === 'object' && address !== null ? address.port : port;
      log.info({ host, port: listening, database: vault.db.dialect, location: vault.db.location }, 'AEGIS is serving');
      if (config.schedulerEnabled) vault.scheduler.start();
      else log.info('the scheduler is off (AEGIS_SCHEDULER=off); this process runs no scheduled jobs');
      if (adminToken) {
        // Printed once, outside the log, so it never lands in a log file that collects the JSON lines.
        process.stdout.write(`\nAEGIS admin token (shown once; store it now, e.g. export AEGIS_TOKEN=...):\n${adminToken}\n\n`);
      }
      const stop = async (signal: string) => {
        log.info({ signal }, 'stopping');
        // The running scheduler job ends and the leader lease is released before the database closes.
        await vault.scheduler.stop();
        await app.close();
        await vault.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    });
}
