import { AegisError } from '../lib/errors.js';
import { credentialFromRow, reachCondition } from '../registry/credentials.repository.js';
import type { Credential } from '../registry/credential.types.js';
import type { Caller } from '../tokens/caller.js';
import type { RotationDeps } from './rotation-deps.js';
import type { RotationEngine } from './rotation.engine.js';

export interface ScheduledRunDetail {
  credential: string;
  status: 'rotated' | 'failed' | 'skipped';
  trigger: 'scheduled' | 'expiry';
  previous_version?: number;
  new_version?: number;
  error?: string;
}

export interface ScheduledRun {
  rotated: number;
  failed: number;
  skipped: number;
  details: ScheduledRunDetail[];
  /**
   * Rotations that a stopped process left `rotating`, closed before the run: the new value kept
   * (`completed`), the old one put back (`restored`), or `failed` when putting it back failed.
   */
  recovered: { credential: string; outcome: 'completed' | 'restored' | 'failed' }[];
}

/**
 * Credentials whose automatic rotation is due at `now` (next_rotation_at reached), by due time; with
 * `caller`, only those its token's limits reach.
 */
export async function dueCredentials(deps: Pick<RotationDeps, 'db'>, now: Date, limit = 10_000, caller?: Caller): Promise<Credential[]> {
  const reach = caller === undefined ? undefined : reachCondition(deps.db.dialect, caller);
  const rows = await deps.db.kysely
    .selectFrom('aegis_credentials')
    .$if(reach !== undefined, (query) => query.where(reach!))
    .selectAll()
    .where('rotation_enabled', '=', true)
    .where('status', '!=', 'retired')
    .where('rotation_strategy', 'in', ['scheduled', 'on_expiry'])
    .where('next_rotation_at', 'is not', null)
    .where('next_rotation_at', '<=', now.toISOString())
    .orderBy('next_rotation_at')
    .limit(limit)
    .execute();
  return rows.map(credentialFromRow);
}

/**
 * Rotates every credential that is due, `concurrency` at a time. A credential another process is
 * already rotating is skipped (it will have a new due time once that rotation commits), and so is one
 * that another run rotated after this run listed it (the engine checks under the lease that it is still due).
 */
export async function runScheduledRotations(deps: RotationDeps, engine: RotationEngine, caller: Caller, concurrency: number): Promise<Omit<ScheduledRun, 'recovered'>> {
  // A token limited by name or tag runs only the rotations of the credentials it reaches.
  const due = await dueCredentials(deps, deps.clock.now(), undefined, caller);
  const details: ScheduledRunDetail[] = [];
  let next = 0;
  const worker = async () => {
    // A stopping server accepts no new rotations: the run ends after the ones already started.
    while (next < due.length && engine.inFlight.accepting) {
      const credential = due[next++]!;
      const trigger = credential.rotationStrategy === 'on_expiry' ? 'expiry' : 'scheduled';
      try {
        const outcome = await engine.rotate(caller, credential.name, { trigger });
        details.push({ credential: credential.name, status: 'rotated', trigger, previous_version: outcome.previousVersion, new_version: outcome.newVersion });
      } catch (error) {
        const skipped = error instanceof AegisError && skippedCodes.has(error.code);
        details.push({ credential: credential.name, status: skipped ? 'skipped' : 'failed', trigger, error: error instanceof AegisError ? error.message : 'internal error' });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, due.length) }, worker));
  details.sort((a, b) => a.credential.localeCompare(b.credential));
  return {
    rotated: details.filter((detail) => detail.status === 'rotated').length,
    failed: details.filter((detail) => detail.status === 'failed').length,
    skipped: details.filter((detail) => detail.status === 'skipped').length,
    details,
  };
}

/** Rotation errors after which a scheduled run reports the credential as skipped, not failed. */
const skippedCodes: ReadonlySet<string> = new Set(['rotation_in_progress', 'rotation_not_due', 'rotation_unsupported']);

export interface ScheduleEntry {
  name: string;
  provider: string;
  rotation_strategy: string;
  next_rotation_at: string;
  overdue_hours: number;
}

/** Upcoming (due later) and overdue (due now or earlier) automatic rotations. */
export async function rotationSchedule(
  deps: Pick<RotationDeps, 'db' | 'clock'>,
  caller: Caller,
  limit: number,
): Promise<{ upcoming: ScheduleEntry[]; overdue: ScheduleEntry[] }> {
  const now = deps.clock.now();
  let base = deps.db.kysely
    .selectFrom('aegis_credentials')
    .selectAll()
    .where('rotation_enabled', '=', true)
    .where('status', '!=', 'retired')
    .where('next_rotation_at', 'is not', null);
  const reach = reachCondition(deps.db.dialect, caller);
  if (reach !== undefined) base = base.where(reach);
  const overdue = await base.where('next_rotation_at', '<=', now.toISOString()).orderBy('next_rotation_at').limit(limit).execute();
  const upcoming = await base.where('next_rotation_at', '>', now.toISOString()).orderBy('next_rotation_at').limit(limit).execute();
  const entry = (row: (typeof overdue)[number]): ScheduleEntry => {
    const credential = credentialFromRow(row);
    const due = new Date(credential.nextRotationAt!).getTime();
    return {
      name: credential.name,
      provider: credential.provider,
      rotation_strategy: credential.rotationStrategy,
      next_rotation_at: credential.nextRotationAt!,
      overdue_hours: Math.max(0, Math.floor((now.getTime() - due) / 3_600_000)),
    };
  };
  return { upcoming: upcoming.map(entry), overdue: overdue.map(entry) };
}
