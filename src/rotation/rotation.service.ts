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

/** The rotation feature as the HTTP API and the CLI use it. */
export class Rotation {
  readonly engine: RotationEngine;
  readonly #deps: RotationDeps;
  readonly #settings: RotationSettings;

  constructor(deps: RotationDeps, settings: RotationSettings) {
    this.#deps = deps;
    this.#settings = settings;
    this.engine = new RotationEngine(deps);
  }

  rollback(caller: Caller, name: string, version?: number): Promise<RollbackOutcome> {
    return rollback(this.#deps, caller, name, version);
  }

  /** Runs every due rotation; first finishes rotations interrupted by a crash, so none stays `rotating`. */
  async runScheduled(caller: Caller): Promise<ScheduledRun> {
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
