import type { CredentialTemplate, RotationDefaults } from './template.types.js';

/** Vendor keys are rotated by hand at the vendor by default: AEGIS tests them and warns before expiry. */
const manualRotation: RotationDefaults = { rotation_enabled: false, rotation_strategy: 'manual', rotation_interval_hours: 2160 };

/** A field with the service's base URL. The template sets its default, and an import may point it elsewhere. */
function baseUrlField(defaultUrl: string): Record<string, unknown> {
  return { type: 'string', pattern: '^https?://[^\\s{}]+$', maxLength: 2048, default: defaultUrl, description: 'Base URL of the service' };
}

interface ApiTemplateInput {
  name: string;
  credentialType: string;
  description: string;
  baseUrl: string;
  secretField: string;
  /** JSON schema of the secret field (pattern, length). */
  secret: Record<string, unknown>;
  /** Other fields, all optional unless listed in `required`. */
  fields?: Record<string, Record<string, unknown>>;
  required?: string[];
  test: { method: 'GET' | 'POST'; path: string; headers?: Record<string, string> };
}

/** A template whose credential is an `api` credential with one test request below the base URL. */
function apiTemplate(input: ApiTemplateInput): CredentialTemplate {
  return {
    name: input.name,
    credential_type: input.credentialType,
    provider: 'api',
    description: input.description,
    schema: {
      fields: {
        type: 'object',
        additionalProperties: false,
        required: [input.secretField, ...(input.required ?? [])],
        properties: { [input.secretField]: input.secret, ...input.fields, base_url: baseUrlField(input.baseUrl) },
      },
      secret_field: input.secretField,
      base_url: input.baseUrl,
      provider_config: {
        test: { method: input.test.method, url: `{{values.base_url}}${input.test.path}`, ...(input.test.headers ? { headers: input.test.headers } : {}) },
      },
    },
    rotation_defaults: manualRotation,
    builtin: true,
    created_at: null,
  };
}

const bearer = { authorization: 'Bearer {{value}}' };

