import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';

/** Rules a backup location must follow. */
export interface LocationRules {
  /** Reject any path inside the data folder, at any depth. */
  outsideDataDir: boolean;
  /** Reject the folder that contains the SQLite file (SQLite vaults only). */
  apartFromSqliteFile: boolean;
  /** Reject the folder that contains the key file (key-file vaults only). */
  apartFromKeyFile: boolean;
}

/**
 * Returns why `file` is not an acceptable backup location, or undefined when it is. Paths are compared
 * after resolving symbolic links, so a link into the data folder is caught too.
 */
export function backupLocationProblem(file: string, config: Config, rules: LocationRules): string | undefined {
  const target = realPath(path.resolve(file));
  const folder = path.dirname(target);
  if (rules.outsideDataDir && isInside(target, realPath(config.dataDir))) {
    return `${file} is inside the data folder ${config.dataDir}; a backup there is lost with the data. Choose a path outside it.`;
  }
  if (rules.apartFromSqliteFile && config.databaseUrl === undefined && folder === realPath(path.dirname(config.sqlitePath))) {
    return `${file} is in the same folder as the SQLite file ${config.sqlitePath}; keep the backup apart from the data.`;
  }
  if (rules.apartFromKeyFile && config.keySource.kind === 'file' && folder === realPath(path.dirname(config.keySource.path))) {
    return `${file} is in the same folder as the key file ${config.keySource.path}; keep the backup apart from the key file.`;
  }
  return undefined;
}

/** Returns why `file` must not be written over, or undefined when it may be: the SQLite file and its journals are the vault itself. */
export function databaseFileProblem(file: string, config: Config): string | undefined {
  if (config.databaseUrl !== undefined) return undefined;
  const target = realPath(path.resolve(file));
  const databaseFiles = ['', '-wal', '-shm', '-journal'].map((suffix) => realPath(config.sqlitePath + suffix));
  if (!databaseFiles.includes(target)) return undefined;
  return `${file} is the vault's SQLite database (${config.sqlitePath}) or one of its journals; writing there would destroy the vault. Choose another path.`;
}

function isInside(target: string, folder: string): boolean {
  const relative = path.relative(folder, target);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/** Resolves symbolic links in the longest existing prefix of `file` and keeps the rest as written. */
function realPath(file: string): string {
  const missing: string[] = [];
  let current = path.resolve(file);
  for (;;) {
    try {
      return path.join(fs.realpathSync(current), ...missing.reverse());
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return path.resolve(file);
      missing.push(path.basename(current));
      current = parent;
    }
  }
}
