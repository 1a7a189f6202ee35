import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit.service.js';
import { currentMasterKeyId } from '../crypto/master-keys.repository.js';
import { EnvelopeError, type Keyring } from '../crypto/keyring.js';
import type { Db, Executor } from '../db/database.js';
import type { RotationMetrics } from '../metrics/vault-metrics.js';
import type { Clock } from '../lib/clock.js';
import { AegisError } from '../lib/errors.js';
import type { Lease } from '../leases/leases.repository.js';
import { releaseLease } from '../leases/leases.repository.js';
import type { AdapterRegistry } from '../providers/adapter.js';
import type { Credential, CredentialVersion } from '../registry/credential.types.js';

/** Dependencies of the rotation engine, rollback and recovery. */
export interface RotationDeps {
  db: Db;
  clock: Clock;
  keyring: Keyring;
  audit: AuditLog;
  log: Logger;
  adapters: AdapterRegistry;
  /** This process's name in leases, unique per process. */
  owner: string;
  leaseTtlMs: number;
  /**
   * Rotation leases this process could not release, by lease name: the database was unreachable when
   * the rotation ended. Recovery releases them once it can, instead of waiting for them to expire.
   */
  unreleasedLeases: Map<string, Lease>;
  attempts: number;
  /** Counts each rotation that reached an outcome; absent where nothing is scraped. */
  metrics?: RotationMetrics;
}

/**
 * Releases a rotation lease at the end of a rotation, rollback or recovery. When that fails (the
 * database went away), the lease is remembered so that recovery in this process can release it as
 * soon as the database is back, rather than after the lease's lifetime.
 */
export async function releaseRotationLease(deps: RotationDeps, lease: Lease): Promise<void> {
  try {
    await releaseLease(deps.db.kysely, lease);
    deps.unreleasedLeases.delete(lease.name);
  } catch (error) {
    deps.unreleasedLeases.set(lease.name, lease);
    deps.log.warn({ lease: lease.name, err: { message: (error as Error).message } }, 'failed to release a rotation lease; recovery releases it once the database is back');
  }
}

/** Decrypts a version's value, or returns null when the version stores none. */
export async function openVersion(deps: RotationDeps, db: Executor, credential: Credential, version: CredentialVersion): Promise<string | null> {
  if (version.encryptedValue === null) return null;
  try {
    return await deps.keyring.open(version.encryptedValue, { credentialId: credential.id, version: version.version }, db);
  } catch (error) {
    if (!(error instanceof EnvelopeError)) throw error;
    throw new AegisError(
      500,
      'decryption_failed',
      `The stored value of credential "${credential.name}" version ${version.version} failed to decrypt: the row was changed or copied. Restore it from a backup.`,
    );
  }
}

/** Seals a value for a version under the current master key. */
export async function sealVersion(deps: RotationDeps, db: Executor, credentialId: string, version: number, value: string): Promise<{ envelope: string; keyId: string }> {
  const keyId = await currentMasterKeyId(db);
  return { envelope: await deps.keyring.seal(value, { credentialId, version }, keyId, db), keyId };
}

/** The protocol steps after which a test can stop the process, to prove that recovery works. */
export type CrashPoint = 'after_pending' | 'after_provider_set' | 'after_test';

/**
 * Kills this process with SIGKILL at the named step when AEGIS_TEST_CRASH_AT names it. Only the crash
 * tests set the variable; it exists so they can stop a real server between two protocol steps.
 */
export function crashPoint(step: CrashPoint): void {
  if (process.env.AEGIS_TEST_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
}
