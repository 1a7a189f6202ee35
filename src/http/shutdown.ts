import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Vault } from '../vault.js';

export interface ShutdownOptions {
  app: FastifyInstance;
  vault: Pick<Vault, 'rotation' | 'scheduler' | 'close'>;
  log: Logger;
  /** Seconds to wait for requests, rotations and scheduler jobs before exiting with status 1. */
  timeoutSeconds: number;
  /** Ends the process; `process.exit` unless a test passes another. */
  exit?: (code: number) => void;
}

/**
 * Builds the handler of SIGTERM and SIGINT. The first signal stops the server in this order: accept no
 * new connections and no new rotations, let in-flight requests, rotations and scheduler jobs finish, release
 * the scheduler lease, close the database, exit 0. When that takes longer than `timeoutSeconds`, it logs
 * what is still running and exits 1; the next start's recovery then finishes or undoes interrupted
 * rotations. Signals that arrive while stopping are logged and change nothing.
 */
export function createShutdown(options: ShutdownOptions): (signal: NodeJS.Signals) => void {
  const { app, vault, log } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let stopping = false;

  return (signal) => {
    if (stopping) {
      log.warn({ signal }, 'already stopping; the signal is ignored');
      return;
    }
    stopping = true;
    log.info({ signal, timeoutSeconds: options.timeoutSeconds }, 'stopping: waiting for in-flight requests, rotations and scheduler jobs');

    const timer = setTimeout(() => {
      void describeUnfinished(app, vault).then((unfinished) => {
        log.error({ ...unfinished, timeoutSeconds: options.timeoutSeconds }, 'shutdown timed out; exiting with work unfinished, which the next start recovers');
        exit(1);
      });
    }, options.timeoutSeconds * 1000);

    void stopInOrder(app, vault).then(
      () => {
        clearTimeout(timer);
        log.info({ signal }, 'stopped');
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(timer);
        log.error({ error: (error as Error).message }, 'stopping failed; exiting');
        exit(1);
      },
    );
  };
}

async function stopInOrder(app: FastifyInstance, vault: ShutdownOptions['vault']): Promise<void> {
  const rotations = vault.rotation.engine.inFlight;
  // First, so a scheduled run starts no further credentials while the server drains.
  rotations.stopAccepting();
  // `app.close` stops listening, answers requests on kept-alive connections with 503, and resolves once
  // the in-flight requests have been answered. The scheduler's running job ends and its lease is released.
  await Promise.all([app.close(), vault.scheduler.stop()]);
  await rotations.settled();
  await vault.close();
}

/** Lists what keeps the server from stopping: rotations, scheduler jobs and open connections. */
async function describeUnfinished(app: FastifyInstance, vault: ShutdownOptions['vault']): Promise<Record<string, unknown>> {
  const openConnections = await new Promise<number | null>((resolve) => {
    app.server.getConnections((error, count) => resolve(error ? null : count));
  });
  return {
    rotations: vault.rotation.engine.inFlight.names(),
    schedulerJobs: vault.scheduler.runningJobs,
    openConnections,
  };
}
