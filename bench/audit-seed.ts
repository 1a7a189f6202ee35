import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import { auditRow } from '../src/audit/audit-row.js';
import { entryHash } from '../src/audit/chain.js';
import { GENESIS_HASH, type AuditEntry } from '../src/audit/audit.types.js';
import type { Database } from '../src/db/schema.js';
import type { Caller } from '../src/tokens/caller.js';
import type { Vault } from '../src/vault.js';

/** The audit log of B5 (bench/audit.bench.ts), shared with bench/audit-shapes.measure.ts. */

export const days = 30;
export const periodEnd = new Date('2026-07-01T00:00:00.000Z');
export const periodStart = new Date(periodEnd.getTime() - days * 86_400_000);
export const actors = Array.from({ length: 20 }, (_, index) => `agent-${index}`);
export const credentials = Array.from({ length: 500 }, (_, index) => `service-${index % 50}/key-${index}`);
const actions = ['read', 'read', 'read', 'read', 'listed', 'versions_read', 'rotated', 'updated', 'revealed', 'authenticate'];

/** Writes `count` entries spread evenly over the 30 days, with a valid chain, in batched inserts. */
export async function seedAuditEntries(db: Kysely<Database>, count: number): Promise<void> {
  const head = await db.selectFrom('aegis_audit_head').select(['seq', 'entry_hash']).executeTakeFirstOrThrow();
  let seq = Number(head.seq);
  let prevHash = head.entry_hash ?? GENESIS_HASH;
  const stepMs = (days * 86_400_000) / count;
  const batch = 50_000;
  for (let done = 0; done < count; done += batch) {
    const rows: AuditEntry[] = [];
    for (let i = done; i < Math.min(count, done + batch); i += 1) {
      seq += 1;
      const action = actions[i % actions.length]!;
      const unhashed = {
        id: crypto.randomUUID(),
        seq,
        timestamp: new Date(periodStart.getTime() + Math.floor(i * stepMs)).toISOString(),
        credentialId: null,
        credentialName: action === 'listed' || action === 'authenticate' ? '*' : credentials[(i * 7) % credentials.length]!,
        action,
        actor: actors[(i * 13) % actors.length]!,
        target: null,
        details: action === 'rotated' ? { trigger: i % 5_000 === 0 ? 'emergency' : 'scheduled' } : {},
        ipAddress: `10.0.${(i * 3) % 16}.${i % 200}`,
        success: i % 50 !== 0,
        errorMessage: i % 50 === 0 ? 'forbidden: missing scope' : null,
        prevHash,
      };
      const entry = { ...unhashed, entryHash: entryHash(unhashed) };
      prevHash = entry.entryHash;
      rows.push(entry);
    }
    await db.transaction().execute(async (trx) => {
      for (let start = 0; start < rows.length; start += 1_000) {
        await trx.insertInto('aegis_audit_log').values(rows.slice(start, start + 1_000).map(auditRow)).execute();
      }
      await trx.updateTable('aegis_audit_head').set({ seq, entry_hash: prevHash }).where('id', '=', 1).execute();
    });
  }
}

/**
 * Stores the 500 credentials the entries name, with 1,500 more, and creates B5.4's limited token. Its
 * pattern reaches 440 of them (service-1 and service-10 to service-19) and its tag 40 more, so it reaches
 * about 22 % of the entries about a credential, and none of the failures, which all name service-0
 * credentials. Returns the token.
 */
export async function createLimitedAuditor(vault: Vault, setup: Caller): Promise<string> {
  for (let index = 0; index < 2_000; index += 1) {
    const name = index < credentials.length ? credentials[index]! : `service-${index % 50}/spare-${index}`;
    const tags = index % 40 === 3 ? ['audited'] : ['other'];
    await vault.registry.create(setup, { name, credential_type: 'apiKey', provider: 'api', value: crypto.randomBytes(24).toString('base64url'), tags });
  }
  const limited = await vault.tokens.create(setup, { actor: 'team-1-auditor', scopes: ['audit:read'], namePatterns: ['service-1*'], tags: ['audited'] });
  return limited.token;
}
