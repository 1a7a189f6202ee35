import { ValidationError } from '../../lib/errors.js';
import { scrubSecrets } from '../../lib/redact.js';
import type { Credential } from '../../registry/credential.types.js';
import { effectOf, noCapabilities, ProviderError, type ProviderAdapter, type ProviderMove, type TestResult } from '../adapter.js';
import { N8nClient, N8nRequestError, N8nResponseError, N8nUnsupportedError, shortenN8nText, type N8nSettings, type N8nWorkflow } from './n8n-client.js';

/**
 * n8n credentials through n8n's public API. Without N8N_URL and N8N_API_KEY the adapter declares no
 * capabilities, so rotation and health checks reject or skip n8n credentials as before, and it checks
 * no values, so create and update take any value as they did.
 */
export function createN8nAdapter(settings?: N8nSettings): ProviderAdapter {
  if (!settings) {
    return {
      provider: 'n8n',
      capabilities: noCapabilities,
      unavailableReason: 'n8n is not configured. Set N8N_URL and N8N_API_KEY and restart AEGIS.',
      takesGeneratedValues: false,
      checkConfig: (config) => config,
    };
  }
  const client = new N8nClient(settings);
  return {
    provider: 'n8n',
    capabilities: { test: true, setValue: true, issueValue: false, revoke: false, apply: true, list: true },
    takesGeneratedValues: false,
    checkConfig: (config) => config,
    checkValue: checkN8nValue,
    checkValueOnStore: true,

    /**
     * Healthy when n8n has the credential id (GET /credentials/{id}, or the credential list on n8n
     * versions without it). When n8n's credential test endpoint exists, its verdict decides.
     */
    async test(credential, value): Promise<TestResult> {
      const started = performance.now();
      const elapsed = () => Math.round(performance.now() - started);
      const id = credential.providerCredentialId;
      if (!id) return { healthy: false, responseTimeMs: 0, details: {}, error: 'the credential has no n8n credential id (provider_credential_id)' };
      try {
        const found = await credentialExists(client, id);
        if (!found) return { healthy: false, responseTimeMs: elapsed(), details: { n8n_id: id }, error: `n8n has no credential with id ${id}` };
        const verdict = await runN8nTest(client, id);
        if (verdict === null) return { healthy: true, responseTimeMs: elapsed(), details: { n8n_id: id, tested_by: 'exists' }, error: null };
        return {
          healthy: verdict.status === 'OK',
          responseTimeMs: elapsed(),
          details: { n8n_id: id, tested_by: 'n8n_test' },
          // n8n's message may quote the data it tested, such as a rejected token.
          error: verdict.status === 'OK' ? null : shortenN8nText(scrubSecrets(`n8n's credential test failed: ${verdict.message}`, value === null ? [] : [value])),
        };
      } catch (error) {
        if (error instanceof N8nUnsupportedError) return { healthy: false, skipped: true, responseTimeMs: elapsed(), details: { n8n_id: id }, error: error.message };
        return { healthy: false, responseTimeMs: elapsed(), details: { n8n_id: id }, error: scrubSecrets((error as Error).message, value === null ? [] : [value]) };
      }
    },

    /**
     * Replaces the credential's data at n8n with PATCH /credentials/{id}. Where n8n has no PATCH, it
     * creates a new credential with the data, points every workflow node that used the old id at the
     * new one, deletes the old credential and returns the new id.
     */
    async setValue(credential, value): Promise<ProviderMove | void> {
      const id = credential.providerCredentialId;
      if (!id) throw new ProviderError(`credential "${credential.name}" has no n8n credential id (provider_credential_id)`);
      const data = parseData(value);
      try {
        await client.request('PATCH', `/credentials/${encodeURIComponent(id)}`, { body: { data } });
        return;
      } catch (error) {
        if (!(error instanceof N8nUnsupportedError)) throw scrubbed(error, [value]);
      }
      try {
        return await replaceCredential(client, credential, id, data);
      } catch (error) {
        throw scrubbed(error, [value]);
      }
    },
  };
}

/** The credential's name in n8n: the one recorded at import or sync, else the AEGIS name. */
export function n8nName(credential: Credential): string {
  const recorded = credential.metadata.n8n_name;
  return typeof recorded === 'string' && recorded !== '' ? recorded : credential.name;
}

/** Rejects a value that is not the JSON object of an n8n credential's data, naming `value`. */
function checkN8nValue(value: string): void {
  if (readData(value) === undefined) throw new ValidationError('value', `must be ${dataShape}`);
}

/** The required form of an n8n credential's value, for messages. */
const dataShape = 'the JSON object of the n8n credential\'s data, e.g. {"apiKey": "..."}';

/** Returns the credential data in a value, or undefined when the value is not a JSON object. */
function readData(value: string): Record<string, unknown> | undefined {
  let data: unknown;
  try {
    data = JSON.parse(value);
  } catch {
    return undefined;
  }
  return typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : undefined;
}

function parseData(value: string): Record<string, unknown> {
  const data = readData(value);
  if (data === undefined) throw new ProviderError(`the value of an n8n credential must be ${dataShape}`);
  return data;
}

