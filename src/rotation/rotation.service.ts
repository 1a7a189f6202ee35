import { findCredentialByName } from '../registry/credentials.repository.js';
import { callerReaches, type Caller } from '../tokens/caller.js';
import { listRotations, type RotationRecord } from './history.repository.js';
import { recoverRotations, type RecoveryReport } from './recovery.js';
import { applyRetention, type RetentionResult } from './retention.js';
import { rollback, type RollbackOutcome } from './rollback.js';
import type { RotationDeps } from './rotation-deps.js';
import { RotationEngine } from './rotation.engine.js';
import { rotationSchedule, runScheduledRotations, type ScheduleEntry, type ScheduledRun } from './scheduled.js';

export interface RotationSettings {
  concurrency: number;
  versionRetentionDays: number;
  historyRetentionDays: number;
}

/** The recovery of interrupted n8n applies, which each scheduled run starts with. */
export interface ApplyRecovery {
  recoverApplies(): Promise<unknown>;
}

/** The rotation feature as the HTTP API, the CLI and the scheduler use it. */
export class Rotation {
  readonly engine: RotationEngine;
  readonly #deps: RotationDeps;
  readonly #settings: RotationSettings;
  readonly #applyRecovery: ApplyRecovery;

  constructor(deps: RotationDeps, settings: RotationSettings, applyRecovery: ApplyRecovery) {
    this.#deps = deps;
    this.#settings = settings;
    this.#applyRecovery = applyRecovery;
    this.engine = new RotationEngine(deps);
  }

  rollback(caller: Caller, name: string, version?: number): Promise<RollbackOutcome> {
    return rollback(this.#deps, caller, name, version);
  }

  /**
   * Runs one scheduler pass, the same whether the scheduler's leader, POST /rotation/run-scheduled or
   * `aegis rotation run` starts it. It first writes the audit entries of n8n applies that stopped
   * processes left, then finishes rotations and rollbacks they interrupted, so none stays `rotating`.
   * Then it runs every due rotation.
   */
  async runScheduled(caller: Caller): Promise<ScheduledRun> {
    await this.#applyRecovery.recoverApplies();
    const recovery = await recoverRotations(this.#deps);
    const recovered: ScheduledRun['recovered'] = [];
    for (const [outcome, names] of [['completed', recovery.completed], ['restored', recovery.restored], ['failed', recovery.failed]] as const) {
      for (const name of names) {
        // Recovery covers every credential, and the response names only those the token reaches.
        const credential = await findCredentialByName(this.#deps.db.kysely, name);
        if (credential !== undefined && callerReaches(caller, credential)) recovered.push({ credential: name, outcome });
      }
    }
    const run = { ...(await runScheduledRotations(this.#deps, this.engine, caller, this.#settings.concurrency)), recovered };
    await this.#deps.audit.record({
      credentialName: '*',
      action: 'scheduled_run',
      actor: caller.actor,
      ipAddress: caller.ipAddress,
      success: true,
      details: { rotated: run.rotated, failed: run.failed, skipped: run.skipped },
    });
    return run;
  }

  async schedule(caller: Caller, limit: number): Promise<{ upcoming: ScheduleEntry[]; overdue: ScheduleEntry[] }> {
    const schedule = await rotationSchedule(this.#deps, caller, limit);
    await this.#deps.audit.record({ credentialName: '*', action: 'schedule_read', actor: caller.actor, ipAddress: caller.ipAddress, success: true, details: {} });
    return schedule;
  }

  async history(caller: Caller, filter: { credentialName?: string | undefined; limit: number; offset: number }): Promise<{ history: RotationRecord[]; total: number }> {
    const result = await listRotations(this.#deps.db.kysely, this.#deps.db.dialect, { ...filter, reach: caller });
    await this.#deps.audit.record({
      credentialName: filter.credentialName ?? '*',
      action: 'history_read',
      actor: caller.actor,
      ipAddress: caller.ipAddress,
      success: true,
      details: { returned: result.history.length },
    });
    return result;
  }

  recover(): Promise<RecoveryReport> {
    return recoverRotations(this.#deps);
  }

  retention(): Promise<RetentionResult> {
    return applyRetention(this.#deps, this.#settings.versionRetentionDays, this.#settings.historyRetentionDays);
  }
}

export { processOwner } from '../leases/leases.repository.js';
