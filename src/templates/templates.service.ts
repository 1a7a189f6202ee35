import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit.service.js';
import { AuditAction } from '../audit/audit.types.js';
import type { Db } from '../db/database.js';
import { fromJson, toIso, toJson } from '../db/values.js';
import type { Clock } from '../lib/clock.js';
import { markAudited, wasAudited } from '../audit/audited-errors.js';
import { AegisError, ConflictError, NotFoundError, PayloadTooLargeError, ValidationError } from '../lib/errors.js';
import { findCredentialByName } from '../registry/credentials.repository.js';
import { PROVIDERS, ROTATION_STRATEGIES, type Credential, type Provider } from '../registry/credential.types.js';
import type { RegistryService } from '../registry/registry.service.js';
import type { Caller } from '../tokens/caller.js';
import { builtinTemplates } from './catalogue.js';
import { checkFieldPatterns, checkValues, compileFields, fillProviderConfig, referencedFields } from './template-values.js';
import type { CredentialTemplate, RotationDefaults, TemplateSchema } from './template.types.js';

export interface TemplateDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  audit: AuditLog;
  registry: RegistryService;
}

export interface ImportRequest {
  template_name: string;
  values: Record<string, unknown>;
  name?: string;
  tags?: string[];
}

export interface NewTemplate {
  name: string;
  credential_type: string;
  provider: Provider;
  description?: string | null;
  schema: TemplateSchema;
  rotation_defaults?: RotationDefaults;
}

const templateNamePattern = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const defaultRotation: RotationDefaults = { rotation_enabled: false, rotation_strategy: 'manual', rotation_interval_hours: 2160 };

/**
 * Credential templates: the built-in catalogue (served from code) and the ones admins add (rows of
 * aegis_templates), and the import that turns a template and its values into a credential.
 */
export class TemplateService {
  readonly #deps: TemplateDeps;

  constructor(deps: TemplateDeps) {
    this.#deps = deps;
  }

  /** Lists built-in templates first, then added ones by name. */
  async list(caller: Caller): Promise<CredentialTemplate[]> {
    const rows = await this.#deps.db.kysely.selectFrom('aegis_templates').selectAll().orderBy('name').execute();
    const templates = [...builtinTemplates, ...rows.map(templateFromRow)];
    await this.#deps.audit.record({ credentialName: '*', action: 'templates_listed', actor: caller.actor, ipAddress: caller.ipAddress, success: true, details: { returned: templates.length } });
    return templates;
  }

  async find(name: string): Promise<CredentialTemplate> {
    const builtin = builtinTemplates.find((template) => template.name === name);
    if (builtin) return builtin;
    const row = await this.#deps.db.kysely.selectFrom('aegis_templates').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw new NotFoundError(`Template "${name}" not found. List templates with GET /templates.`, 'template_not_found');
    return templateFromRow(row);
  }

