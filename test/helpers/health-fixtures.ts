import type { CreateCredentialInput } from '../../src/registry/credential-input.js';
import type { Caller } from '../../src/tokens/caller.js';
import type { TestVault } from './test-vault.js';

/** An admin caller for set-up through the services, so set-up writes no HTTP audit rows of its own. */
export const setupCaller: Caller = { actor: 'test-setup', tokenId: null, scopes: ['admin'], namePatterns: [], tags: [], ipAddress: null };

/** Creates an `api` credential whose test request is `GET {baseUrl}/check/{name}` carrying the value as a bearer token. */
export async function createApiCredential(t: TestVault, name: string, baseUrl: string, settings: Partial<CreateCredentialInput> = {}): Promise<string> {
  const credential = await t.vault.registry.create(setupCaller, {
    name,
    credential_type: 'httpHeaderAuth',
    provider: 'api',
    value: `value-of-${name}`,
    provider_config: { test: { method: 'GET', url: `${baseUrl}/check/${encodeURIComponent(name)}`, headers: { authorization: 'Bearer {{value}}' } } },
    ...settings,
  });
  return credential.id;
}

/** Reads the outbox rows of one alert type, oldest first. */
export async function alertsOf(t: TestVault, type: string, credentialName?: string) {
  let query = t.vault.db.kysely.selectFrom('aegis_alert_outbox').selectAll().where('alert_type', '=', type);
  if (credentialName !== undefined) query = query.where('credential_name', '=', credentialName);
  return query.orderBy('created_at').execute();
}

/** Reads the stored (not the reported) status of a credential. */
export async function storedStatus(t: TestVault, name: string): Promise<string> {
  const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('status').where('name', '=', name).executeTakeFirstOrThrow();
  return row.status;
}
