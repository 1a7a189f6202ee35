import type { Logger } from 'pino';
import { enqueueAlert } from '../../alerts/outbox.repository.js';
import type { AuditLog } from '../../audit/audit.service.js';
import { wasAudited } from '../../audit/audited-errors.js';
import type { Db } from '../../db/database.js';
import { toJson } from '../../db/values.js';
import { safeName } from '../../import/n8n-import.js';
import { plainTextPattern } from '../../http/shared-schemas.js';
import type { Clock } from '../../lib/clock.js';
import { KeyedQueue } from '../../lib/keyed-queue.js';
import { uuid7 } from '../../lib/uuid7.js';
import { AegisError, ConflictError, ForbiddenError, NotFoundError } from '../../lib/errors.js';
import { CREDENTIAL_NAME_PATTERN, CREDENTIAL_TYPE_RULE, isValidCredentialName, isValidCredentialType } from '../../lib/names.js';
import { loadReachableCredential, runAudited } from '../../registry/credential-access.js';
import type { Credential } from '../../registry/credential.types.js';
import { credentialFromRow, findCredentialByName, findCredentialForChange } from '../../registry/credentials.repository.js';
import type { RegistryService } from '../../registry/registry.service.js';
import type { Caller } from '../../tokens/caller.js';
import { ProviderError } from '../adapter.js';
import { ApplyIntents, applyCrashPoint, applyTarget, type ApplyRecoveryReport } from './apply-intents.js';
import { N8nClient, N8nRequestError, N8nResponseError, N8nUnsupportedError, shortenN8nText, type N8nCredentialSummary, type N8nSettings } from './n8n-client.js';
import { n8nName } from './n8n.adapter.js';

export interface ApplyRequest {
  workflow_id: string;
  node_name: string;
  requested_by?: string | undefined;
}

export interface SyncReport {
  synced: number;
  new: Array<{ name: string; n8n_id: string; type: string }>;
  updated: Array<{ name: string; n8n_id: string; changes: string[] }>;
  missing: Array<{ name: string; n8n_id: string }>;
  /** n8n credentials left out because AEGIS could not store them as they are, with the reason. */
  skipped: Array<{ n8n_id: string; n8n_name: string; reason: string }>;
}

interface N8nServiceDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  audit: AuditLog;
  registry: RegistryService;
  settings: N8nSettings | undefined;
  /** This process's name as lease owners are named (`processOwner`), recorded on apply intents. */
  owner: string;
  /** See `applyAbandonAfterMs`. */
  applyAbandonAfterMs: number;
}

/** Applies n8n credentials to workflow nodes and syncs AEGIS's register with n8n's credential list. */
export class N8nService {
  readonly #deps: N8nServiceDeps;
  readonly #client: N8nClient | null;
  readonly #intents: ApplyIntents;

  constructor(deps: N8nServiceDeps) {
    this.#deps = deps;
    this.#client = deps.settings ? new N8nClient(deps.settings) : null;
    this.#intents = new ApplyIntents({ db: deps.db, clock: deps.clock, log: deps.log, audit: deps.audit, owner: deps.owner, abandonAfterMs: deps.applyAbandonAfterMs });
  }