  /** Stores an admin's template after checking that its schema compiles and its provider_config refers only to its fields. */
  async add(caller: Caller, input: NewTemplate): Promise<CredentialTemplate> {
    checkNewTemplate(input);
    // Settings that use no field of the import are the same for every import, so a mistake there would fail each one.
    if (referencedFields(input.schema.provider_config).length === 0) {
      try {
        this.#deps.registry.checkProviderConfig(input.provider, input.schema.provider_config as Record<string, unknown>);
      } catch (error) {
        if (!(error instanceof ValidationError) || error.field === undefined) throw error;
        throw new ValidationError(`schema.${error.field}`, error.message.slice(error.field.length + 2));
      }
    }
    // Whether a rotation can get a new value depends on the provider and on provider_config having a
    // rotate request, not on the values an import fills in, so defaults that fail would fail every import.
    const rotation = input.rotation_defaults ?? defaultRotation;
    try {
      this.#deps.registry.checkRotationSettings({
        name: input.name,
        provider: input.provider,
        providerConfig: input.schema.provider_config as Record<string, unknown>,
        rotationEnabled: rotation.rotation_enabled,
        rotationStrategy: rotation.rotation_strategy,
      });
    } catch (error) {
      if (!(error instanceof ValidationError) || error.field === undefined) throw error;
      throw new ValidationError(`rotation_defaults.${error.field}`, error.message.slice(error.field.length + 2));
    }
    if (builtinTemplates.some((template) => template.name === input.name)) {
      throw new ConflictError('template_exists', `"${input.name}" is a built-in template. Choose another name.`);
    }
    const now = this.#deps.clock.now().toISOString();
    const template: CredentialTemplate = {
      name: input.name,
      credential_type: input.credential_type,
      provider: input.provider,
      description: input.description ?? null,
      schema: { ...input.schema, base_url: input.schema.base_url ?? null },
      rotation_defaults: input.rotation_defaults ?? defaultRotation,
      builtin: false,
      created_at: now,
    };
    await this.#deps.db.kysely.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('aegis_templates').select('id').where('name', '=', input.name).executeTakeFirst();
      if (existing) throw new ConflictError('template_exists', `A template named "${input.name}" already exists. Choose another name.`);
      await trx
        .insertInto('aegis_templates')
        .values({
          id: crypto.randomUUID(),
          name: template.name,
          credential_type: template.credential_type,
          provider: template.provider,
          description: template.description,
          schema: toJson(template.schema),
          rotation_defaults: toJson(template.rotation_defaults),
          created_at: now,
        })
        .execute();
      await this.#deps.audit.recordIn(trx, { credentialName: '*', action: 'template_created', actor: caller.actor, ipAddress: caller.ipAddress, success: true, target: template.name, details: { provider: template.provider } });
    });
    this.#deps.log.info({ template: template.name, actor: caller.actor }, 'template added');
    return template;
  }

  /**
   * Creates a credential from a template: the secret field sealed as version 1, the other values in
   * metadata, credential_type the template's n8n type. When a credential of that name already exists
   * and came from the same template, it is returned unchanged with `created: false`.
   */
  async import(caller: Caller, request: ImportRequest): Promise<{ credential: Credential; created: boolean }> {
    const template = await this.find(request.template_name);
    const values = checkValues(template, request.values);
    const secretField = template.schema.secret_field;
    const { [secretField]: secret, ...settings } = values;
    const name = request.name ?? template.name;

    const existing = await findCredentialByName(this.#deps.db.kysely, name);
    if (existing && existing.metadata.template === template.name) {
      const detail = await this.#deps.registry.get(caller, name);
      await this.#recordImport(caller, detail.credential, template.name, false);
      return { credential: detail.credential, created: false };
    }

    const { config: providerConfig, omitted } = fillProviderConfig(template.schema.provider_config, settings);
    this.#checkOmittedSettings(template, providerConfig, omitted);
    let credential: Credential;
    try {
      credential = await this.#deps.registry.create(caller, {
        name,
        credential_type: template.credential_type,
        provider: template.provider,
        description: template.description,
        provider_config: providerConfig,
        value: secret as string,
        tags: request.tags ?? [],
        metadata: { template: template.name, ...settings },
        rotation_enabled: template.rotation_defaults.rotation_enabled,
        rotation_strategy: template.rotation_defaults.rotation_strategy,
        rotation_interval_hours: template.rotation_defaults.rotation_interval_hours,
      });
    } catch (error) {
      throw namedAfterSecretField(error, secretField);
    }
    await this.#recordImport(caller, credential, template.name, true);
    return { credential, created: true };
  }

  /**
   * Rejects, naming `values.FIELD`, a provider_config that lacks a setting the provider requires because the
   * import left out the field of that setting's placeholder. Any other problem is left for the create to report.
   */
  #checkOmittedSettings(template: CredentialTemplate, providerConfig: Record<string, unknown>, omitted: Map<string, string>): void {
    if (omitted.size === 0) return;
    try {
      this.#deps.registry.checkProviderConfig(template.provider, providerConfig);
    } catch (error) {
      if (!(error instanceof ValidationError) || error.field === undefined) return;
      const field = omitted.get(error.field);
      if (field !== undefined) throw new ValidationError(`values.${field}`, `is required, because the template's ${error.field} uses it`);
    }
  }

  async #recordImport(caller: Caller, credential: Credential, templateName: string, created: boolean): Promise<void> {
    await this.#deps.audit.record({
      credentialId: credential.id,
      credentialName: credential.name,
      action: AuditAction.imported,
      actor: caller.actor,
      ipAddress: caller.ipAddress,
      success: true,
      details: { template: templateName, created },
    });
  }
}

