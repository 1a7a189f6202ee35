import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'dotenv';
import { processIsGone } from '../../lib/process.js';

/**
 * Builds the pattern of a line that assigns `variable` as dotenv 17 reads it: optional leading space and
 * `export `, then `NAME=` or `NAME: `. The adapter allows only letters, digits and _ in `variable`, so it needs no escaping.
 */
function assignment(variable: string): RegExp {
  return new RegExp(`^(\\s*)(export\\s+)?${variable}(?:\\s*=|:\\s)`);
}

/** Reads one variable of a .env file with dotenv's rules; undefined when the file or variable is missing. */
export function readVariable(file: string, variable: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const variables = parse(text);
  // parse returns a plain object, so a missing `constructor` or `toString` would read as Object's own function.
  return Object.hasOwn(variables, variable) ? variables[variable] : undefined;
}

/**
 * Formats a value as dotenv 17 reads it back unchanged: bare when it contains only safe characters, else
 * in single quotes, double quotes or backticks, whichever the value does not contain. dotenv has no escapes
 * inside quotes, and it expands \n and \r inside double quotes. Returns null for values no form can
 * carry: a line break, or all three quote characters.
 */
export function formatValue(value: string): string | null {
  if (/^[A-Za-z0-9_\-.:/+=@,%!?*~^]*$/.test(value)) return value;
  // No environment variable can hold a NUL character, so no quoting helps.
  if (/[\r\n\u0000]/.test(value)) return null;
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"') && !value.includes('\\') && !value.includes('$')) return `"${value}"`;
  if (!value.includes('`')) return `\`${value}\``;
  return null;
}

/** Maximum rewrites of a file that another process keeps changing, after which AEGIS gives up. */
const maxRewrites = 5;

