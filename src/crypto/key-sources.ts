import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { KeySource } from '../config/config.js';
import { StartupError } from '../lib/errors.js';
import { decodeMasterKey, derivePassphraseKey, generateMasterKey, rejectWeakPassphrase } from './key-material.js';

/** A master key read from the configured source; `kdfSalt` is set for passphrase-derived keys. */
export interface KeyCandidate {
  key: Buffer;
  kdfSalt: string | null;
}

export function describeKeySource(source: KeySource): string {
  switch (source.kind) {
    case 'file':
      return `key file ${source.path}`;
    case 'env':
      return source.fileKey === undefined ? `environment variable ${source.variable}` : `master key ${source.fileKey}`;
    case 'passphrase':
      return source.fileKey === undefined ? `passphrase in ${source.variable}` : `passphrase ${source.fileKey}`;
  }
}

/**
 * Reads every master key of the source. A key file contains one base64 key per line (blank lines and
 * `#` comments are skipped) and must not be readable by group or others. The environment variable contains
 * comma-separated base64 keys. A passphrase yields one key per stored salt.
 */
export function readKeyCandidates(source: KeySource, salts: ReadonlyArray<string>): KeyCandidate[] {
  switch (source.kind) {
    case 'file':
      return readKeyFile(source.path).map((key) => ({ key, kdfSalt: null }));
    case 'env':
      return source.value
        .split(',')
        .filter((part) => part.trim() !== '')
        .map((part, index) => ({ key: decodeMasterKey(part, `${source.variable} entry ${index + 1}`), kdfSalt: null }));
    case 'passphrase':
      rejectWeakPassphrase(source.value, source.variable);
      return salts.map((salt) => ({ key: derivePassphraseKey(source.value, salt), kdfSalt: salt }));
  }
}

/**
 * Reads the source once and throws StartupError when it cannot yield a usable key: a missing or exposed
 * key file, a short or weak key, an empty variable, a weak passphrase. A default key file that does not
 * exist yet passes, because the first start creates it.
 */
export function checkKeySource(source: KeySource): void {
  if (source.kind === 'file' && source.generated && !fs.existsSync(source.path)) return;
  if (source.kind === 'passphrase') {
    rejectWeakPassphrase(source.value, source.variable);
    return;
  }
  if (readKeyCandidates(source, []).length === 0) {
    throw new StartupError(`The ${describeKeySource(source)} contains no master key. Set it to a base64 key from \`aegis keys generate\`.`);
  }
}

export function readKeyFile(file: string): Buffer[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EACCES') throw unreadableKeyFile(file);
    throw new StartupError(`Key file ${file} does not exist. Set AEGIS_MASTER_KEY_FILE to the file that contains this vault's master key.`);
  }
  if (!stat.isFile()) throw new StartupError(`Key file ${file} is a folder or another kind of file, not a file of keys. Set AEGIS_MASTER_KEY_FILE to the file that contains this vault's master key.`);
  if ((stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(3, '0');
    throw new StartupError(`Key file ${file} is readable by other users (mode ${mode}). Run \`chmod 600 ${file}\` and start again.`);
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EACCES') throw unreadableKeyFile(file);
    throw error;
  }
  const lines = text.split('\n');
  const keys: Buffer[] = [];
  lines.forEach((line, index) => {
    const text = line.trim();
    if (text === '' || text.startsWith('#')) return;
    keys.push(decodeMasterKey(text, `${file} line ${index + 1}`));
  });
  if (keys.length === 0) {
    throw new StartupError(
      `Key file ${file} contains no key. For a vault that holds data, restore the file (or its keys with \`aegis keys restore\`); for a new vault, generate one with \`aegis keys generate\` and write it to the file (one base64 key per line).`,
    );
  }
  return keys;
}

function unreadableKeyFile(file: string): StartupError {
  const user = typeof process.getuid === 'function' ? ` (uid ${process.getuid()})` : '';
  return new StartupError(`Key file ${file} cannot be read by this user${user}: permission denied. Run AEGIS as the user that owns the file, or give that user the file with chown (mode 600).`);
}

/**
 * Creates a key file with one new random key, mode 0600. Fails with EEXIST if the file exists. The key
 * is written to a temporary file that is then linked to the name, so a process starting at the same
 * time never reads the file empty.
 */
export function createKeyFile(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const text = `# AEGIS master keys, one base64 key per line. Keep this file apart from the database and backed up.\n${generateMasterKey().toString('base64')}\n`;
  const temporary = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(temporary, text, { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(temporary, file);
  } catch (error) {
    // A file system without hard links gets the direct write, which a simultaneous start may read empty.
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
    fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

/**
 * Appends a key to a key file in place, in one write, so the file keeps its owner, mode and links.
 * The server often runs as another user than the operator who rotates, and a file written beside it
 * and renamed over it belonged to the operator, so the server could no longer read its keys.
 * NOTE: a power loss during the write could leave a partial last line, which stops the next start
 * with an error naming that line. The key is not used before this returns, so deleting the line is safe.
 */
export function appendKeyToFile(file: string, key: Buffer): void {
  let handle: number;
  let current: string;
  try {
    current = fs.readFileSync(file, 'utf8');
    handle = fs.openSync(file, 'a');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new StartupError(
      `Cannot add the new key to key file ${file} (${code}). Run \`aegis keys rotate\` as the user that owns the file (the user AEGIS runs as), with write access to it. Nothing was changed.`,
    );
  }
  try {
    fs.writeSync(handle, `${current === '' || current.endsWith('\n') ? '' : '\n'}${key.toString('base64')}\n`);
    fs.fsyncSync(handle);
  } finally {
    fs.closeSync(handle);
  }
}
