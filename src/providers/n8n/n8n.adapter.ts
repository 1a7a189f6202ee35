import type { ProviderAdapter } from '../adapter.js';
import { noCapabilities } from '../adapter.js';

/**
 * n8n credentials: registered and imported today; applying, syncing, testing and rotating them through
 * n8n's public API are not built yet, so this adapter declares no capabilities and rotation refuses them.
 */
export function createN8nAdapter(): ProviderAdapter {
  return {
    provider: 'n8n',
    capabilities: noCapabilities,
    checkConfig: (config) => config,
  };
}
