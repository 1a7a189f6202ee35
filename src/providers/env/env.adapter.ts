import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ValidationError } from '../../lib/errors.js';
import type { Credential } from '../../registry/credential.types.js';
import { ProviderError, type ProviderAdapter, type TestResult } from '../adapter.js';
import { formatValue, readVariable, RenamedError, writeVariable } from './env-file.js';

const run = promisify(execFile);
const variablePattern = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** The reason `formatValue` returns null, for error messages. */
const unwritableReason = 'it contains a line break or a NUL character, or a \' and a ` together with a ", a \\ or a $, which no quoting in a .env file carries unchanged';

export interface EnvAdapterOptions {
  /** Folders the .env files must lie in. */
  allowedDirs: ReadonlyArray<string>;
  /**
   * AEGIS's own files (its database with its journals, master key, TLS and configuration files), which an env
   * credential must not point at even where an allowed folder contains them: a rotation would write a
   * variable into them.
   */
  ownFiles?: ReadonlyArray<string>;
  /** Shell commands run after a file changes, by absolute file path; only the server's configuration sets them. */
  reloadCommands: Readonly<Record<string, string>>;
  reloadTimeoutMs?: number;
}

/**
 * A credential kept as one variable in a .env file. AEGIS reads and writes the variable in place and can
 * run a reload command for the file afterwards (for example to restart the service that reads it).
 */
