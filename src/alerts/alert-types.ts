/** The alert types of the product request, with their priorities and channel. */
export const ALERT_TYPES = {
  credential_expiring: { priority: 'high', channel: 'telegram' },
  credential_expired: { priority: 'critical', channel: 'telegram' },
  rotation_failed: { priority: 'critical', channel: 'telegram' },
  health_check_failed: { priority: 'high', channel: 'telegram' },
  rotation_success: { priority: 'low', channel: 'telegram' },
  // Not in the product request: the scheduler's daily summary, delivered like any other alert.
  daily_report: { priority: 'low', channel: 'telegram' },
  // Not in the product request: an audit anomaly rule fired (see src/audit/anomalies.ts).
  audit_anomaly: { priority: 'high', channel: 'telegram' },
  // Not in the product request: n8n lacks an endpoint a feature needs (a sync against an older n8n).
  n8n_unsupported: { priority: 'high', channel: 'telegram' },
} as const;

export type AlertType = keyof typeof ALERT_TYPES;

/** Messages in the product request's wording. Callers pass texts already stripped of values. */
export const alertMessages = {
  credentialExpiring: (name: string, hours: number) => `🔐 Credential '${name}' expires in ${hoursText(hours)}`,
  credentialExpired: (name: string) => `🚨 Credential '${name}' has EXPIRED`,
  rotationFailed: (name: string, error: string) => `❌ Rotation failed for '${name}': ${error}`,
  healthCheckFailed: (name: string, details: string) => `⚠️ Health check failed for '${name}': ${details}`,
  rotationSuccess: (name: string, emergency = false) => `✅ Credential '${name}' rotated successfully${emergency ? ' (emergency rotation)' : ''}`,
};

/** Returns whole hours as the request's messages write them ("168 hours"), with "1 hour" and "less than an hour". */
function hoursText(hours: number): string {
  if (hours < 1) return 'less than an hour';
  return hours === 1 ? '1 hour' : `${hours} hours`;
}
