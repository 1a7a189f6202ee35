/**
 * Builds the pg_dump command that backs up AEGIS's schema of the configured PostgreSQL database, with
 * each connection setting as its own option. The password is left out: pg_dump reads it from
 * PGPASSWORD or ~/.pgpass, and a command line may end up in shell history or a ticket.
 */
export function pgDumpCommand(databaseUrl: string, schema: string | undefined, file: string): string {
  const options = ['--format=custom', `--schema=${schema ?? 'public'}`, `--file=${file}`];
  try {
    const url = new URL(databaseUrl);
    if (url.hostname) options.push(`--host=${decodeURIComponent(url.hostname)}`);
    if (url.port) options.push(`--port=${url.port}`);
    if (url.username) options.push(`--username=${decodeURIComponent(url.username)}`);
    const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    if (database) options.push(`--dbname=${database}`);
  } catch {
    options.push('--dbname=DATABASE');
  }
  return ['pg_dump', ...options.map(shellQuote)].join(' ');
}

/** Quotes one shell word when it contains anything beyond a safe set of characters. */
function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