/**
 * Renames `value` to `values.SECRET_FIELD` in a create's bad-input error, because the import's request
 * has no `value`: the secret comes from that field. The audit entry the create wrote is kept.
 */
function namedAfterSecretField(error: unknown, secretField: string): unknown {
  if (!(error instanceof AegisError) || error.field !== 'value') return error;
  const message = error.message.slice('value: '.length);
  let renamed: AegisError;
  if (error instanceof PayloadTooLargeError) renamed = new PayloadTooLargeError(`values.${secretField}`, message);
  else if (error instanceof ValidationError) renamed = new ValidationError(`values.${secretField}`, message, error.code);
  else return error;
  if (wasAudited(error)) markAudited(renamed);
  return renamed;
}

function templateFromRow(row: { name: string; credential_type: string; provider: string; description: string | null; schema: unknown; rotation_defaults: unknown; created_at: Date | string }): CredentialTemplate {
  return {
    name: row.name,
    credential_type: row.credential_type,
    provider: row.provider as Provider,
    description: row.description,
    schema: fromJson<TemplateSchema>(row.schema),
    rotation_defaults: row.rotation_defaults === null ? defaultRotation : fromJson<RotationDefaults>(row.rotation_defaults),
    builtin: false,
    created_at: toIso(row.created_at),
  };
}

/** Checks what the route schema cannot: the field schema compiles, and the secret and placeholders name real fields. */
function checkNewTemplate(input: NewTemplate): void {
  if (!templateNamePattern.test(input.name)) throw new ValidationError('name', 'must be 1 to 64 lowercase letters, digits, _ and -, starting with a letter or digit');
  if (!(PROVIDERS as ReadonlyArray<string>).includes(input.provider)) throw new ValidationError('provider', `must be one of ${PROVIDERS.join(', ')}`);
  const fields = input.schema.fields;
  if (fields.type !== 'object') throw new ValidationError('schema.fields.type', 'must be "object": the fields describe the values object');
  checkFieldPatterns('schema.fields', fields);
  compileFields('schema.fields', fields);
  const properties = (fields.properties ?? {}) as Record<string, unknown>;
  if (Object.hasOwn(properties, 'template')) throw new ValidationError('schema.fields.properties.template', 'is reserved for the template name in metadata. Rename the field.');
  const required = Array.isArray(fields.required) ? (fields.required as unknown[]) : [];
  // Own keys only, so a field named `constructor` or `toString` counts only when the schema declares it.
  if (!Object.hasOwn(properties, input.schema.secret_field) || !required.includes(input.schema.secret_field)) {
    throw new ValidationError('schema.secret_field', `must name a required field of schema.fields, got "${input.schema.secret_field}"`);
  }
  // A default would be a secret kept in plain text in aegis_templates, shown by GET /templates and shared by every import.
  const secretSchema = properties[input.schema.secret_field];
  if (secretSchema !== null && typeof secretSchema === 'object' && Object.hasOwn(secretSchema, 'default')) {
    throw new ValidationError(`schema.fields.properties.${input.schema.secret_field}.default`, 'is not allowed on the secret field: each import must send its own secret. Remove the default.');
  }
  const unknown = referencedFields(input.schema.provider_config).find((field) => !Object.hasOwn(properties, field) || field === input.schema.secret_field);
  if (unknown !== undefined) {
    throw new ValidationError('schema.provider_config', `refers to {{values.${unknown}}}, which is not a non-secret field of schema.fields (use {{value}} for the secret)`);
  }
  const rotation = input.rotation_defaults;
  if (rotation && !(ROTATION_STRATEGIES as ReadonlyArray<string>).includes(rotation.rotation_strategy)) {
    throw new ValidationError('rotation_defaults.rotation_strategy', `must be one of ${ROTATION_STRATEGIES.join(', ')}`);
  }
}
