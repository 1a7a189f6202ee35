import fs from 'node:fs';
import os from 'node:os';
import { InvalidArgumentError } from 'commander';
import pino from 'pino';
import { loadConfig, type Config } from '../config/config.js';
import { isConnectionRejected, isDatabaseUnavailable, isSqliteLockTimeout } from '../db/database-errors.js';
import { AegisError, StartupError } from '../lib/errors.js';
import { createLogger } from '../lib/logger.js';
import { TAG_PATTERN } from '../lib/names.js';
import { escapeControls } from '../lib/text.js';
import { localCaller, type Caller } from '../tokens/caller.js';
import { openVault, type Vault } from '../vault.js';

/**
 * Exit code of a command called wrongly: an unknown command or option, a missing or extra argument, an
 * option given twice, or an input that a command rejects before it does its work. README.md lists the cases.
 */
export const USAGE_EXIT_CODE = 2;

/** Thrown by a command to end with a message and an exit code, without a stack trace. */
export class CommandError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** The caller for commands run on the server: the operating-system user, with every scope. */
export function cliCaller(): Caller {
  return localCaller(`cli:${os.userInfo().username}`);
}

/**
 * Opens the vault for one command, runs it and closes the vault. Logs go to stderr at the level
 * `cliLogLevel` returns, so stdout carries only the command's output.
 */
export async function withVault<T>(run: (vault: Vault) => Promise<T>, config: Config = loadConfig(), options: { create?: boolean } = {}): Promise<T> {
  // Only the commands that set up a vault create one: elsewhere a mistyped folder would yield an
  // empty new vault with a development key, and a listing of nothing that looks like success.
  if (options.create !== true && config.databaseUrl === undefined && !fs.existsSync(config.sqlitePath)) {
    throw new CommandError(
      `No vault at ${config.sqlitePath}: the file does not exist. Check AEGIS_DATA_DIR (or AEGIS_SQLITE_PATH), or create the vault with \`aegis init\` or \`aegis serve\`.`,
    );
  }
  const log = createLogger(cliLogLevel(config), pino.destination(2));
  const vault = await openVault(config, { log });
  log.debug({ database: vault.db.dialect, location: vault.db.location }, 'opened the vault');
  try {
    return await run(vault);
  } finally {
    await vault.close();
  }
}

/**
 * Returns the log level of a CLI command: `config.logLevel` when AEGIS_LOG_LEVEL or the configuration
 * file's `logging.level` sets it, and `warn` otherwise, because `config.logLevel` falls back to `info`,
 * the default of `aegis serve`.
 */
function cliLogLevel(config: Config): string {
  return config.logLevelSet ? config.logLevel : 'warn';
}

/** Prints an error the user can act on and sets the exit code; anything unexpected keeps its stack on stderr. */
export function reportFailure(error: unknown): void {
  if (error instanceof CommandError) {
    process.stderr.write(`aegis: ${error.message}\n`);
    process.exitCode = error.exitCode;
  } else if (error instanceof AegisError) {
    // The message quotes what the user typed, such as a credential name, which may contain terminal escapes.
    process.stderr.write(`aegis: ${escapeControls(cliMessage(error))}\n`);
    process.exitCode = 1;
  } else if (error instanceof StartupError) {
    process.stderr.write(`aegis: ${error.message}\n`);
    process.exitCode = 1;
  } else if (isListenError(error)) {
    process.stderr.write(`aegis: cannot listen (${error.message}). Stop the process that uses the address, or set AEGIS_HOST and AEGIS_PORT to another.\n`);
    process.exitCode = 1;
  } else if (isSqliteLockTimeout(error)) {
    process.stderr.write('aegis: the SQLite database file stayed locked by another process (a start applying migrations, a long backup, prune or key rotation) past the busy timeout. Run the command again once that has finished.\n');
    process.exitCode = 1;
  } else if (isConnectionRejected(error)) {
    // PostgreSQL's message names the database or role, never the password.
    process.stderr.write(
      `aegis: PostgreSQL rejected the connection (${(error as Error).message}). Correct the database name, user or password in DATABASE_URL, or create the database, then run the command again; \`aegis doctor\` checks the connection.\n`,
    );
    process.exitCode = 1;
  } else if (isDatabaseUnavailable(error)) {
    // Node's error for a refused connection to several addresses has an empty message and a code.
    const detail = (error instanceof Error && error.message) || String((error as { code?: unknown } | null)?.code ?? error);
    process.stderr.write(`aegis: cannot reach the database (${detail}). Check DATABASE_URL and that PostgreSQL is running and accepts connections; \`aegis doctor\` checks the connection.\n`);
    process.exitCode = 1;
  } else if (isCorruptDatabase(error)) {
    process.stderr.write('aegis: the SQLite database file is damaged or is not a database. Run `aegis doctor` for details, and restore the vault from its last backup (docs/deployment.md).\n');
    process.exitCode = 1;
  } else {
    process.stderr.write(`aegis: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}

/**
 * Rewrites the next step in an error's message as a command, because the registry's messages are
 * written for API clients and name the HTTP request to send.
 */
function cliMessage(error: AegisError): string {
  if (error.code === 'credential_not_found') {
    return error.message.replace(/List credentials with GET \/credentials\.$/, 'List credentials with `aegis credentials list`.');
  }
  return error.message;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints rows as aligned columns under a header. */
export function printTable(headers: string[], rows: Array<Array<string | number | null | undefined>>): void {
  const text = rows.map((row) => row.map((cell) => (cell === null || cell === undefined ? '-' : escapeControls(String(cell)))));
  const widths = headers.map((header, column) => Math.max(header.length, ...text.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  process.stdout.write(`${line(headers)}\n`);
  for (const row of text) process.stdout.write(`${line(row)}\n`);
}

/** Reads a secret from standard input, dropping one trailing newline (as `echo` adds). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const tagRegex = new RegExp(TAG_PATTERN);

/** Collects a repeatable `--tag`, rejecting a tag the HTTP API would reject too. */
export function collectTag(value: string, previous: string[] = []): string[] {
  if (!tagRegex.test(value)) throw new InvalidArgumentError('Use 1 to 64 letters, digits or . _ : / -.');
  return collect(value, previous);
}

export function parseInteger(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError('Expected an integer.');
  const parsed = Number(value);
  // Past 2^53 a JavaScript number loses digits, and SQLite fails a LIMIT or OFFSET past 2^63 with an error.
  if (!Number.isSafeInteger(parsed)) throw new InvalidArgumentError(`Expected an integer between ${Number.MIN_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}.`);
  return parsed;
}

/** Returns an option parser for whole numbers of at least `min`, such as a count or a batch size. */
export function integerAtLeast(min: number): (value: string) => number {
  return (value) => {
    const parsed = parseInteger(value);
    if (parsed < min) throw new InvalidArgumentError(`Expected an integer of at least ${min}.`);
    return parsed;
  };
}

/** Returns an option parser for whole numbers from `min` to `max`, such as a TCP port. */
export function integerBetween(min: number, max: number): (value: string) => number {
  return (value) => {
    const parsed = parseInteger(value);
    if (parsed < min || parsed > max) throw new InvalidArgumentError(`Expected an integer from ${min} to ${max}.`);
    return parsed;
  };
}

/** Recognizes SQLite's errors for a damaged file or something that is not a database at all. */
/** Tells whether the server could not listen: the address is in use, or the port needs privileges. */
function isListenError(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EADDRINUSE' || (code === 'EACCES' && error.message.startsWith('listen '));
}

function isCorruptDatabase(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB';
}
