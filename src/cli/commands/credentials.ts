import type { Command } from 'commander';
import type { CreateCredentialInput, UpdateCredentialInput } from '../../registry/credential-input.js';
import { PROVIDERS, ROTATION_STRATEGIES, STATUSES, type CredentialStatus, type Provider, type RotationStrategy } from '../../registry/credential.types.js';
import { credentialView } from '../../registry/credential-view.js';
import { escapeControls } from '../../lib/text.js';
import { checkCreateInput, checkUpdateInput, nameCredentialOption } from '../input-check.js';
import { cliCaller, collectTag, CommandError, integerAtLeast, parseInteger, printJson, printTable, readStdin, withVault } from '../context.js';

interface SettingOptions {
  description?: string;
  expiresAt?: string;
  rotation?: boolean;
  rotationInterval?: number;
  rotationStrategy?: string;
  alertThreshold?: number;
  rotationCron?: string | false;
  rotationTimezone?: string | false;
  valuePolicy?: string | false;
  tag?: string[];
  metadata?: string;
  providerId?: string;
  providerConfig?: string;
  valueStdin?: boolean;
  valueEnv?: string;
  json?: boolean;
}

function addSettingOptions(command: Command): Command {
  return command
    .option('--description <text>', 'free text shown in lists')
    .option('--expires-at <date-time>', 'expiry, ISO-8601 with offset (e.g. 2027-01-31T00:00:00Z)')
    .option('--rotation', 'enable rotation')
    .option('--no-rotation', 'disable rotation')
    .option('--rotation-interval <hours>', 'hours between scheduled rotations, counted in UTC', parseInteger)
    .option('--rotation-strategy <strategy>', `one of ${ROTATION_STRATEGIES.join(', ')}`)
    .option('--alert-threshold <hours>', 'hours before expiry when the credential counts as expiring', parseInteger)
    .option('--rotation-cron <expression>', 'five-field cron expression for scheduled rotations, e.g. "30 2 * * *" (instead of --rotation-interval)')
    .option('--no-rotation-cron', 'remove the cron expression (update)')
    .option('--rotation-timezone <zone>', 'IANA time zone the cron expression is read in (default UTC), e.g. Europe/Berlin')
    .option('--no-rotation-timezone', 'read the cron expression in UTC again (update)')
    .option('--value-policy <json>', 'generated values as a JSON object, e.g. {"length":40,"prefix":"sk_"}; docs/rotation.md lists the fields')
    .option('--no-value-policy', 'remove the value policy (update)')
    .option('--tag <tag>', 'a tag; repeat for several (replaces the tag list on update)', collectTag)
    .option('--metadata <json>', 'a JSON object of metadata')
    .option('--provider-id <id>', "the provider's id for it (n8n credential id, ...)")
    .option('--provider-config <json>', 'provider settings as a JSON object, e.g. {"file":"/srv/app/.env","variable":"API_KEY"}')
    .option('--value-stdin', 'read the value from standard input (values are never taken from arguments)')
    .option('--value-env <variable>', 'read the value from this environment variable')
    .option('--json', 'print JSON');
}

async function readSettings(options: SettingOptions): Promise<UpdateCredentialInput> {
  const settings: UpdateCredentialInput = {};
  if (options.description !== undefined) settings.description = options.description;
  if (options.expiresAt !== undefined) settings.expires_at = options.expiresAt;
  if (options.rotation !== undefined) settings.rotation_enabled = options.rotation;
  if (options.rotationInterval !== undefined) settings.rotation_interval_hours = options.rotationInterval;
  if (options.rotationStrategy !== undefined) {
    if (!(ROTATION_STRATEGIES as ReadonlyArray<string>).includes(options.rotationStrategy)) {
      throw new CommandError(`--rotation-strategy must be one of ${ROTATION_STRATEGIES.join(', ')}`, 2);
    }
    settings.rotation_strategy = options.rotationStrategy as RotationStrategy;
  }
  if (options.alertThreshold !== undefined) settings.alert_threshold_hours = options.alertThreshold;
  // Commander gives false for the --no-... form, which clears the setting.
  if (options.rotationCron !== undefined) settings.rotation_cron = options.rotationCron === false ? null : options.rotationCron;
  if (options.rotationTimezone !== undefined) settings.rotation_timezone = options.rotationTimezone === false ? null : options.rotationTimezone;
  if (options.valuePolicy !== undefined) settings.value_policy = options.valuePolicy === false ? null : (parseObject('--value-policy', options.valuePolicy) as UpdateCredentialInput['value_policy']);
  if (options.tag !== undefined) settings.tags = options.tag;
  if (options.metadata !== undefined) settings.metadata = parseObject('--metadata', options.metadata);
  if (options.providerId !== undefined) settings.provider_credential_id = options.providerId;
  if (options.providerConfig !== undefined) settings.provider_config = parseObject('--provider-config', options.providerConfig);
  if (options.valueStdin && options.valueEnv !== undefined) throw new CommandError('give the value with --value-stdin or with --value-env, not both', 2);
  if (options.valueStdin) settings.value = await readStdin();
  else if (options.valueEnv !== undefined) {
    const value = process.env[options.valueEnv];
    if (value === undefined) throw new CommandError(`environment variable ${options.valueEnv} is not set`, 2);
    settings.value = value;
  }
  return settings;
}

function parseObject(option: string, text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new CommandError(`${option} must be a JSON object`, 2);
}

