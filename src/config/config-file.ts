import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { StartupError } from '../lib/errors.js';
import { FILE_KEYS, KEY_SOURCE_VARIABLES, type FileKey } from './config-keys.js';
import { closestKey } from './closest-key.js';

type Env = Record<string, string | undefined>;

/** A configuration file, converted into the environment variables its keys map to. */
export interface ConfigFile {
  /** Absolute path of the file. */
  path: string;
  /** The file's settings as environment variable text, by variable name. */
  values: Record<string, string>;
  /** The file key of each variable in `values`, e.g. AEGIS_DATABASE_POOL_MAX to `storage.pool_max`. */
  keys: Record<string, string>;
  /** Keys set in the file whose values are secrets (keys, passwords, tokens). */
  secretKeys: string[];
}

const keysByPath = new Map(FILE_KEYS.map((entry) => [entry.key, entry]));
/** Every section path, e.g. `server` and `server.tls`. */
const sections = new Set(
  FILE_KEYS.flatMap((entry) => {
    const parts = entry.key.split('.');
    return parts.slice(1).map((_, index) => parts.slice(0, index + 1).join('.'));
  }),
);

/**
 * Reads a YAML configuration file. A missing or unreadable file, invalid YAML, an unknown key or a
 * value of the wrong type stops start-up with a message naming the file (and the line for YAML errors).
 * Relative paths resolve against the file's folder.
 */
/** Loads the YAML parser when a file is read, so that a start without a configuration file skips it. */
const loadYaml = () => createRequire(import.meta.url)('yaml') as typeof import('yaml');

export function readConfigFile(file: string): ConfigFile {
  const text = readText(file);
  const { LineCounter, parseDocument } = loadYaml();
  const lineCounter = new LineCounter();
  // prettyErrors off: its messages quote the source lines, which may contain secrets.
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  const [error] = document.errors;
  if (error) {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    throw new StartupError(`Configuration file ${file} is not valid YAML: line ${line}, column ${col}: ${firstLine(error.message)}. Fix the file and start again.`);
  }
  const content: unknown = document.toJS();
  const result: ConfigFile = { path: file, values: {}, keys: {}, secretKeys: [] };
  if (content === null || content === undefined) return result;
  if (!isMapping(content)) {
    throw new StartupError(`Configuration file ${file} must be a mapping of sections such as "server:" and "storage:", got ${describeValue(content)}.`);
  }
  readSection(content, '', path.dirname(file), result);
  return result;
}

/**
 * Lays the environment over the file's settings: a non-empty variable wins over the file. A master key
 * source set in the environment replaces the file's, so the two never clash. Returns the merged settings
 * and, for each variable whose value came from the file, its file key.
 */
export function mergeWithEnvironment(file: ConfigFile, env: Env): { settings: Env; fromFile: Record<string, string> } {
  const settings: Env = { ...file.values };
  if (KEY_SOURCE_VARIABLES.some((name) => isSet(env[name]))) {
    for (const name of KEY_SOURCE_VARIABLES) delete settings[name];
  }
  for (const [name, value] of Object.entries(env)) {
    if (isSet(value)) settings[name] = value;
  }
  const fromFile: Record<string, string> = {};
  for (const [variable, key] of Object.entries(file.keys)) {
    if (settings[variable] === file.values[variable]) fromFile[variable] = key;
  }
  return { settings, fromFile };
}

/**
 * Rewrites a settings error so that each variable the file set is named by its file key first, e.g.
 * "storage.pool_max in /etc/aegis/aegis.yaml (or AEGIS_DATABASE_POOL_MAX) must be ...". The readers
 * name only variables, because they read the merged settings.
 */
