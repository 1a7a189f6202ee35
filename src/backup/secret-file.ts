import fs from 'node:fs';
import path from 'node:path';
import { CommandError } from '../cli/context.js';

/**
 * Writes `text` to `file` with mode 0600. Without `force` the write fails when the file exists. With
 * it the file is replaced by a rename, so a reader never sees half a file.
 */
export function writeSecretFile(file: string, text: string, force: boolean): void {
  const folder = path.dirname(path.resolve(file));
  if (!fs.existsSync(folder)) throw new CommandError(`The folder ${folder} does not exist; create it (mode 0700) first.`);
  const temporary = `${file}.${process.pid}.tmp`;
  const handle = fs.openSync(temporary, 'wx', 0o600);
  try {
    fs.writeSync(handle, text);
    fs.fsyncSync(handle);
  } finally {
    fs.closeSync(handle);
  }
  publishFile(temporary, file, force);
}

/**
 * Moves a finished temporary file to `file`. Without `force` this is a hard link, which fails when
 * `file` exists, so two commands racing for one name cannot overwrite each other.
 */
export function publishFile(temporary: string, file: string, force: boolean): void {
  fs.chmodSync(temporary, 0o600);
  if (force) {
    fs.renameSync(temporary, file);
    return;
  }
  try {
    fs.linkSync(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new CommandError(`${file} already exists; pass --force to replace it. Nothing was written.`);
    throw error;
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

/** Rejects an existing `file` before any slow work starts, unless `force` is set. */
export function rejectExisting(file: string, force: boolean): void {
  const existing = fs.statSync(file, { throwIfNoEntry: false });
  if (existing?.isDirectory()) throw new CommandError(`${file} is a folder; give the path of a file. Nothing was written.`);
  if (!force && existing !== undefined) throw new CommandError(`${file} already exists; pass --force to replace it. Nothing was written.`);
}