  /**
   * Sets the named node's credential entry for the credential's n8n type to {id, name} and writes the
   * workflow back. Other nodes, connections and settings stay as n8n returned them. No value is read.
   *
   * Before contacting n8n the apply writes an intent (see ApplyIntents), deleted once the audit entry is
   * committed. The entry's id is chosen here, and the success entry, the failure entry and recovery's
   * entry after a crash all use it, so each apply gets one entry.
   */
  async apply(caller: Caller, name: string, request: ApplyRequest): Promise<{ status: 'applied'; credential: string; workflow_id: string; node: string }> {
    const target = applyTarget(request.workflow_id);
    const details = { workflow_id: request.workflow_id, node_name: request.node_name, requested_by: request.requested_by ?? null };
    const entryId = uuid7();
    let entryCommitted = false;
    try {
      const result = await runAudited(
        { audit: this.#deps.audit, db: this.#deps.db.kysely },
        caller,
        'applied',
        name,
        async () => {
          const credential = await loadReachableCredential(this.#deps.db.kysely, caller, name);
          const n8nId = checkApplicable(credential);
          const client = this.#requireClient();
          const intent = {
            auditEntryId: entryId,
            credentialId: credential.id,
            credentialName: credential.name,
            credentialType: credential.credentialType,
            n8nCredentialId: n8nId,
            workflowId: request.workflow_id,
            nodeName: request.node_name,
            requestedBy: request.requested_by ?? null,
            actor: caller.actor,
            ipAddress: caller.ipAddress,
          };
          // Applies to one workflow take turns: each reads the workflow and writes all of it back, so two
          // at once would each write over the other's node. The intent is written in its turn, so that
          // the wait for earlier applies does not count towards the time after which it is abandoned.
          await workflowUpdates.run(`${client.url} ${request.workflow_id}`, async () => {
            await this.#intents.begin(intent);
            applyCrashPoint('apply_after_intent');
            await setNodeCredential(client, credential, n8nId, request);
          });
          applyCrashPoint('apply_after_n8n');
          await this.#deps.audit.record({
            entryId,
            credentialId: credential.id,
            credentialName: credential.name,
            action: 'applied',
            actor: caller.actor,
            target,
            ipAddress: caller.ipAddress,
            success: true,
            details,
          });
          applyCrashPoint('apply_after_audit');
          this.#deps.log.info({ credentialId: credential.id, workflowId: request.workflow_id, node: request.node_name, actor: caller.actor }, 'credential applied to an n8n workflow node');
          return { status: 'applied' as const, credential: credential.name, workflow_id: request.workflow_id, node: request.node_name };
        },
        providerProblem,
        { target, details, entryId },
      );
      entryCommitted = true;
      return result;
    } catch (error) {
      // runAudited marks the error once the failure entry is committed.
      entryCommitted = wasAudited(error);
      throw error;
    } finally {
      await this.#intents.finish(entryId, entryCommitted);
    }
  }

  /**
   * Writes the audit entries of applies that stopped processes left without one, reading from n8n
   * whether each node uses its credential now. Runs at start and before each scheduled rotation run.
   */
  recoverApplies(): Promise<ApplyRecoveryReport> {
    return this.#intents.recover(this.#client);
  }

