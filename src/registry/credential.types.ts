/** The system a credential lives in, which decides how AEGIS reaches it. `postgres` is a database role's password. */
export const PROVIDERS = ['n8n', 'supabase', 'api', 'env', 'postgres'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** Lifecycle states, as stored and as reported. */
export const STATUSES = ['active', 'expiring', 'expired', 'rotating', 'failed', 'retired'] as const;
export type CredentialStatus = (typeof STATUSES)[number];

export const ROTATION_STRATEGIES = ['manual', 'scheduled', 'on_expiry'] as const;
export type RotationStrategy = (typeof ROTATION_STRATEGIES)[number];

/** The reason a version was written. */
export type VersionReason = 'initial' | 'rotation' | 'manual_update' | 'emergency' | 'rollback' | 'import';

/** A credential as stored, without its value. `encryptedValue` mirrors the current version's envelope. */
export interface Credential {
  id: string;
  name: string;
  credentialType: string;
  provider: Provider;
  description: string | null;
  encryptedValue: string | null;
  encryptionKeyId: string | null;
  providerCredentialId: string | null;
  providerConfig: Record<string, unknown>;
  status: CredentialStatus;
  createdAt: string;
  updatedAt: string;
  expiresAt: string | null;
  lastRotatedAt: string | null;
  lastUsedAt: string | null;
  lastHealthCheck: string | null;
  rotationEnabled: boolean;
  rotationIntervalHours: number;
  rotationStrategy: RotationStrategy;
  nextRotationAt: string | null;
  alertThresholdHours: number;
  alertSent: boolean;
  tags: string[];
  metadata: Record<string, unknown>;
  /** A cron expression for `scheduled` rotation; when set it replaces `rotationIntervalHours`. */
  rotationCron: string | null;
  /** The IANA time zone the cron expression is read in; UTC when null. */
  rotationTimezone: string | null;
  /** The rules AEGIS follows to make new values for this credential; defaults apply when null. */
  valuePolicy: ValuePolicy | null;
}

/** Rules for values AEGIS generates: length (prefix not counted), alphabet, prefix. */
export interface ValuePolicy {
  length?: number;
  alphabet?: 'alphanumeric' | 'hex' | 'base64url' | 'ascii_printable' | string;
  prefix?: string;
  /** After a rotation, the new value expires this many hours later. */
  validity_hours?: number;
}

export type VersionState = 'pending' | 'committed' | 'failed';

export interface CredentialVersion {
  id: string;
  credentialId: string;
  version: number;
  encryptedValue: string | null;
  encryptionKeyId: string | null;
  providerCredentialId: string | null;
  createdAt: string;
  createdBy: string | null;
  reason: string | null;
  isCurrent: boolean;
  state: VersionState;
}

/** A version as listings show it: everything but the ciphertext, and whether one is stored. */
export type VersionSummary = Omit<CredentialVersion, 'encryptedValue'> & { hasValue: boolean };

export interface HealthCheckSummary {
  status: 'healthy' | 'unhealthy' | 'unknown';
  checkedAt: string | null;
  responseTimeMs: number | null;
  errorMessage: string | null;
}

/** Largest stored value: 64 KiB of UTF-8. */
export const MAX_VALUE_BYTES = 64 * 1024;
