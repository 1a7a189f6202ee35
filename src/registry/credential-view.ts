import type { Credential, VersionSummary } from './credential.types.js';

/** Converts a credential to its API form: the request's snake_case fields, with `has_value` in place of the ciphertext. */
export function credentialView(credential: Credential) {
  return {
    id: credential.id,
    name: credential.name,
    credential_type: credential.credentialType,
    provider: credential.provider,
    description: credential.description,
    provider_credential_id: credential.providerCredentialId,
    provider_config: credential.providerConfig,
    status: credential.status,
    created_at: credential.createdAt,
    updated_at: credential.updatedAt,
    expires_at: credential.expiresAt,
    last_rotated_at: credential.lastRotatedAt,
    last_used_at: credential.lastUsedAt,
    last_health_check: credential.lastHealthCheck,
    rotation_enabled: credential.rotationEnabled,
    rotation_interval_hours: credential.rotationIntervalHours,
    rotation_strategy: credential.rotationStrategy,
    next_rotation_at: credential.nextRotationAt,
    rotation_cron: credential.rotationCron,
    rotation_timezone: credential.rotationTimezone,
    value_policy: credential.valuePolicy,
    alert_threshold_hours: credential.alertThresholdHours,
    alert_sent: credential.alertSent,
    has_value: credential.encryptedValue !== null,
    tags: credential.tags,
    metadata: credential.metadata,
  };
}

export function versionView(version: VersionSummary) {
  return {
    version: version.version,
    created_at: version.createdAt,
    created_by: version.createdBy,
    reason: version.reason,
    is_current: version.isCurrent,
    state: version.state,
    has_value: version.hasValue,
    encryption_key_id: version.encryptionKeyId,
    provider_credential_id: version.providerCredentialId,
  };
}
