import type tls from 'node:tls';
import type { Command } from 'commander';
import pino from 'pino';
import { loadConfig } from '../../config/config.js';
import { buildApp } from '../../http/app.js';
import { createShutdown } from '../../http/shutdown.js';
import { checkListenAddress, describeCertificate, loadTlsPairAtStartup, reloadTlsPair, warnAboutCertificateValidity } from '../../http/tls.js';
import { createLogger } from '../../lib/logger.js';
import { openVault } from '../../vault.js';
import { integerBetween } from '../context.js';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('Start the AEGIS HTTP API (default 127.0.0.1:8012, SQLite at ./data/aegis.db); HTTPS when AEGIS_TLS_CERT_FILE and AEGIS_TLS_KEY_FILE are set')
    .option('--host <address>', 'address to listen on (overrides AEGIS_HOST); a non-loopback address needs TLS or AEGIS_ALLOW_INSECURE_LISTEN=on')
    .option('--port <number>', 'TCP port, 0 to 65535 (overrides AEGIS_PORT)', integerBetween(0, 65_535))
    .action(async (options: { host?: string; port?: number }) => {
      const config = loadConfig();
      const host = options.host ?? config.host;
      const port = options.port ?? config.port;
      // Both checks run before the vault opens, so a rejected start writes no database or key file.
      checkListenAddress(host, config);
      const tlsPair = config.tls ? loadTlsPairAtStartup(config.tls) : undefined;

      // Asynchronous writes: under load, lines written while a write is under way go out together in the
      // next one instead of one system call per request. The exit below flushes what is left.
      const destination = pino.destination({ dest: 1, sync: false });
      const log = createLogger(config.logLevel, destination);
      const vault = await openVault(config, { log });
      const adminToken = await vault.tokens.createInitialAdmin();
      // Rotations a crash interrupted are finished or undone, and n8n applies it interrupted get their
      // audit entries, before the first request.
      await vault.rotation.recover();
      await vault.n8n.recoverApplies();
      const app = await buildApp(vault, tlsPair ? { https: tlsPair } : {});
      // Created before listening, so it receives every request and can close kept-alive connections on shutdown.
      const shutdown = createShutdown({
        app,
        vault,
        log,
        timeoutSeconds: config.shutdownTimeoutSeconds,
        exit: (code) => {
          destination.flushSync();
          process.exit(code);
        },
      });
      await app.listen({ host, port });
      const address = app.server.address();
      const listening = typeof address === 'object' && address !== null ? address.port : port;
      log.info(
        {
          host,
          port: listening,
          tls: tlsPair !== undefined,
          ...(tlsPair ? { certificate: describeCertificate(tlsPair.cert) } : {}),
          database: vault.db.dialect,
          location: vault.db.location,
        },
        'AEGIS is serving',
      );
      if (tlsPair && config.tls) warnAboutCertificateValidity(tlsPair.cert, config.tls.certFile, log);
      if (config.schedulerEnabled) vault.scheduler.start();
      else log.info('the scheduler is off (AEGIS_SCHEDULER=off); this process runs no scheduled jobs');
      if (adminToken) {
        // Printed once, outside the log, so it never lands in a log file that collects the JSON lines.
        process.stdout.write(`\nAEGIS admin token (shown once; store it now, e.g. export AEGIS_TOKEN=...):\n${adminToken}\n\n`);
      }

      // Without a handler SIGHUP would end the process, so it is handled even when there is nothing to reload.
      process.on('SIGHUP', () => {
        if (config.tls) reloadTlsPair(app.server as unknown as tls.Server, config.tls, log);
        else log.info('received SIGHUP; AEGIS serves plain HTTP, so there is no certificate to reload');
      });
      process.on('SIGINT', shutdown);
      process.on('SIGTERM', shutdown);
    });
}