/** The built-in templates, served from code and listed before the ones admins add. */
export const builtinTemplates: ReadonlyArray<CredentialTemplate> = [
  apiTemplate({
    name: 'openai',
    credentialType: 'openAiApi',
    description: 'OpenAI API key; the test lists the models.',
    baseUrl: 'https://api.openai.com',
    secretField: 'api_key',
    secret: { type: 'string', pattern: '^sk-[A-Za-z0-9_-]{20,}$', maxLength: 512, description: 'API key, starting with sk-' },
    fields: { organization_id: { type: 'string', pattern: '^org-[A-Za-z0-9]+$', maxLength: 128 } },
    test: { method: 'GET', path: '/v1/models', headers: bearer },
  }),
  apiTemplate({
    name: 'anthropic',
    credentialType: 'anthropicApi',
    description: 'Anthropic API key; the test lists the models.',
    baseUrl: 'https://api.anthropic.com',
    secretField: 'api_key',
    secret: { type: 'string', pattern: '^sk-ant-[A-Za-z0-9_-]{20,}$', maxLength: 512, description: 'API key, starting with sk-ant-' },
    test: { method: 'GET', path: '/v1/models', headers: { 'x-api-key': '{{value}}', 'anthropic-version': '2023-06-01' } },
  }),
  apiTemplate({
    name: 'github',
    credentialType: 'githubApi',
    description: 'GitHub personal access token; the test reads the authenticated user.',
    baseUrl: 'https://api.github.com',
    secretField: 'access_token',
    secret: {
      type: 'string',
      pattern: '^(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})$',
      maxLength: 512,
      description: 'Token starting with ghp_, gho_, ghu_, ghs_, ghr_ or github_pat_',
    },
    fields: { user: { type: 'string', pattern: '^[A-Za-z0-9-]{1,39}$' } },
    test: { method: 'GET', path: '/user', headers: { ...bearer, accept: 'application/vnd.github+json' } },
  }),
  apiTemplate({
    name: 'cloudflare',
    credentialType: 'cloudflareApi',
    description: 'Cloudflare API token; the test calls the token verification endpoint.',
    baseUrl: 'https://api.cloudflare.com',
    secretField: 'api_token',
    secret: { type: 'string', pattern: '^[A-Za-z0-9_-]{40,}$', maxLength: 512, description: 'API token of 40 or more letters, digits, _ and -' },
    fields: { account_id: { type: 'string', pattern: '^[a-f0-9]{32}$' } },
    test: { method: 'GET', path: '/client/v4/user/tokens/verify', headers: bearer },
  }),
  apiTemplate({
    name: 'telegram',
    credentialType: 'telegramApi',
    description: 'Telegram bot token; the test calls getMe, with the token in the path as the Bot API requires.',
    baseUrl: 'https://api.telegram.org',
    secretField: 'access_token',
    secret: { type: 'string', pattern: '^[0-9]{5,16}:[A-Za-z0-9_-]{30,}$', maxLength: 256, description: 'Bot token, e.g. 123456789:AA...' },
    test: { method: 'GET', path: '/bot{{value}}/getMe' },
  }),
  apiTemplate({
    name: 'stripe',
    credentialType: 'stripeApi',
    description: 'Stripe secret or restricted key; the test reads the balance.',
    baseUrl: 'https://api.stripe.com',
    secretField: 'secret_key',
    secret: { type: 'string', pattern: '^(sk|rk)_(test|live)_[A-Za-z0-9]{10,}$', maxLength: 512, description: 'Key starting with sk_test_, sk_live_, rk_test_ or rk_live_' },
    test: { method: 'GET', path: '/v1/balance', headers: bearer },
  }),
  apiTemplate({
    name: 'sendgrid',
    credentialType: 'sendGridApi',
    description: 'SendGrid API key; the test lists the key\'s scopes.',
    baseUrl: 'https://api.sendgrid.com',
    secretField: 'api_key',
    secret: { type: 'string', pattern: '^SG\\.[A-Za-z0-9_-]{16,}\\.[A-Za-z0-9_-]{16,}$', maxLength: 512, description: 'API key of the form SG.xxx.yyy' },
    test: { method: 'GET', path: '/v3/scopes', headers: bearer },
  }),
  apiTemplate({
    name: 'slack',
    credentialType: 'slackApi',
    description: 'Slack bot or user token; the test calls auth.test.',
    baseUrl: 'https://slack.com',
    secretField: 'access_token',
    secret: { type: 'string', pattern: '^xox[abposr]-[A-Za-z0-9-]{10,}$', maxLength: 512, description: 'Token starting with xoxb-, xoxp- or another xox?- prefix' },
    // NOTE: Slack responds to auth.test with HTTP 200 and `"ok": false` for a revoked token, and the api
    // adapter checks only the status, so this test detects an unreachable Slack but not a revoked token.
    test: { method: 'POST', path: '/api/auth.test', headers: bearer },
  }),
  {
    name: 'supabase',
    credential_type: 'supabaseApi',
    provider: 'supabase',
    description: 'Supabase project API key; the test calls the project\'s REST endpoint. Secret keys rotate through the Management API.',
    schema: {
      fields: {
        type: 'object',
        additionalProperties: false,
        required: ['api_key', 'project_ref', 'project_url'],
        properties: {
          api_key: { type: 'string', pattern: '^(sb_secret_|sb_publishable_|eyJ)[A-Za-z0-9._-]{10,}$', maxLength: 4096, description: 'Key starting with sb_secret_, sb_publishable_ or a legacy JWT (eyJ...)' },
          project_ref: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
          project_url: { type: 'string', pattern: '^https?://[^\\s{}]+$', maxLength: 2048, description: 'Project URL, e.g. https://abcdefghijklmnopqrst.supabase.co' },
          key_type: { type: 'string', enum: ['secret', 'publishable', 'anon', 'service_role'], default: 'secret' },
        },
      },
      secret_field: 'api_key',
      base_url: null,
      provider_config: { project_ref: '{{values.project_ref}}', key_type: '{{values.key_type}}', project_url: '{{values.project_url}}' },
    },
    rotation_defaults: manualRotation,
    builtin: true,
    created_at: null,
  },
  {
    name: 'postgres',
    credential_type: 'postgres',
    provider: 'postgres',
    description: 'PostgreSQL role password; the test logs in as the role. AEGIS rotates it with ALTER ROLE through an administrative connection.',
    schema: {
      fields: {
        type: 'object',
        additionalProperties: false,
        required: ['user', 'password'],
        properties: {
          user: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_$-]{0,62}$', description: 'Role name' },
          password: { type: 'string', minLength: 1, maxLength: 1024 },
          database: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_$-]{0,62}$' },
          connection: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'Name of an administrative connection (AEGIS_POSTGRES_CONNECTIONS); default when unset' },
        },
      },
      secret_field: 'password',
      base_url: null,
      provider_config: { role: '{{values.user}}', database: '{{values.database}}', connection: '{{values.connection}}' },
    },
    rotation_defaults: { rotation_enabled: true, rotation_strategy: 'scheduled', rotation_interval_hours: 720 },
    builtin: true,
    created_at: null,
  },
  {
    name: 'bearer',
    credential_type: 'httpHeaderAuth',
    provider: 'api',
    description: 'Any bearer token; the test sends it to test_url in the Authorization header.',
    schema: {
      fields: {
        type: 'object',
        additionalProperties: false,
        required: ['token', 'test_url'],
        properties: {
          token: { type: 'string', minLength: 8, maxLength: 8192, pattern: '^[\\x21-\\x7e]+$', description: 'Token of printable ASCII without spaces' },
          test_url: { type: 'string', pattern: '^https?://[^\\s{}]+$', maxLength: 2048, description: 'URL that responds with 2xx to a valid token' },
        },
      },
      secret_field: 'token',
      base_url: null,
      provider_config: { test: { method: 'GET', url: '{{values.test_url}}', headers: bearer } },
    },
    rotation_defaults: manualRotation,
    builtin: true,
    created_at: null,
  },
  {
    name: 'basic_auth',
    credential_type: 'httpBasicAuth',
    provider: 'api',
    description: 'User name and password for HTTP Basic authentication; the test sends them to test_url.',
    schema: {
      fields: {
        type: 'object',
        additionalProperties: false,
        required: ['user', 'password', 'test_url'],
        properties: {
          // RFC 7617 forbids a colon in the user-id; braces are excluded so the name cannot form a placeholder.
          user: { type: 'string', pattern: '^[^:{}\\s]{1,256}$' },
          password: { type: 'string', minLength: 1, maxLength: 1024 },
          test_url: { type: 'string', pattern: '^https?://[^\\s{}]+$', maxLength: 2048, description: 'URL that responds with 2xx to valid credentials' },
        },
      },
      secret_field: 'password',
      base_url: null,
      provider_config: { test: { method: 'GET', url: '{{values.test_url}}', headers: { authorization: '{{basic_auth:{{values.user}}}}' } } },
    },
    rotation_defaults: manualRotation,
    builtin: true,
    created_at: null,
  },
];
