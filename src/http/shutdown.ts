import type http from 'node:http';
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
  const closeAfterResponses = trackResponses(app.server);
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

    closeAfterResponses();
    void stopInOrder(app, vault).then(
      () => {
        clearTimeout(timer);
        log.info({ signal }, 'stopped');
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(timer);
        log.error({ err: { type: (error as Error).name, message: (error as Error).message } }, 'stopping failed; exiting with status 1');
        exit(1);
      },
    );
  };
}

/**
 * Keeps the responses in flight, and returns a function that makes each of them close its connection.
 * The server only finishes closing once every connection has ended, and a client with a kept-alive
 * connection would otherwise hold it open after its last response. Call this before the server listens.
 */
function trackResponses(server: http.Server): () => void {
  const inFlight = new Set<http.ServerResponse>();
  server.on('request', (_request: http.IncomingMessage, response: http.ServerResponse) => {
    inFlight.add(response);
    response.once('close', () => inFlight.delete(response));
  });
  return () => {
    for (const response of inFlight) {
      if (!response.headersSent) {
        // Node sends `connection: close` and ends the connection once this response is finished.
        response.setHeader('connection', 'close');
      } else {
        const socket = response.socket;
        response.once('finish', () => socket?.end());
      }
    }
  };
}

async function stopInOrder(app: FastifyInstance, vault: ShutdownOptions['vault']): Promise<void> {
  const rotations = vault.rotation.engine.inFlight;
  // First, so a scheduled run starts no further credentials while the server drains.
  rotations.stopAccepting();
  // `app.close` stops listening, responds 503 to new requests on kept-alive connections, and resolves once
  // every in-flight request has its response. The scheduler's running job ends and its lease is released.
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
