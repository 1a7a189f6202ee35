import type { Provider, RotationStrategy } from '../registry/credential.types.js';

/** Rotation settings a template gives the credentials imported from it. */
export interface RotationDefaults {
  rotation_enabled: boolean;
  rotation_strategy: RotationStrategy;
  rotation_interval_hours: number;
}

/**
 * The `schema` document of a template, as stored in aegis_templates.schema.
 * Strings in `provider_config` may contain `{{values.FIELD}}`, filled from the import's values; the
 * secret itself stays `{{value}}` (or `{{basic_auth:...}}`) for the provider adapter to fill at test time.
 */
export interface TemplateSchema {
  /** JSON schema of the import's `values` object. */
  fields: Record<string, unknown>;
  /** The field of `values` that contains the secret. It is sealed as version 1 and never stored in metadata. */
  secret_field: string;
  /** The service's default base URL, which `values.base_url` overrides; null for templates without one. */
  base_url: string | null;
  provider_config: Record<string, unknown>;
}

/** A credential template: a built-in one from the catalogue or one an admin added. */
export interface CredentialTemplate {
  name: string;
  /** The n8n credential type, stored as the credential's credential_type. */
  credential_type: string;
  provider: Provider;
  description: string | null;
  schema: TemplateSchema;
  rotation_defaults: RotationDefaults;
  builtin: boolean;
  created_at: string | null;
}
