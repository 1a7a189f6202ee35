import { loadConfigAndFile } from '../config/config.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { StartupError } from '../lib/errors.js';
import { fail, ok, skip, type CheckResult } from './check.js';
import { checkDatabase, databaseCheckNames } from './database-checks.js';
import { checkFileModes, checkKeyPlacement } from './file-checks.js';
import { checkPostgresRoles } from './provider-checks.js';
import { checkSinks } from './sink-checks.js';
import { checkListenAddress, checkTls } from './tls-checks.js';

/**
 * The checks that need a loaded configuration, in report order. Without a configuration the TLS
 * files and the sinks are unknown, so each group is reported under one name.
 */
const configuredCheckNames = [...databaseCheckNames, 'key placement', 'file modes', 'tls', 'listen address', 'postgres roles', 'sinks and n8n'];

export interface DoctorOptions {
  env: Record<string, string | undefined>;
  cwd: string;
  clock?: Clock;
  /** Time limit of each sink request, in milliseconds. */
  sinkTimeoutMs?: number;
}

/**
 * Checks a deployment and returns one result per check. Writes nothing: no migration, no key
 * registration, no audit entry, no file. A check that cannot run because another failed is returned
 * with status `skip`. A configuration error skips every other check, because they need its settings.
 */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const clock = options.clock ?? systemClock;
  let loaded: ReturnType<typeof loadConfigAndFile>;
  try {
    loaded = loadConfigAndFile(options.env, options.cwd);
  } catch (error) {
    if (!(error instanceof StartupError)) throw error;
    const failed = fail('configuration', error.message, 'Correct the setting named above in the configuration file or the environment, then run `aegis doctor` again.');
    return [withConfigOption(failed, options.env.AEGIS_CONFIG), ...configuredCheckNames.map((name) => skip(name, 'configuration'))];
  }
  const { config, file } = loaded;
  const source = file ? `${file.path} and the environment are valid` : 'the environment is valid (no configuration file; set --config or AEGIS_CONFIG to use one)';

  const [databaseResults, sinkResults] = await Promise.all([checkDatabase(config, clock), checkSinks(config, options.sinkTimeoutMs ?? 3_000)]);
  const results = [
    ok('configuration', source),
    ...databaseResults,
    checkKeyPlacement(config, file, options.env),
    ...checkFileModes(config, file),
    ...checkTls(config, clock),
    checkListenAddress(config),
    checkPostgresRoles(config),
    ...sinkResults,
  ];
  return results.map((result) => withConfigOption(result, file?.path));
}

/**
 * Adds `--config FILE` to the aegis commands a fix names, so a command copied from the report acts on
 * the same deployment. Without it, `aegis init` would create a second vault under ./data.
 */
function withConfigOption(result: CheckResult, configFile: string | undefined): CheckResult {
  if (!configFile || !result.fix) return result;
  return { ...result, fix: result.fix.replace(/`aegis (?!--config)/g, `\`aegis --config ${configFile} `) };
}