export function registerCredentialCommands(program: Command): void {
  const credentials = program.command('credentials').description('Register, list, read, change and retire credentials (never prints values)');

  credentials
    .command('list')
    .description('List credentials with their status as of now')
    .option('--status <status>', `one of ${STATUSES.join(', ')}`)
    .option('--provider <provider>', `one of ${PROVIDERS.join(', ')}`)
    .option('--type <type>', 'credential type')
    .option('--tag <tag>', 'only credentials with this tag')
    .option('--limit <count>', 'at most this many', integerAtLeast(1), 100)
    .option('--offset <count>', 'skip this many', integerAtLeast(0), 0)
    .option('--json', 'print JSON')
    .action(async (options: { status?: string; provider?: string; type?: string; tag?: string; limit: number; offset: number; json?: boolean }) => {
      if (options.status !== undefined && !(STATUSES as ReadonlyArray<string>).includes(options.status)) {
        throw new CommandError(`--status must be one of ${STATUSES.join(', ')}`, 2);
      }
      if (options.provider !== undefined && !(PROVIDERS as ReadonlyArray<string>).includes(options.provider)) {
        throw new CommandError(`--provider must be one of ${PROVIDERS.join(', ')}`, 2);
      }
      await withVault(async (vault) => {
        const page = await vault.registry.list(
          cliCaller(),
          { status: options.status as CredentialStatus | undefined, provider: options.provider, credentialType: options.type, tag: options.tag },
          { limit: options.limit, offset: options.offset },
        );
        if (options.json) return printJson({ credentials: page.credentials.map(credentialView), total: page.total, by_status: page.byStatus });
        printTable(
          ['NAME', 'STATUS', 'PROVIDER', 'TYPE', 'EXPIRES', 'TAGS'],
          page.credentials.map((c) => [c.name, c.status, c.provider, c.credentialType, c.expiresAt, c.tags.join(',')]),
        );
        process.stdout.write(`${page.credentials.length} of ${page.total} shown\n`);
      });
    });

  credentials
    .command('get <name>')
    .description('Show one credential, its health and rotation settings (not its value)')
    .option('--json', 'print JSON')
    .action(async (name: string, options: { json?: boolean }) => {
      await withVault(async (vault) => {
        const detail = await vault.registry.get(cliCaller(), name);
        const view = credentialView(detail.credential);
        const health = {
          status: detail.health.status,
          checked_at: detail.health.checkedAt,
          response_time_ms: detail.health.responseTimeMs,
          error_message: detail.health.errorMessage,
        };
        if (options.json) return printJson({ ...view, current_version: detail.currentVersion, version_count: detail.versionCount, health });
        for (const [key, value] of Object.entries({ ...view, current_version: detail.currentVersion, health: detail.health.status })) {
          const text = typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
          // A description may contain line breaks and C1 control characters, which would break the
          // one-line-per-field layout or move the cursor, so they are escaped as printTable does.
          process.stdout.write(`${key.padEnd(24)} ${escapeControls(text)}\n`);
        }
      });
    });

  addSettingOptions(
    credentials
      .command('create <name>')
      .description('Register a credential; a value given on stdin or in a variable is sealed as version 1')
      .requiredOption('--type <type>', 'credential type, e.g. openAiApi or env_var')
      .option('--provider <provider>', `one of ${PROVIDERS.join(', ')}`, 'n8n'),
  ).action(async (name: string, options: SettingOptions & { type: string; provider: string }) => {
    if (!(PROVIDERS as ReadonlyArray<string>).includes(options.provider)) throw new CommandError(`--provider must be one of ${PROVIDERS.join(', ')}`, 2);
    const settings = await readSettings(options);
    const input: CreateCredentialInput = {
      ...settings,
      name,
      credential_type: options.type,
      provider: options.provider as Provider,
      rotation_enabled: settings.rotation_enabled ?? false,
    };
    checkCreateInput(input);
    await withVault(async (vault) => {
      const credential = await vault.registry.create(cliCaller(), input).catch(nameCredentialOption);
      if (options.json) return printJson(credentialView(credential));
      process.stdout.write(`created ${credential.name} (${credential.id})${input.value !== undefined ? ', value sealed as version 1' : ''}\n`);
    });
  });

  addSettingOptions(credentials.command('update <name>').description('Change settings; a new value writes a new version')).action(
    async (name: string, options: SettingOptions) => {
      const settings = await readSettings(options);
      if (Object.keys(settings).length === 0) throw new CommandError('nothing to change: give at least one option, e.g. --description or --value-stdin', 2);
      checkUpdateInput(settings);
      await withVault(async (vault) => {
        const { credential, updatedFields } = await vault.registry.update(cliCaller(), name, settings).catch(nameCredentialOption);
        if (options.json) return printJson({ credential: credentialView(credential), updated_fields: updatedFields });
        process.stdout.write(`updated ${credential.name}: ${updatedFields.join(', ')}\n`);
      });
    },
  );

  credentials
    .command('retire <name>')
    .description('Retire a credential: it stays in the registry and the audit log but is no longer active')
    .option('--json', 'print JSON')
    .action(async (name: string, options: { json?: boolean }) => {
      await withVault(async (vault) => {
        const { credential, alreadyRetired } = await vault.registry.retire(cliCaller(), name);
        if (options.json) return printJson({ status: 'retired', credential_name: credential.name, already_retired: alreadyRetired });
        process.stdout.write(alreadyRetired ? `${credential.name} was already retired\n` : `retired ${credential.name}\n`);
      });
    });
}
