/** Key types of a Supabase project: new-style `secret` and `publishable` keys, and the legacy JWT keys `anon` and `service_role`. */
export const supabaseKeyTypes = ['secret', 'publishable', 'anon', 'service_role'] as const;

export type SupabaseKeyType = (typeof supabaseKeyTypes)[number];

/** provider_config of a `supabase` credential. */
export interface SupabaseConfig {
  project_ref: string;
  key_type: SupabaseKeyType;
  /** The project URL, e.g. https://abcdefghijklmnopqrst.supabase.co; the health check calls `/rest/v1/` below it. */
  project_url: string;
  /** Set by AEGIS on secret keys only; see checkSupabaseConfig. */
  rotate?: 'management_api';
  revoke?: 'management_api';
}

export function isLegacyKeyType(keyType: string): boolean {
  return keyType === 'anon' || keyType === 'service_role';
}

/** The message of the 409 that rejects rotating a legacy JWT key. */
export function legacyKeyReason(name: string, keyType: string): string {
  return (
    `"${name}" is a legacy ${keyType} JWT key, which is not rotatable through AEGIS: legacy JWT keys are rotated by changing ` +
    `the project's JWT secret, which AEGIS does not do. Change it in Supabase and send the new key as the value, or move to a secret key.`
  );
}
