import type { ProviderAdapter } from '../adapter.js';
import { noCapabilities } from '../adapter.js';

/**
 * Supabase keys: registered today; the Management API calls for testing and rotating them are not
 * built yet, so this adapter declares no capabilities and rotation refuses them.
 */
export function createSupabaseAdapter(): ProviderAdapter {
  return {
    provider: 'supabase',
    capabilities: noCapabilities,
    checkConfig: (config) => config,
  };
}