export function createEnvAdapter(options: EnvAdapterOptions): ProviderAdapter {
  // Credentials store the file's real path (see resolveAllowedPath), so the configured keys are resolved the same way.
  const reloadCommands = new Map(Object.entries(options.reloadCommands).map(([file, command]) => [realPathOfExistingPart(path.resolve(file)), command]));
  const ownFiles = new Set((options.ownFiles ?? []).map((own) => realPathOfExistingPart(path.resolve(own))));
  return {
    provider: 'env',
    capabilities: { test: true, setValue: true, issueValue: false, revoke: false, apply: false, list: false },

    checkConfig(config) {
      const { file, variable } = config;
      if (file === undefined || file === '') throw new ValidationError('provider_config.file', 'is required for env credentials: the absolute path of the .env file');
      if (typeof file !== 'string') throw new ValidationError('provider_config.file', `must be a string (the absolute path of the .env file), got ${file === null ? 'null' : typeof file}`);
      if (typeof variable !== 'string' || !variablePattern.test(variable)) {
        throw new ValidationError('provider_config.variable', 'must be an environment variable name (letters, digits and _, not starting with a digit)');
      }
      // dotenv 17 assigns variables to a plain object, where __proto__ sets the prototype, so it reads no such variable.
      if (variable === '__proto__') throw new ValidationError('provider_config.variable', 'must not be __proto__, a variable that dotenv does not read. Rename it in the .env file.');
      const unknown = Object.keys(config).filter((key) => key !== 'file' && key !== 'variable');
      if (unknown.length > 0) throw new ValidationError(`provider_config.${unknown[0]}`, 'is not a setting of env credentials (file, variable)');
      const resolved = resolveAllowedPath(file, options.allowedDirs);
      const folder = fs.statSync(path.dirname(resolved), { throwIfNoEntry: false });
      if (folder === undefined || !folder.isDirectory()) throw new ValidationError('provider_config.file', `"${file}" is in a folder that does not exist; create the folder or fix the path`);
      if (fs.statSync(resolved, { throwIfNoEntry: false })?.isDirectory()) throw new ValidationError('provider_config.file', `"${file}" is a folder; give the path of the .env file in it`);
      if (ownFiles.has(resolved)) {
        throw new ValidationError('provider_config.file', `"${file}" is one of AEGIS's own files (its database, master key, TLS or configuration file), which env credentials cannot point at. Choose the .env file of the service that uses the credential.`);
      }
      return { file: resolved, variable };
    },

    targetOf(config) {
      return { key: JSON.stringify([config.file, config.variable]), field: 'provider_config.variable', description: `${String(config.variable)} in ${String(config.file)}` };
    },

    async test(credential, value) {
      const started = performance.now();
      const { file, variable } = settings(credential);
      let current: string | undefined;
      try {
        current = readVariable(file, variable);
      } catch (error) {
        return result(started, false, { file }, `reading ${file} failed: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      if (current === undefined) return result(started, false, { file, variable }, `${variable} is missing from ${file}`);
      if (current === '') return result(started, false, { file, variable }, `${variable} is empty in ${file}`);
      if (value !== null && current !== value) return result(started, false, { file, variable }, `${variable} in ${file} holds another value than the current version`);
      return result(started, true, { file, variable }, null);
    },

    checkValue(value) {
      if (formatValue(value) === null) {
        throw new ValidationError('value', `cannot be written to a .env file: ${unwritableReason}. Change the value, or write it to the file yourself and record it with PATCH.`);
      }
    },

    async setValue(credential, value) {
      const { file, variable } = settings(credential);
      if (formatValue(value) === null) throw new ProviderError(`the new value of ${variable} cannot be written to a .env file: ${unwritableReason}`, 'unchanged');
      // The file was checked when the credential was stored, but by a process with its own settings
      // (the CLI, another server), or before AEGIS checked for its own files: this process checks again.
      if (ownFiles.has(realPathOfExistingPart(file))) throw new ProviderError(`${file} is one of AEGIS's own files, so AEGIS does not write ${variable} to it`, 'unchanged');
      try {
        resolveAllowedPath(file, options.allowedDirs);
      } catch {
        throw new ProviderError(`${file} is outside the folders this server allows for env credentials (providers.env.allowed_dirs or AEGIS_ENV_ALLOWED_DIRS), so AEGIS does not write ${variable} to it`, 'unchanged');
      }
      try {
        writeVariable(file, variable, value);
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        // writeVariable replaces the file by a rename, so a failure before the rename leaves it as it was.
        throw new ProviderError(`writing ${variable} to ${file} failed: ${reason}`, error instanceof RenamedError ? undefined : 'unchanged');
      }
      if (readVariable(file, variable) !== value) throw new ProviderError(`${variable} in ${file} does not read back as written`);
      const command = reloadCommands.get(file);
      if (command) {
        const timeoutMs = options.reloadTimeoutMs ?? 30_000;
        try {
          await run('/bin/sh', ['-c', command], { timeout: timeoutMs });
        } catch (error) {
          const { code, killed, signal } = error as { code?: unknown; killed?: boolean; signal?: string | null };
          if (killed) throw new ProviderError(`the reload command for ${file} timed out after ${timeoutMs} ms`);
          throw new ProviderError(`the reload command for ${file} failed (${typeof code === 'number' ? `exit ${code}` : (signal ?? String(code))})`);
        }
      }
    },
  };
}

function settings(credential: Credential): { file: string; variable: string } {
  return { file: String(credential.providerConfig.file), variable: String(credential.providerConfig.variable) };
}

function result(started: number, healthy: boolean, details: Record<string, unknown>, error: string | null): TestResult {
  return { healthy, responseTimeMs: Math.round(performance.now() - started), details, error };
}

/** Resolves the path (symbolic links included) and checks it lies inside an allowed folder. */
export function resolveAllowedPath(file: string, allowedDirs: ReadonlyArray<string>): string {
  if (!path.isAbsolute(file)) throw new ValidationError('provider_config.file', `must be an absolute path, got "${file}"`);
  const resolved = realPathOfExistingPart(path.resolve(file));
  const allowed = allowedDirs.map((dir) => realPathOfExistingPart(path.resolve(dir)));
  if (!isInsideAny(resolved, allowed)) {
    // The path as written lies in an allowed folder, so a symbolic link on it leads outside.
    if (isInsideAny(path.resolve(file), [...allowed, ...allowedDirs.map((dir) => path.resolve(dir))])) {
      throw new ValidationError(
        'provider_config.file',
        `"${file}" is a symbolic link, or lies under one, whose target ${resolved} is outside the folders allowed for env credentials. Point provider_config.file at a file inside them, or replace the link with the file itself.`,
      );
    }
    throw new ValidationError(
      'provider_config.file',
      `"${file}" is outside the folders allowed for env credentials. Add its folder to providers.env.allowed_dirs or AEGIS_ENV_ALLOWED_DIRS (folders separated by :), keeping the folders already listed, and restart AEGIS.`,
    );
  }
  return resolved;
}

function isInsideAny(target: string, folders: ReadonlyArray<string>): boolean {
  return folders.some((dir) => target.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep));
}

/** Resolves symbolic links in the longest existing prefix of a path, so a link cannot lead out of a folder. */
function realPathOfExistingPart(target: string): string {
  let existing = target;
  const rest: string[] = [];
  while (!fs.existsSync(existing)) {
    const parent = path.dirname(existing);
    if (parent === existing) break;
    rest.unshift(path.basename(existing));
    existing = parent;
  }
  return path.join(fs.realpathSync(existing), ...rest);
}