/**
 * Creates the replacement, re-points workflows, then deletes the old credential, in that order so no
 * workflow is left without one. The old credential is untouched until the last step, so when a step
 * fails, undoing the steps before it (undoReplace) leaves n8n as it was.
 */
async function replaceCredential(client: N8nClient, credential: Credential, oldId: string, data: Record<string, unknown>): Promise<ProviderMove> {
  const name = n8nName(credential);
  const created = await client.request<{ id?: unknown } | null>('POST', '/credentials', { body: { name, type: credential.credentialType, data } });
  if (typeof created?.id !== 'string' && typeof created?.id !== 'number') {
    throw new N8nResponseError('POST /credentials', `no credential id, so AEGIS cannot tell whether n8n created a credential named "${name}": check n8n for one and delete it`);
  }
  const newId = String(created.id);
  // Every workflow whose update was sent, the failed one too, because n8n may have applied an update whose response was lost.
  const touched: string[] = [];
  try {
    const workflows = await client.listWorkflows();
    for (const workflow of workflows) {
      if (!repointNodes(workflow, oldId, { id: newId, name })) continue;
      // The list may leave out fields the update needs, so the workflow is read in full first.
      const full = await client.getWorkflow(workflow.id);
      repointNodes(full, oldId, { id: newId, name });
      touched.push(workflow.id);
      await client.updateWorkflow(full);
    }
    await client.request('DELETE', `/credentials/${encodeURIComponent(oldId)}`);
  } catch (error) {
    const left = await undoReplace(client, { oldId, newId, name }, touched);
    // Undone: n8n is as before unless the failed call may still take effect (a timeout), so the engine
    // neither restores (which would replace the credential again) nor reports the provider as changed.
    if (left === null && (error instanceof N8nUnsupportedError || !(error instanceof Error))) throw error;
    if (left === null) throw new ProviderError((error as Error).message, effectOf(error) ?? 'unchanged');
    throw new ProviderError(`${(error as Error).message}; undoing the replacement failed too: ${left}`, 'left_changed');
  }
  return { providerCredentialId: newId };
}

/**
 * Undoes a replacement that failed part-way, trying each step even when an earlier one failed. Points
 * the touched workflows back at the old id, then deletes the new credential once no workflow uses it.
 * Returns null when every step worked, else a description of what is left changed at n8n.
 */
async function undoReplace(client: N8nClient, ids: { oldId: string; newId: string; name: string }, touched: string[]): Promise<string | null> {
  const stuck: string[] = [];
  for (const workflowId of touched) {
    try {
      const full = await client.getWorkflow(workflowId);
      if (repointNodes(full, ids.newId, { id: ids.oldId, name: ids.name })) await client.updateWorkflow(full);
    } catch {
      stuck.push(workflowId);
    }
  }
  if (stuck.length > 0) {
    return `n8n workflows ${stuck.join(', ')} still use n8n credential ${ids.newId}, which holds the new data, instead of credential ${ids.oldId}; credential ${ids.newId} was kept so that they keep working`;
  }
  try {
    await client.request('DELETE', `/credentials/${encodeURIComponent(ids.newId)}`);
    return null;
  } catch {
    return `n8n credential ${ids.newId}, created for the replacement and holding the new data, could not be deleted; no workflow uses it`;
  }
}

/** Points every node credential entry with `oldId` at `replacement`; returns whether any changed. */
export function repointNodes(workflow: N8nWorkflow, oldId: string, replacement: { id: string; name: string }): boolean {
  let changed = false;
  for (const node of workflow.nodes ?? []) {
    for (const [type, entry] of Object.entries(node.credentials ?? {})) {
      if (entry && String(entry.id) === oldId) {
        node.credentials![type] = { ...replacement };
        changed = true;
      }
    }
  }
  return changed;
}

async function credentialExists(client: N8nClient, id: string): Promise<boolean> {
  try {
    await client.request('GET', `/credentials/${encodeURIComponent(id)}`);
    return true;
  } catch (error) {
    if (error instanceof N8nRequestError && error.status === 404) return false;
    if (!(error instanceof N8nUnsupportedError)) throw error;
  }
  // n8n versions without GET /credentials/{id}: look the id up in the list.
  const all = await client.listCredentials();
  return all.some((entry) => String(entry.id) === id);
}

/** Runs n8n's credential test (POST /credentials/{id}/test) where this n8n has one; null where it has none. */
async function runN8nTest(client: N8nClient, id: string): Promise<{ status: string; message: string } | null> {
  try {
    const result = await client.request<{ status?: unknown; message?: unknown }>('POST', `/credentials/${encodeURIComponent(id)}/test`, { missingMeansUnsupported: true });
    return { status: String(result?.status ?? 'Error'), message: String(result?.message ?? '') };
  } catch (error) {
    if (error instanceof N8nUnsupportedError) return null;
    throw error;
  }
}

function scrubbed(error: unknown, secrets: string[]): unknown {
  if (error instanceof N8nUnsupportedError) return error;
  if (error instanceof ProviderError) return new ProviderError(shortenN8nText(scrubSecrets(error.message, secrets)), error.effect);
  return error;
}