/** The end of a dotenv assignment after its value: spaces and an optional `# comment`. */
const trailingComment = /^(?:'(?:\\'|[^'])*'|"(?:\\"|[^"])*"|`(?:\\`|[^`])*`|[^#\r\n]*?)(\s+#.*)?\s*$/;

/**
 * Sets one variable in a .env file and keeps every other byte: other lines, comments, blank lines, their
 * order and line endings (LF or CRLF). The last assignment of the variable is replaced, because dotenv
 * and shells read the last one. Earlier duplicates and a `# comment` after the old value are kept. A
 * missing variable is appended. The result is parsed again, and the write is rejected unless every
 * other variable reads as before and this one reads as `value`.
 *
 * The file is replaced atomically: the new text goes to a temporary file in the same folder with the old
 * file's mode and owner, is flushed with fsync, and is renamed over the old one, so a reader sees the old
 * file or the new one, never a mix. Right before the rename the file is read again, and when another
 * process changed it meanwhile, the rewrite starts over from its new text, up to `maxRewrites` times.
 * NOTE: A write that lands between that last read and the rename is still lost, so the file should
 * have one writer at a time.
 */
export function writeVariable(file: string, variable: string, value: string): void {
  const formatted = formatValue(value);
  if (formatted === null) throw new Error(`the value of ${variable} cannot be written to a .env file (it contains a line break, a NUL character or all three quote characters)`);
  removeStaleTemporaries(file);
  for (let round = 1; round <= maxRewrites; round += 1) {
    const stat = fs.statSync(file);
    const text = fs.readFileSync(file, 'utf8');
    const updated = assignVariable(text, variable, formatted);
    checkOnlyVariableChanged(file, variable, value, text, updated);
    if (replaceIfUnchanged(file, text, updated, stat)) return;
  }
  throw new Error(`${file} changed during each of ${maxRewrites} rewrites of ${variable}, so AEGIS left it as the other writer made it. Retry once no other process writes the file.`);
}

/** Returns `text` with `variable` assigned the already formatted value, as `writeVariable` describes. */
function assignVariable(text: string, variable: string, formatted: string): string {
  const lines = text.split('\n');
  const pattern = assignment(variable);
  const index = lines.findLastIndex((line) => pattern.test(line));
  const newline = text.includes('\r\n') ? '\r\n' : '\n';
  const assigned = `${variable}=${formatted}`;
  if (index >= 0) {
    const old = lines[index]!;
    const carriageReturn = old.endsWith('\r') ? '\r' : '';
    const body = carriageReturn ? old.slice(0, -1) : old;
    const match = pattern.exec(body)!;
    const comment = trailingComment.exec(body.slice(match[0].length).trimStart())?.[1] ?? '';
    lines[index] = `${match[1]}${match[2] ?? ''}${assigned}${comment}${carriageReturn}`;
  } else {
    const appended = newline === '\r\n' ? `${assigned}\r` : assigned;
    if (lines[lines.length - 1] === '') lines.splice(lines.length - 1, 0, appended);
    else {
      // The file does not end with a line break: end the old last line first.
      if (newline === '\r\n') lines[lines.length - 1] += '\r';
      lines.push(appended);
    }
  }
  return lines.join('\n');
}

/** Rejects a rewrite that would change how dotenv reads any other variable (for example inside a multi-line value). */
function checkOnlyVariableChanged(file: string, variable: string, value: string, before: string, after: string): void {
  const expected = { ...parse(before), [variable]: value };
  const actual = parse(after);
  // The other variables come first, so the message names the one the rewrite would break.
  const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
  keys.delete(variable);
  for (const key of [...keys, variable]) {
    if (expected[key] !== actual[key]) {
      throw new Error(`rewriting ${variable} in ${file} would change how ${key} is read, so the file was left unchanged. Edit it by hand.`);
    }
  }
}

/** Builds the path of a temporary copy of `file` written by process `pid`, in the form `removeStaleTemporaries` matches. */
function temporaryName(file: string, pid: number): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.aegis-${pid}-${crypto.randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Removes the temporary copies of `file` left by AEGIS processes on this host that were killed between
 * writing the copy and renaming it. Each copy contains every variable of the file, the attempted value
 * included, so it must not outlive the rotation. Copies of running processes are left alone.
 * NOTE: the process id is checked on this host only. In a folder shared with another host, a copy that
 * a process there is still writing can be removed, and that write then fails with the file unchanged.
 */
function removeStaleTemporaries(file: string): void {
  const prefix = `.${path.basename(file)}.aegis-`;
  const directory = path.dirname(file);
  for (const entry of fs.readdirSync(directory)) {
    const pid = entry.startsWith(prefix) ? /^(\d+)-[0-9a-f]{12}\.tmp$/.exec(entry.slice(prefix.length))?.[1] : undefined;
    if (pid === undefined || Number(pid) === process.pid || !processIsGone(Number(pid))) continue;
    fs.rmSync(path.join(directory, entry), { force: true });
  }
}

/**
 * Replaces `file` with `text` through a temporary file and a rename, unless the file no longer contains
 * `expected`, the text the rewrite started from. Returns false, with the file left alone, in that case.
 */
function replaceIfUnchanged(file: string, expected: string, text: string, stat: fs.Stats): boolean {
  const mode = stat.mode & 0o7777;
  const directory = path.dirname(file);
  // A random name per write: two writes in the same millisecond must not collide.
  const temporary = temporaryName(file, process.pid);
  const handle = fs.openSync(temporary, 'wx', mode);
  try {
    try {
      fs.writeFileSync(handle, text);
      fs.fchmodSync(handle, mode);
      keepOwner(handle, stat, file);
      fs.fsyncSync(handle);
    } finally {
      fs.closeSync(handle);
    }
    if (fs.readFileSync(file, 'utf8') !== expected) {
      fs.rmSync(temporary, { force: true });
      return false;
    }
    crashBeforeRename();
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
  // Flush the rename itself, so a crash right after cannot bring the old file back.
  try {
    const directoryHandle = fs.openSync(directory, 'r');
    try {
      fs.fsyncSync(directoryHandle);
    } finally {
      fs.closeSync(directoryHandle);
    }
  } catch (error) {
    throw new RenamedError(error as NodeJS.ErrnoException);
  }
  return true;
}

/** A failure after the new file replaced the old one, so the new value is in place. */
export class RenamedError extends Error {
  readonly code: string | undefined;

  constructor(cause: NodeJS.ErrnoException) {
    super(`flushing the folder after the rename failed: ${cause.code ?? cause.message}`);
    this.name = 'RenamedError';
    this.code = cause.code;
  }
}

/**
 * Gives the new file the old one's owner and group, so the service reading it still can. Only root can
 * give a file away; any other process fails here instead of leaving the file with another owner.
 */
function keepOwner(handle: number, stat: fs.Stats, file: string): void {
  const created = fs.fstatSync(handle);
  if (created.uid === stat.uid && created.gid === stat.gid) return;
  try {
    fs.fchownSync(handle, stat.uid, stat.gid);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw Object.assign(new Error(`${file} is owned by uid ${stat.uid} gid ${stat.gid}, and this process cannot create a replacement with that owner (${code})`), { code });
  }
}

/**
 * Kills this process with SIGKILL between writing the temporary copy and renaming it when
 * AEGIS_TEST_CRASH_AT is `env_before_rename`. Only the crash tests set the variable.
 */
function crashBeforeRename(): void {
  if (process.env.AEGIS_TEST_CRASH_AT === 'env_before_rename') process.kill(process.pid, 'SIGKILL');
}