  /**
   * Pages through n8n's credential list: registers credentials AEGIS lacks (provider n8n, no value),
   * updates changed names and types, and reports those n8n no longer has without deleting them. Against
   * an n8n without the list endpoint it changes nothing and raises one alert per n8n URL.
   */
  async sync(caller: Caller): Promise<SyncReport> {
    return runAudited(
      { audit: this.#deps.audit, db: this.#deps.db.kysely },
      caller,
      'synced',
      '*',
      async () => {
        // A sync changes and reports every n8n credential of the vault and registers new ones without
        // tags, so a token limited to names or tags would reach credentials outside its limits.
        if (caller.namePatterns.length > 0 || caller.tags.length > 0) {
          throw new ForbiddenError(
            'A sync registers, updates and reports every n8n credential of the vault, and this token is limited to names or tags. Use a token without name or tag limits.',
          );
        }
        const client = this.#requireClient();
        let listed: N8nCredentialSummary[];
        try {
          listed = await client.listCredentials();
        } catch (error) {
          if (error instanceof N8nUnsupportedError) await this.#alertUnsupported(error);
          throw error;
        }
        const report = await this.#reconcile(caller, listed);
        await this.#deps.audit.record({
          credentialName: '*',
          action: 'synced',
          actor: caller.actor,
          target: `n8n ${client.url}`,
          ipAddress: caller.ipAddress,
          success: true,
          details: { synced: report.synced, new: report.new.length, updated: report.updated.length, missing: report.missing.length, skipped: report.skipped.length },
        });
        return report;
      },
      providerProblem,
    );
  }

  async #reconcile(caller: Caller, listed: N8nCredentialSummary[]): Promise<SyncReport> {
    const db = this.#deps.db.kysely;
    const rows = await db.selectFrom('aegis_credentials').selectAll().where('provider', '=', 'n8n').execute();
    const known = new Map<string, Credential>();
    for (const credential of rows.map(credentialFromRow)) {
      if (credential.providerCredentialId) known.set(credential.providerCredentialId, credential);
    }
    const report: SyncReport = { synced: listed.length, new: [], updated: [], missing: [], skipped: [] };
    const usedNames = new Set<string>();

    for (const entry of listed) {
      const id = String(entry.id);
      const existing = known.get(id);
      const problem = unstorableReason(entry);
      if (problem !== undefined) {
        report.skipped.push({ n8n_id: id, n8n_name: entry.name, reason: problem });
        continue;
      }
      if (!existing) {
        const name = await this.#freeName(entry, usedNames);
        if (!isValidCredentialName(name)) {
          report.skipped.push({ n8n_id: id, n8n_name: entry.name, reason: `neither its name nor its id can be made a valid AEGIS name (${CREDENTIAL_NAME_PATTERN})` });
          continue;
        }
        usedNames.add(name);
        await this.#deps.registry.create(caller, {
          name,
          credential_type: entry.type,
          provider: 'n8n',
          provider_credential_id: id,
          tags: [],
          metadata: { imported_from: 'n8n_sync', n8n_name: entry.name },
        });
        report.new.push({ name, n8n_id: id, type: entry.type });
        continue;
      }
      const changes = await this.#updateChanged(caller, existing, entry);
      if (changes.length > 0) report.updated.push({ name: existing.name, n8n_id: id, changes });
    }

    const listedIds = new Set(listed.map((entry) => String(entry.id)));
    for (const [id, credential] of known) {
      if (credential.status !== 'retired' && !listedIds.has(id)) report.missing.push({ name: credential.name, n8n_id: id });
    }
    return report;
  }

  /**
   * Records a new n8n name or type on the AEGIS record, with an audit entry in the same transaction. The
   * row is read again under its lock, so a change or retire made since the sync listed it is kept.
   */
  async #updateChanged(caller: Caller, existing: Credential, entry: N8nCredentialSummary): Promise<string[]> {
    if (fieldsChanged(existing, entry).length === 0 || existing.status === 'retired') return [];
    const now = this.#deps.clock.now().toISOString();
    return this.#deps.db.kysely.transaction().execute(async (trx) => {
      const current = await findCredentialForChange(trx, this.#deps.db.dialect, { id: existing.id });
      const changes = current ? fieldsChanged(current, entry) : [];
      if (!current || changes.length === 0 || current.status === 'retired') return [];
      await trx
        .updateTable('aegis_credentials')
        .set({ credential_type: entry.type, metadata: toJson({ ...current.metadata, n8n_name: entry.name }), updated_at: now })
        .where('id', '=', current.id)
        .execute();
      await this.#deps.audit.recordIn(trx, {
        credentialId: current.id,
        credentialName: current.name,
        action: 'updated',
        actor: caller.actor,
        ipAddress: caller.ipAddress,
        success: true,
        details: { source: 'n8n_sync', fields: changes, n8n_name: entry.name, credential_type: entry.type },
      });
      return changes;
    });
  }

  /** Picks an AEGIS name for a new n8n credential, adding the n8n id when the name is taken. */
  async #freeName(entry: N8nCredentialSummary, usedNames: Set<string>): Promise<string> {
    const name = safeName(entry.name, entry.id, usedNames);
    if (!(await findCredentialByName(this.#deps.db.kysely, name))) return name;
    return safeName(entry.name, entry.id, new Set([...usedNames, name]));
  }

  async #alertUnsupported(error: N8nUnsupportedError): Promise<void> {
    const url = this.#client!.url;
    const raised = await enqueueAlert(
      this.#deps.db.kysely,
      {
        type: 'n8n_unsupported',
        conditionKey: `n8n_sync_unsupported:${url}`,
        credentialId: null,
        credentialName: '*',
        message: `⚠️ n8n at ${url} has no credential list endpoint (GET /api/v1/credentials), so AEGIS cannot sync it. Upgrade n8n to sync.`,
        details: { endpoint: error.extra.endpoint, n8n_url: url },
      },
      this.#deps.clock.now(),
    );
    if (raised) this.#deps.log.warn({ n8nUrl: url }, 'n8n has no credential list endpoint; sync is unsupported');
  }

  #requireClient(): N8nClient {
    if (!this.#client) throw new AegisError(503, 'n8n_not_configured', 'n8n is not configured. Set N8N_URL and N8N_API_KEY and restart AEGIS.');
    return this.#client;
  }
}

