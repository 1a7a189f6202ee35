import type { Credential } from '../registry/credential.types.js';
import type { RotationTrigger } from './history.repository.js';
import { nextIntervalAfterDue, nextRotationAt } from './schedule.js';

/** Builds the credential after a committed rotation: active, new timestamps and schedule, expiry moved on where it applies. */
export function rotatedCredential(loaded: Credential, now: Date, envelope: string | null, keyId: string | null, trigger: RotationTrigger): Credential {
  const nowIso = now.toISOString();
  let expiresAt = loaded.expiresAt;
  if (loaded.valuePolicy?.validity_hours !== undefined) {
    expiresAt = new Date(now.getTime() + loaded.valuePolicy.validity_hours * 3_600_000).toISOString();
  } else if (loaded.rotationStrategy === 'on_expiry' && loaded.expiresAt !== null) {
    // Without a stated validity, the new value gets as long as the old one had.
    const lifetime = new Date(loaded.expiresAt).getTime() - new Date(loaded.lastRotatedAt ?? loaded.createdAt).getTime();
    expiresAt = new Date(now.getTime() + Math.max(lifetime, 3_600_000)).toISOString();
  }
  const credential: Credential = {
    ...loaded,
    status: 'active',
    encryptedValue: envelope,
    encryptionKeyId: keyId,
    lastRotatedAt: nowIso,
    updatedAt: nowIso,
    expiresAt,
    alertSent: expiresAt === loaded.expiresAt ? loaded.alertSent : false,
  };
  const due = loaded.nextRotationAt === null ? null : new Date(loaded.nextRotationAt);
  if (trigger === 'scheduled' && loaded.rotationCron === null && due !== null && due <= now) {
    return { ...credential, nextRotationAt: nextIntervalAfterDue(due, loaded.rotationIntervalHours, now) };
  }
  return { ...credential, nextRotationAt: nextRotationAt(credential) };
}
