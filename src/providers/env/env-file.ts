import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'dotenv';

/** A line that assigns `variable`, with an optional `export ` in front, as dotenv reads it. */
function assignment(variable: string): RegExp {
  return new RegExp(`^(\\s*)(export\\s+)?${variable}\\s*=`);
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
  return parse(text)[variable];
}

/**
 * Formats a value as dotenv reads it back unchanged: bare when it holds only safe characters, single
 * quotes (no escapes in dotenv) otherwise. Returns null for values no form can carry (a newline, or
 * both a single quote and characters that need quoting).
 */
export function formatValue(value: string): string | null {
  if (/^[A-Za-z0-9_\-.:/+=@,%!?*~^]*$/.test(value)) return value;
  if (/[\r\n]/.test(value)) return null;
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"') && !value.includes('\\') && !value.includes('$')) return `"${value}"`;
  return null;
}

/**
 * Sets one variable in a .env file and keeps every other byte: other lines, comments, blank lines and
 * their order. The first assignment of the variable is replaced (later duplicates are left as they are,
 * and dotenv reads the first); a missing variable is appended. The file is replaced atomically: the new
 * text goes to a temporary file in the same folder with the old file's mode, is flushed with fsync, and
 * is renamed over the old one, so a reader sees the old file or the new one, never a mix.
 */
export function writeVariable(file: string, variable: string, value: string): void {
  const formatted = formatValue(value);
  if (formatted === null) throw new Error(`the value of ${variable} cannot be written to a .env file (it holds a newline or unescapable quotes)`);
  const stat = fs.statSync(file);
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const pattern = assignment(variable);
  const index = lines.findIndex((line) => pattern.test(line));
  const line = `${variable}=${formatted}`;
  if (index >= 0) {
    const match = pattern.exec(lines[index]!)!;
    const trailingCarriageReturn = lines[index]!.endsWith('\r') ? '\r' : '';
    lines[index] = `${match[1]}${match[2] ?? ''}${line}${trailingCarriageReturn}`;
  } else {
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.splice(lines.length - 1, 0, line);
    else lines.push(line);
  }
  replaceAtomically(file, lines.join('\n'), stat.mode & 0o7777);
}

function replaceAtomically(file: string, text: string, mode: number): void {
  const directory = path.dirname(file);
  const temporary = path.join(directory, `.${path.basename(file)}.aegis-${process.pid}-${Date.now()}.tmp`);
  const handle = fs.openSync(temporary, 'wx', mode);
  try {
    fs.writeFileSync(handle, text);
    fs.fchmodSync(handle, mode);
    fs.fsyncSync(handle);
  } finally {
    fs.closeSync(handle);
  }
  try {
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
  // Flush the rename itself, so a crash right after cannot bring the old file back.
  const directoryHandle = fs.openSync(directory, 'r');
  try {
    fs.fsyncSync(directoryHandle);
  } finally {
    fs.closeSync(directoryHandle);
  }
}
