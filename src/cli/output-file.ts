import fs from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { publishFile } from '../backup/secret-file.js';
import { removeOnSignal } from '../lib/remove-on-signal.js';
import { CommandError } from './context.js';

/** Rejects an output path whose folder is missing or that names a folder, before any work starts. */
export function checkOutputPath(file: string): void {
  const folder = path.dirname(path.resolve(file));
  if (!fs.existsSync(folder)) throw new CommandError(`The folder ${folder} does not exist; create it first. Nothing was written.`);
  if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new CommandError(`${file} is a folder; give the path of a file. Nothing was written.`);
}

/**
 * Streams `write`'s output into a temporary file (mode 0600) beside `file` and renames it over `file`
 * once complete, so `file` is either the previous file or the whole new one. An error, SIGINT or
 * SIGTERM removes the temporary file, because a cut export would still pass `aegis audit verify
 * --file`, which cannot see lines missing from the end.
 */
export async function writeOutputFile(file: string, write: (out: Writable) => Promise<void>): Promise<void> {
  const temporary = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.partial`);
  const stopRemoving = removeOnSignal([temporary], file);
  // `wx` fails on an existing file or symbolic link, and `flush` syncs the data to disk before the close.
  const out = fs.createWriteStream(temporary, { flags: 'wx', mode: 0o600, flush: true });
  try {
    await once(out, 'open');
    await write(out);
    out.end();
    await once(out, 'close');
    publishFile(temporary, file, true);
  } catch (error) {
    out.destroy();
    fs.rmSync(temporary, { force: true });
    throw error;
  } finally {
    stopRemoving();
  }
}
