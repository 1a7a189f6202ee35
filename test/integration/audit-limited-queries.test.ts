import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { auditReach } from '../../src/audit/audit-reach.js';
import type { AuditQuery } from '../../src/audit/audit.repository.js';
import type { StoredAuditEntry } from '../../src/audit/audit.types.js';
import { callerReaches } from '../../src/tokens/caller.js';
import { testDialects } from '../helpers/databases.js';
import { setupCaller } from '../helpers/health-fixtures.js';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/**
 * GET /audit/log narrows a limited token's condition by the request's filters and reads some pages in
 * two steps (src/audit/audit-reach.ts, queryEntries). These tests compare every such query with the
 * entries of the same query without limits, kept by `callerReaches`: the token's own actor's entries
 * and those naming a stored credential it reaches. Queries go through AuditLog.query, so reading
 * writes no `audit_read` entry between the two.
 */
const credentials = [
  { name: 'team-a/api-1', tags: ['team-a'] },
  { name: 'team-a/db', tags: [] },
  { name: 'team-b/api-5', tags: ['team-b'] },
  { name: 'team-b/api-6', tags: ['team-a'] },
  { name: 'shared/queue', tags: ['ops'] },
];

/** Limited callers: by name, by tag, and by both (either reaches). */
const callers = {
  names: { actor: 'reader-names', namePatterns: ['team-a/*'], tags: [] },
  tags: { actor: 'reader-tags', namePatterns: [], tags: ['team-a'] },
  both: { actor: 'reader-both', namePatterns: ['shared/*'], tags: ['team-b'] },
};

const actors = [...Object.values(callers).map((caller) => caller.actor), 'agent-1', 'agent-2'];
const names = [...credentials.map((credential) => credential.name), '*', 'team-a/missing'];
const actions = ['read', 'revealed', 'rotated'];
const start = Date.parse('2026-03-01T00:00:00.000Z');

/** The filters of GET /audit/log, each narrowing the condition a different way. */
const filters: Record<string, Omit<AuditQuery, 'limit' | 'offset' | 'reach'>> = {
  'no filter': {},
  'other actor': { actor: 'agent-1' },
  'another limited actor': { actor: 'reader-tags' },
  'actor and action': { actor: 'agent-2', action: 'revealed' },
  'actor and failures': { actor: 'agent-1', success: false },
  'actor and reached name': { actor: 'agent-2', credentialName: 'team-a/api-1' },
  'reached by names only': { credentialName: 'team-a/db' },
  'reached by tag only': { credentialName: 'team-b/api-6' },
  'name of another team': { credentialName: 'team-b/api-5' },
  'name never stored': { credentialName: 'team-a/missing' },
  'no single credential': { credentialName: '*' },
  action: { action: 'rotated' },
  failures: { success: false },
  'failures since': { success: false, startDate: new Date(start + 40 * 3_600_000).toISOString() },
  successes: { success: true },
  'time range': { startDate: new Date(start + 30 * 3_600_000).toISOString(), endDate: new Date(start + 90 * 3_600_000).toISOString() },
  'action in a time range': { action: 'read', startDate: new Date(start + 30 * 3_600_000).toISOString(), endDate: new Date(start + 90 * 3_600_000).toISOString() },
  'successes until a time': { success: true, endDate: new Date(start + 80 * 3_600_000).toISOString() },
  'action since a time': { action: 'revealed', startDate: new Date(start + 60 * 3_600_000).toISOString() },
};

for (const dialect of await testDialects()) {
  describe(`audit queries of limited tokens on ${dialect}`, () => {
    let t: TestVault;

    before(async () => {
      t = await openTestVault(dialect);
      for (const credential of credentials) {
        await t.vault.registry.create(setupCaller, { name: credential.name, credential_type: 'apiKey', provider: 'api', value: `value-of-${credential.name}`, tags: credential.tags });
      }
      let hour = 0;
      for (const actor of actors) {
        for (const name of names) {
          for (const [index, action] of actions.entries()) {
            t.clock.set(new Date(start + hour * 3_600_000));
            hour += 1;
            await t.vault.audit.record({ credentialName: name, action, actor, success: (hour + index) % 3 !== 0, errorMessage: null });
          }
        }
      }
    });
    after(async () => destroyTestVault(t));

    /** Runs the query without limits and keeps the entries that the caller reaches, newest first. */
    async function reachedEntries(caller: (typeof callers)[keyof typeof callers], filter: Omit<AuditQuery, 'limit' | 'offset' | 'reach'>) {
      const stored = new Map(credentials.map((credential) => [credential.name, credential]));
      const all = await t.vault.audit.query({ ...filter, limit: 10_000, offset: 0 });
      assert.equal(all.total, all.entries.length);
      return all.entries.filter((entry: StoredAuditEntry) => {
        if (entry.actor === caller.actor) return true;
        const credential = stored.get(entry.credentialName);
        return credential !== undefined && callerReaches({ ...setupCaller, ...caller }, credential);
      });
    }

    for (const [limit, caller] of Object.entries(callers)) {
      for (const [filterName, filter] of Object.entries(filters)) {
        it(`${limit}-limited token, ${filterName}`, async () => {
          const expected = (await reachedEntries(caller, filter)).map((entry) => entry.seq);
          const reach = auditReach(dialect, caller);

          const read = await t.vault.audit.query({ ...filter, reach, limit: 1_000, offset: 0 });
          assert.deepEqual(read.entries.map((entry) => entry.seq), expected);
          assert.equal(read.total, expected.length);

          const page = await t.vault.audit.query({ ...filter, reach, limit: 3, offset: 2 });
          assert.deepEqual(page.entries.map((entry) => entry.seq), expected.slice(2, 5));
          assert.equal(page.total, expected.length);
        });
      }
    }

    for (const [filterName, filter] of Object.entries(filters)) {
      it(`${filterName} leaves entries out`, async () => {
        // Guards the cases above: a query that returned entries outside the reach must differ from the expected list.
        const all = await t.vault.audit.query({ ...filter, limit: 10_000, offset: 0 });
        const counts = await Promise.all(Object.values(callers).map(async (caller) => (await reachedEntries(caller, filter)).length));
        assert.ok(counts.some((count) => count < all.entries.length), `every token reaches all ${all.entries.length} entries`);
      });
    }
  });
}
