import type { AdapterRegistry } from './adapter.js';
import { createApiAdapter } from './api/api.adapter.js';
import { createEnvAdapter } from './env/env.adapter.js';
import { createN8nAdapter } from './n8n/n8n.adapter.js';
import type { N8nSettings } from './n8n/n8n-client.js';
import { createPostgresAdapter } from './postgres/postgres.adapter.js';
import { createSupabaseAdapter } from './supabase/supabase.adapter.js';

export interface ProviderSettings {
  envAllowedDirs: ReadonlyArray<string>;
  /** AEGIS's own files, which env credentials cannot point at. */
  envOwnFiles?: ReadonlyArray<string>;
  envReloadCommands: Readonly<Record<string, string>>;
  postgresAdminConnections: Readonly<Record<string, string>>;
  /** Names and `*` patterns of the roles postgres credentials may name; undefined allows every ordinary role. */
  postgresAllowedRoles?: ReadonlyArray<string> | undefined;
  providerTimeoutMs: number;
  /** n8n's public API; without it the n8n adapter declares no capabilities. */
  n8n?: N8nSettings | undefined;
  supabaseAccessToken?: string | undefined;
  supabaseApiUrl?: string | undefined;
}

/** One adapter per provider; the type makes a missing one a compile error. */
export function createAdapters(settings: ProviderSettings): AdapterRegistry {
  return {
    env: createEnvAdapter({ allowedDirs: settings.envAllowedDirs, ownFiles: settings.envOwnFiles, reloadCommands: settings.envReloadCommands }),
    postgres: createPostgresAdapter({ adminConnections: settings.postgresAdminConnections, allowedRoles: settings.postgresAllowedRoles, timeoutMs: settings.providerTimeoutMs }),
    api: createApiAdapter({ defaultTimeoutMs: settings.providerTimeoutMs }),
    n8n: createN8nAdapter(settings.n8n),
    supabase: createSupabaseAdapter({ accessToken: settings.supabaseAccessToken, apiUrl: settings.supabaseApiUrl, timeoutMs: settings.providerTimeoutMs }),
  };
}