export function nameFileKeys(error: StartupError, file: string, fromFile: Record<string, string>): StartupError {
  let message = error.message;
  for (const [variable, key] of Object.entries(fromFile)) {
    // An optional "[2].url" suffix keeps a list item's position with the file key (AEGIS_WEBHOOKS[2].url).
    const pattern = new RegExp(`\\b${variable}((?:\\[\\d+\\])?(?:\\.\\w+)?)(?!\\w)`, 'g');
    message = message.replace(pattern, (_match, suffix: string) => `${key}${suffix} in ${file} (or ${variable})`);
  }
  return new StartupError(message);
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new StartupError(`Configuration file ${file} does not exist. Check --config or AEGIS_CONFIG.`);
    if (code === 'EISDIR') throw new StartupError(`Configuration file ${file} is a folder; point --config or AEGIS_CONFIG at a YAML file.`);
    if (code === 'EACCES') throw new StartupError(`Configuration file ${file} cannot be read: permission denied. Let the user that runs AEGIS read it.`);
    throw new StartupError(`Configuration file ${file} cannot be read: ${code ?? String(error)}.`);
  }
}

function readSection(mapping: Record<string, unknown>, prefix: string, folder: string, result: ConfigFile): void {
  for (const [name, value] of Object.entries(mapping)) {
    const key = prefix === '' ? name : `${prefix}.${name}`;
    const entry = keysByPath.get(key);
    if (entry) {
      if (value === null || value === undefined) continue;
      result.values[entry.variable] = toVariableText(entry, value, folder, result.path);
      result.keys[entry.variable] = entry.key;
      if (entry.secret) result.secretKeys.push(entry.key);
      continue;
    }
    if (!sections.has(key)) {
      const suggestion = closestKey(key, [...keysByPath.keys(), ...sections]);
      const hint = suggestion ? ` Did you mean "${suggestion}"?` : ' docs/configuration.md lists the keys.';
      throw new StartupError(`Configuration file ${result.path} has an unknown key "${key}".${hint}`);
    }
    if (value === null || value === undefined) continue;
    if (!isMapping(value)) throw new StartupError(`${key} in ${result.path} must be a section of keys, got ${describeValue(value)}.`);
    readSection(value, key, folder, result);
  }
}

/** Converts one file value to the text its environment variable would contain; checks only the YAML type. */
function toVariableText(entry: FileKey, value: unknown, folder: string, file: string): string {
  const wrongType = (expected: string) =>
    new StartupError(`${entry.key} in ${file} (or ${entry.variable}) must be ${expected}, got ${entry.secret ? 'a value of another type' : describeValue(value)}.`);
  switch (entry.kind) {
    case 'text':
      if (typeof value !== 'string') throw wrongType('a string (quote it if YAML reads it as a number or true/false)');
      return value;
    case 'integer':
      if (typeof value !== 'number' && typeof value !== 'string') throw wrongType('a number');
      return String(value);
    case 'on-off':
      if (typeof value === 'boolean') return value ? 'on' : 'off';
      if (value === 'on' || value === 'off') return value;
      throw wrongType('true or false');
    case 'path':
      if (typeof value !== 'string' || value.trim() === '') throw wrongType('a path');
      return path.resolve(folder, value);
    case 'path-list':
      return listOf(value, (item) => typeof item === 'string' && item.trim() !== '', wrongType, 'a list of paths')
        .map((item) => path.resolve(folder, String(item)))
        .join(path.delimiter);
    case 'integer-list':
      return listOf(value, (item) => typeof item === 'number' || typeof item === 'string', wrongType, 'a list of numbers').join(',');
    case 'text-list':
      return listOf(value, (item) => typeof item === 'string', wrongType, 'a string or a list of strings').join(',');
    case 'string-map':
    case 'path-string-map': {
      if (!isMapping(value) || !Object.values(value).every((item) => typeof item === 'string')) throw wrongType('a mapping of names to strings');
      const entries = Object.entries(value).map(([name, item]) => [entry.kind === 'path-string-map' ? path.resolve(folder, name) : name, item]);
      return JSON.stringify(Object.fromEntries(entries));
    }
    case 'webhook-list':
      if (!Array.isArray(value) || !value.every(isMapping)) throw wrongType('a list of entries with url and secret');
      return JSON.stringify(value);
  }
}

function listOf(value: unknown, valid: (item: unknown) => boolean, wrongType: (expected: string) => StartupError, expected: string): unknown[] {
  const items = Array.isArray(value) ? value : [value];
  if (!items.every(valid)) throw wrongType(expected);
  return items;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSet(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (isMapping(value)) return 'a mapping';
  if (typeof value === 'string') return `"${value}"`;
  return String(value);
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/\.$/, '');
}
