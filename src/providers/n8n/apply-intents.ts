import type { Logger } from 'pino';
import type { AuditLog } from '../../audit/audit.service.js';
import type { Db } from '../../db/database.js';
import { ownerProcessIsGone } from '../../leases/leases.repository.js';
import type { Clock } from '../../lib/clock.js';
import { N8nRequestError, shortenN8nText, type N8nClient } from './n8n-client.js';
import { auditEntryExists, deleteApplyIntent, insertApplyIntent, listApplyIntents, type ApplyIntent } from './apply-intents.repository.js';

/** The node as recovery read it: using the credential (`applied`), not using it, or not read because n8n failed (`unknown`). */
export type InterruptedApplyOutcome = 'applied' | 'not_applied' | 'unknown';

export interface ApplyRecoveryReport {
  /** Interrupted applies whose audit entry recovery wrote, with what the node showed. */
  recorded: Array<{ credential: string; workflow_id: string; node: string; outcome: InterruptedApplyOutcome }>;
  /** Intents whose apply had its audit entry already, which recovery only deleted. */
  cleared: number;
  /** Intents left for the next recovery, because their apply may still be running or their recovery failed. */
  skipped: number;
}

export interface ApplyIntentsDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  audit: Pick<AuditLog, 'recordIn'>;
  /** This process's name as lease owners are named (`processOwner`). */
  owner: string;
  /** The age at which recovery counts an intent of a process on another host as abandoned (`applyAbandonAfterMs`). */
  abandonAfterMs: number;
}

/** Test hooks: AEGIS_TEST_CRASH_AT stops the process with SIGKILL after the named step of an apply. */
export type ApplyCrashPoint = 'apply_after_intent' | 'apply_after_n8n' | 'apply_after_audit';

