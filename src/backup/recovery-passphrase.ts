import fs from 'node:fs';
import { CommandError } from '../cli/context.js';
import { RECOVERY_PASSPHRASE_VARIABLE } from '../crypto/key-backup.js';

/**
 * Reads the recovery passphrase from `--passphrase-file` or AEGIS_RECOVERY_PASSPHRASE, never from an
 * argument, because arguments show up in `ps` and shell history. The file must not be readable by group
 * or others, like a key file; one trailing newline is dropped.
 */
export function readRecoveryPassphrase(passphraseFile: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (passphraseFile !== undefined) {
    // As with the master key sources, two passphrases are a mistake to name, not a choice to make silently.
    if (env[RECOVERY_PASSPHRASE_VARIABLE] !== undefined && env[RECOVERY_PASSPHRASE_VARIABLE] !== '') {
      throw new CommandError(`Give the recovery passphrase once: --passphrase-file or ${RECOVERY_PASSPHRASE_VARIABLE}, not both. Nothing was written.`, 2);
    }
    let stat: fs.Stats;
    try {
      stat = fs.statSync(passphraseFile);
    } catch {
      throw new CommandError(`Passphrase file ${passphraseFile} does not exist.`);
    }
    if ((stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(3, '0');
      throw new CommandError(`Passphrase file ${passphraseFile} is readable by other users (mode ${mode}). Run \`chmod 600 ${passphraseFile}\` and try again.`);
    }
    return fs.readFileSync(passphraseFile, 'utf8').replace(/\r?\n$/, '');
  }
  const value = env[RECOVERY_PASSPHRASE_VARIABLE];
  if (value === undefined || value === '') {
    throw new CommandError(`Set ${RECOVERY_PASSPHRASE_VARIABLE} or pass --passphrase-file with the recovery passphrase (16 or more characters).`, 2);
  }
  return value;
}