/** Applies in progress in this process, one queue per n8n URL and workflow id. */
const workflowUpdates = new KeyedQueue();

/**
 * Sets the named node's credential entry for the credential's type to {id, name}, writes the workflow
 * back and checks that n8n's response shows the new entry.
 */
async function setNodeCredential(client: N8nClient, credential: Credential, n8nId: string, request: ApplyRequest): Promise<void> {
  const workflow = await client.getWorkflow(request.workflow_id).catch((error: unknown) => {
    if (error instanceof N8nRequestError && error.status === 404) {
      throw new NotFoundError(`n8n has no workflow with id "${request.workflow_id}".`, 'workflow_not_found');
    }
    throw error;
  });
  const node = workflow.nodes.find((candidate) => candidate.name === request.node_name);
  if (!node) {
    const names = workflow.nodes.map((candidate) => candidate.name);
    throw new AegisError(404, 'node_not_found', `Workflow "${request.workflow_id}" has no node named "${request.node_name}". Its nodes are: ${names.join(', ')}.`, {
      extra: { node_names: names },
    });
  }
  node.credentials = { ...node.credentials, [credential.credentialType]: { id: n8nId, name: n8nName(credential) } };
  const updated = await client.updateWorkflow(workflow);
  const written = Array.isArray(updated?.nodes) ? updated.nodes.find((candidate) => candidate?.name === request.node_name) : undefined;
  if (String(written?.credentials?.[credential.credentialType]?.id) !== n8nId) {
    throw new ProviderError(
      `n8n PUT /workflows/${request.workflow_id} returned the workflow without credential ${n8nId} on node "${request.node_name}", so the change may not have been saved. Check the workflow in n8n and apply again`,
    );
  }
}

function checkApplicable(credential: Credential): string {
  if (credential.provider !== 'n8n') {
    throw new ConflictError('apply_unsupported', `Credential "${credential.name}" belongs to provider ${credential.provider}; only n8n credentials can be applied to workflow nodes.`);
  }
  if (credential.status === 'retired') throw new ConflictError('credential_retired', `Credential "${credential.name}" is retired and cannot be applied.`);
  if (!credential.providerCredentialId) {
    throw new ConflictError('no_provider_credential_id', `Credential "${credential.name}" has no n8n credential id. Set provider_credential_id, or sync with POST /sync/n8n.`);
  }
  return credential.providerCredentialId;
}

/** Turns an n8n call failure into a 502 problem; AEGIS's own errors pass through. */
function providerProblem(error: unknown): unknown {
  if (error instanceof AegisError) return error;
  if (error instanceof N8nResponseError) return new AegisError(502, 'n8n_response_invalid', `${shortenN8nText(error.message)}. Check that N8N_URL points at n8n's public API.`);
  if (error instanceof ProviderError) return new AegisError(502, 'n8n_request_failed', `${shortenN8nText(error.message)}.`);
  return error;
}

/**
 * Returns why AEGIS cannot store an n8n credential as n8n lists it, or undefined when it can: its type
 * or id breaks the rules POST /credentials checks for credential_type and provider_credential_id.
 */
function unstorableReason(entry: N8nCredentialSummary): string | undefined {
  if (!isValidCredentialType(entry.type)) {
    return `its type is not a valid credential_type (${CREDENTIAL_TYPE_RULE})`;
  }
  if (entry.id.length > 256 || !plainTextRegex.test(entry.id)) return 'its id is not a valid provider_credential_id (up to 256 characters, no control characters)';
  return undefined;
}

const plainTextRegex = new RegExp(plainTextPattern);

/** Returns the fields of the AEGIS record that differ from n8n's listing: `n8n_name` and `credential_type`. */
function fieldsChanged(credential: Credential, entry: N8nCredentialSummary): string[] {
  const changes: string[] = [];
  if (credential.metadata.n8n_name !== entry.name) changes.push('n8n_name');
  if (credential.credentialType !== entry.type) changes.push('credential_type');
  return changes;
}
