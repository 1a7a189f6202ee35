import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';
import type { ConfigFile } from '../config/config-file.js';
import { fail, ok, setting, warn, type CheckResult } from './check.js';

type Env = Record<string, string | undefined>;

/**
 * Warns when the master key lives with the data (the generated development key, or a key file under
 * the data folder), because a copy of the data then contains its key, or in the configuration file.
 */
export function checkKeyPlacement(config: Config, file: ConfigFile | undefined, env: Env): CheckResult {
  const source = config.keySource;
  const keyFileSetting = setting('keys.master_key_file', 'AEGIS_MASTER_KEY_FILE');
  if (source.kind === 'file' && source.generated && isMissing(source.path)) {
    return warn(
      'key placement',
      `The master key is the development key file ${source.path} in the data folder, which does not exist yet: a first start on an empty database creates it there, so a copy of the data would contain its key.`,
      `For production, create a key apart from the data (\`aegis keys generate\` into a file with mode 600) and set ${keyFileSetting} to it before the first start.`,
    );
  }
  if (source.kind === 'file' && (source.generated || isInside(source.path, config.dataDir))) {
    const placement = source.generated ? 'the development key generated in the data folder' : 'inside the data folder';
    return warn(
      'key placement',
      `The master key file ${source.path} is ${placement}, so a copy of the data contains its key.`,
      `For production, move it apart from the data (e.g. \`install -m 600 ${source.path} /etc/aegis/master.key\`), set ${keyFileSetting} to the new path and remove the old file.`,
    );
  }
  const fromFile = source.kind !== 'file' && file?.keys[source.variable] !== undefined && !env[source.variable]?.trim();
  if (fromFile) {
    return warn(
      'key placement',
      `The master ${source.kind === 'env' ? 'key' : 'passphrase'} is written in the configuration file ${file!.path}.`,
      `Keep the key in its own file with mode 600 and set ${keyFileSetting}, or pass it in the environment from a secret store.`,
    );
  }
  return ok('key placement', source.kind === 'file' ? `the master key file ${source.path} is outside the data folder` : `the master key comes from the environment`);
}

/** Tells whether nothing exists at `file`. A file this user cannot reach counts as present. */
function isMissing(file: string): boolean {
  try {
    fs.statSync(file);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/**
 * Checks that secrets are not readable by other users: the key file and TLS key (mode 600), the data
 * folder, the SQLite file and the configuration file when it contains secrets.
 */
export function checkFileModes(config: Config, file: ConfigFile | undefined): CheckResult[] {
  const results: CheckResult[] = [];
  const problems: Array<{ level: 'warn' | 'fail'; text: string; command: string }> = [];

  if (config.keySource.kind === 'file') requirePrivate(config.keySource.path, 'key file', 0o077, 600, problems);
  if (config.tls) requirePrivate(config.tls.keyFile, 'TLS key file', 0o077, 600, problems);
  if (file && file.secretKeys.length > 0) requirePrivate(file.path, `configuration file (it contains ${file.secretKeys.join(', ')})`, 0o077, 600, problems);
  requirePrivate(config.dataDir, 'data folder', 0o007, 700, problems);
  if (!config.databaseUrl) {
    for (const sqliteFile of [config.sqlitePath, `${config.sqlitePath}-wal`, `${config.sqlitePath}-shm`]) {
      requirePrivate(sqliteFile, 'SQLite file', 0o007, 600, problems, closedToOthers(path.dirname(sqliteFile)));
    }
  }

  for (const problem of problems) {
    const result = problem.level === 'fail' ? fail('file modes', problem.text, `Run \`${problem.command}\`.`) : warn('file modes', problem.text, `Run \`${problem.command}\`.`);
    results.push(result);
  }
  if (results.length === 0) results.push(ok('file modes', 'key, data and configuration files are not readable by other users'));
  return results;
}

/**
 * Records a problem when `target` exists and has any of the `forbidden` permission bits. A SQLite file
 * inside a folder that other users cannot enter is only a warning, because they cannot reach it.
 */
function requirePrivate(
  target: string,
  label: string,
  forbidden: number,
  requiredMode: number,
  problems: Array<{ level: 'warn' | 'fail'; text: string; command: string }>,
  shielded = false,
): void {
  let mode: number;
  try {
    mode = fs.statSync(target).mode & 0o777;
  } catch {
    return;
  }
  if ((mode & forbidden) === 0) return;
  const readers = forbidden === 0o077 ? 'group or other users' : 'other users';
  const octalMode = mode.toString(8).padStart(3, '0');
  const text = shielded
    ? `The ${label} ${target} is readable by ${readers} (mode ${octalMode}), but its folder keeps them out.`
    : `The ${label} ${target} is readable by ${readers} (mode ${octalMode}).`;
  problems.push({ level: shielded ? 'warn' : 'fail', text, command: `chmod ${requiredMode} ${target}` });
}

function closedToOthers(folder: string): boolean {
  try {
    return (fs.statSync(folder).mode & 0o001) === 0;
  } catch {
    return false;
  }
}

function isInside(file: string, folder: string): boolean {
  const relative = path.relative(folder, file);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}
