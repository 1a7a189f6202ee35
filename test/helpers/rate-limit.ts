import type { TestVault } from './test-vault.js';

/** Returns the audit entries about 429 responses to `address`, oldest first, with their details parsed. */
export async function rateLimitRows(t: TestVault, address: string) {
  const rows = await t.vault.db.kysely
    .selectFrom('aegis_audit_log')
    .selectAll()
    .where('ip_address', '=', address)
    .where('error_message', 'like', 'rate_limited%')
    .orderBy('seq')
    .execute();
  return rows.map((row) => ({ ...row, details: typeof row.details === 'string' ? JSON.parse(row.details) : row.details }));
}
