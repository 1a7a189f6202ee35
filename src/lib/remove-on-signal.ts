import fs from 'node:fs';

/**
 * Removes `paths` and exits when SIGINT or SIGTERM arrives, until the returned function is called, so
 * a command stopped while it writes `file` leaves no partial file behind. For command-line processes
 * only: a server must not exit from a signal handler before its graceful shutdown.
 */
export function removeOnSignal(paths: string[], file: string): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    for (const partial of paths) fs.rmSync(partial, { force: true });
    process.stderr.write(`aegis: stopped by ${signal}; ${file} was not written.\n`);
    // The shell's convention for a process ended by a signal: 128 plus the signal's number.
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