/** Kills this process at the named apply step when AEGIS_TEST_CRASH_AT names it. Only crash tests set the variable. */
export function applyCrashPoint(step: ApplyCrashPoint): void {
  if (process.env.AEGIS_TEST_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
}

/**
 * Returns the longest time an apply keeps its intent, or the rotation lease time when that is longer.
 * An apply keeps it through two n8n requests, each cut off after the provider timeout, and then an
 * audit commit, for which one minute is allowed. Recovery waits that long before it writes the entry of
 * an apply by a process on another host, because it cannot check whether that process runs.
 */
export function applyAbandonAfterMs(settings: { rotationLeaseSeconds: number; providerTimeoutMs: number }): number {
  return Math.max(settings.rotationLeaseSeconds * 1000, 2 * settings.providerTimeoutMs + 60_000);
}

/**
 * The intents of n8n applies (`aegis_apply_intents`). An apply writes its intent before it contacts
 * n8n and deletes it once its audit entry is committed, so that a process stopped in between leaves
 * a record. Recovery then writes the missing entry under the id the apply chose, which keeps one entry
 * per apply: the audit log rejects a second entry with that id.
 */
export class ApplyIntents {
  readonly #deps: ApplyIntentsDeps;
  /** Audit entry ids of the intents this process wrote for applies that have not finished. */
  readonly #running = new Set<string>();

  constructor(deps: ApplyIntentsDeps) {
    this.#deps = deps;
  }

  /** Writes the intent of an apply that is about to contact n8n, owned by this process and started now. */
  async begin(intent: Omit<ApplyIntent, 'owner' | 'startedAt'>): Promise<void> {
    // Counted as running before the row exists, so a recovery in this process never takes it for abandoned.
    this.#running.add(intent.auditEntryId);
    await insertApplyIntent(this.#deps.db.kysely, { ...intent, owner: this.#deps.owner, startedAt: this.#deps.clock.now().toISOString() });
  }

  /**
   * Ends an apply that `begin` started. Its intent is deleted only when the apply's audit entry is
   * committed. Otherwise the intent stays, and recovery writes the entry or finds it stored.
   */
  async finish(auditEntryId: string, entryCommitted: boolean): Promise<void> {
    if (!this.#running.has(auditEntryId)) return;
    try {
      if (entryCommitted) await deleteApplyIntent(this.#deps.db.kysely, auditEntryId);
      else this.#deps.log.warn({ auditEntryId }, 'an n8n apply ended without a committed audit entry; recovery writes the entry unless it was stored');
    } catch (error) {
      this.#deps.log.warn({ auditEntryId, error: (error as Error).message }, 'deleting the intent of a finished n8n apply failed; recovery deletes it');
    } finally {
      this.#running.delete(auditEntryId);
    }
  }

  /**
   * Finishes the applies that stopped processes left, and deletes each intent whose audit entry exists.
   * For an abandoned intent without an entry, it reads the workflow from n8n and writes one `applied`
   * entry that marks the apply as interrupted and records whether the node uses the credential now.
   * Intents of applies that may still be running are left alone (see `#isAbandoned`).
   */
  async recover(client: N8nClient | null): Promise<ApplyRecoveryReport> {
    const report: ApplyRecoveryReport = { recorded: [], cleared: 0, skipped: 0 };
    const db = this.#deps.db.kysely;
    for (const intent of await listApplyIntents(db)) {
      try {
        if (await auditEntryExists(db, intent.auditEntryId)) {
          await deleteApplyIntent(db, intent.auditEntryId);
          report.cleared += 1;
          continue;
        }
        if (!this.#isAbandoned(intent)) {
          report.skipped += 1;
          continue;
        }
        const outcome = await this.#readOutcome(client, intent);
        if (await this.#recordInterrupted(intent, outcome)) {
          report.recorded.push({ credential: intent.credentialName, workflow_id: intent.workflowId, node: intent.nodeName, outcome });
        } else {
          report.cleared += 1;
        }
      } catch (error) {
        this.#deps.log.error({ auditEntryId: intent.auditEntryId, error: (error as Error).message }, 'recovering an interrupted n8n apply failed; the next recovery tries again');
        report.skipped += 1;
      }
    }
    if (report.recorded.length > 0) this.#deps.log.info({ ...report }, 'recorded the audit entries of interrupted n8n applies');
    return report;
  }

  /**
   * Tells whether no process can still finish this intent's apply: it was this process's and is not
   * running, or its process on this host has ended, or it is older than `abandonAfterMs`. The last
   * covers processes on other hosts, which recovery cannot check.
   */
  #isAbandoned(intent: ApplyIntent): boolean {
    if (intent.owner === this.#deps.owner) return !this.#running.has(intent.auditEntryId);
    if (ownerProcessIsGone(intent.owner)) return true;
    return this.#deps.clock.now().getTime() - Date.parse(intent.startedAt) > this.#deps.abandonAfterMs;
  }

  /** Reads whether the intent's node uses the credential now. A missing workflow or node does not. */
  async #readOutcome(client: N8nClient | null, intent: ApplyIntent): Promise<InterruptedApplyOutcome> {
    if (client === null) {
      this.#deps.log.warn({ auditEntryId: intent.auditEntryId }, 'n8n is not configured, so the outcome of an interrupted apply is recorded as unknown');
      return 'unknown';
    }
    try {
      const workflow = await client.getWorkflow(intent.workflowId);
      const node = workflow.nodes.find((candidate) => candidate.name === intent.nodeName);
      const id = node?.credentials?.[intent.credentialType]?.id;
      return id !== undefined && id !== null && String(id) === intent.n8nCredentialId ? 'applied' : 'not_applied';
    } catch (error) {
      if (error instanceof N8nRequestError && error.status === 404) return 'not_applied';
      this.#deps.log.warn(
        { auditEntryId: intent.auditEntryId, workflowId: intent.workflowId, error: shortenN8nText((error as Error).message) },
        'reading the workflow of an interrupted n8n apply failed; its outcome is recorded as unknown',
      );
      return 'unknown';
    }
  }

  /**
   * Deletes the intent and writes its entry in one transaction. Returns false, writing nothing, when
   * another recovery deleted the intent first or the apply's own entry was committed meanwhile.
   */
  async #recordInterrupted(intent: ApplyIntent, outcome: InterruptedApplyOutcome): Promise<boolean> {
    const problem =
      outcome === 'applied'
        ? null
        : outcome === 'not_applied'
          ? 'apply_interrupted: the process stopped during the apply, and the node does not use the credential now. Apply it again.'
          : 'apply_interrupted: the process stopped during the apply, and n8n could not be read to check the node. Check the workflow in n8n.';
    return this.#deps.db.kysely.transaction().execute(async (trx) => {
      if (!(await deleteApplyIntent(trx, intent.auditEntryId))) return false;
      if (await auditEntryExists(trx, intent.auditEntryId)) return false;
      await this.#deps.audit.recordIn(trx, {
        entryId: intent.auditEntryId,
        credentialId: intent.credentialId,
        credentialName: intent.credentialName,
        action: 'applied',
        actor: intent.actor,
        target: applyTarget(intent.workflowId),
        ipAddress: intent.ipAddress,
        success: outcome === 'applied',
        errorMessage: problem,
        details: {
          workflow_id: intent.workflowId,
          node_name: intent.nodeName,
          requested_by: intent.requestedBy,
          interrupted: true,
          outcome,
          started_at: intent.startedAt,
        },
      });
      return true;
    });
  }
}

/** Returns the audit target of an apply to a workflow. */
export function applyTarget(workflowId: string): string {
  return `n8n workflow ${workflowId}`;
}
