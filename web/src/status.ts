/** The traffic light of each status, as the product request sets colours and labels. */

export type CredentialStatus = 'active' | 'expiring' | 'expired' | 'rotating' | 'failed' | 'retired';
export type Colour = 'green' | 'yellow' | 'red' | 'blue' | 'gray';

export const STATUSES: CredentialStatus[] = ['active', 'expiring', 'expired', 'failed', 'rotating', 'retired'];
export const PROVIDERS = ['n8n', 'supabase', 'api', 'env', 'postgres'];

export const STATUS_DISPLAY: Record<CredentialStatus, { colour: Colour; label: string }> = {
  active: { colour: 'green', label: 'Healthy' },
  expiring: { colour: 'yellow', label: 'Expiring Soon' },
  expired: { colour: 'red', label: 'Action Required' },
  failed: { colour: 'red', label: 'Action Required' },
  rotating: { colour: 'blue', label: 'Rotation in Progress' },
  retired: { colour: 'gray', label: 'Retired' },
};

/** The summary tiles, in display order, with the statuses each counts. */
export const TILES: Array<{ colour: Colour; label: string; statuses: CredentialStatus[] }> = [
  { colour: 'green', label: 'Healthy', statuses: ['active'] },
  { colour: 'yellow', label: 'Expiring Soon', statuses: ['expiring'] },
  { colour: 'red', label: 'Action Required', statuses: ['expired', 'failed'] },
  { colour: 'blue', label: 'Rotation in Progress', statuses: ['rotating'] },
  { colour: 'gray', label: 'Retired', statuses: ['retired'] },
];

export function displayOf(status: string): { colour: Colour; label: string } {
  return STATUS_DISPLAY[status as CredentialStatus] ?? { colour: 'gray', label: status };
}
