import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CompiledQuery, type KyselyPlugin, type RootOperationNode } from 'kysely';
import { openDatabase } from '../../src/db/database.js';
import { auditReach } from '../../src/audit/audit-reach.js';
import { pageLookup } from '../../src/audit/entry-lookup.js';
import { queryEntries, type AuditQuery } from '../../src/audit/audit.repository.js';
import type { StoredAuditEntry } from '../../src/audit/audit.types.js';
import { testDialects } from '../helpers/databases.js';
import { setupCaller } from '../helpers/health-fixtures.js';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/**
 * On SQLite, GET /audit/log by action alone, and a limited token's request without an actor or a
 * credential, choose how to read the page and count the matches, and `success=true` alone counts the
 * failures instead (src/audit/entry-lookup.ts). On PostgreSQL, a request with an end date does so too,
 * and a limited token's matches are counted in two parts. Every query here is compared with the whole
 * log filtered in this file, so each way of reading must return the same page and total.
 */
const start = Date.parse('2026-04-01T00:00:00.000Z');
const hours = 300;

/** Returns the action of an hour's entry: a read, except a rotation every 100 hours. */
function actionAt(hour: number): string {
  return hour % 100 === 50 ? 'rotated' : 'read';
}

const hourIso = (hour: number) => new Date(start + hour * 3_600_000).toISOString();

/** A token limited to six of the nine credentials, whose actor also records entries. */
const limited = { actor: 'agent-0', namePatterns: ['service/key-1', 'service/key-2', 'service/key-3', 'service/key-4', 'service/key-5', 'service/key-6'], tags: [] };

const queries: Record<string, Omit<AuditQuery, 'limit' | 'offset'>> = {
  'a common action': { action: 'read' },
  'a rare action': { action: 'rotated' },
  'an action never recorded': { action: 'revealed' },
  'a common action in a time range': { action: 'read', startDate: hourIso(100), endDate: hourIso(160) },
  'a rare action since a time': { action: 'rotated', startDate: hourIso(120) },
  'a common action that succeeded': { action: 'read', success: true },
  'successes': { success: true },
  'entries until a recent time': { endDate: hourIso(290) },
  'a common action until a time': { action: 'read', endDate: hourIso(200) },
};

const limitedQueries: Record<string, Omit<AuditQuery, 'limit' | 'offset'>> = {
  'no filter': {},
  'a common action': { action: 'read' },
  'a rare action': { action: 'rotated' },
  'successes': { success: true },
  'entries since a time': { startDate: hourIso(120) },
  'a time range': { startDate: hourIso(100), endDate: hourIso(160) },
  'entries until a recent time': { endDate: hourIso(290) },
  'a common action in a time range': { action: 'read', startDate: hourIso(100), endDate: hourIso(160) },
  'successes until a time': { success: true, endDate: hourIso(200) },
};

for (const dialect of await testDialects()) {
  describe(`audit entry lookups on ${dialect}`, () => {
    let t: TestVault;
    let all: StoredAuditEntry[];

    before(async () => {
      t = await openTestVault(dialect);
      for (let key = 0; key < 9; key += 1) {
        await t.vault.registry.create(setupCaller, { name: `service/key-${key}`, credential_type: 'apiKey', provider: 'api', value: `value-of-key-${key}` });
      }
      for (let hour = 0; hour < hours; hour += 1) {
        t.clock.set(new Date(start + hour * 3_600_000));
        await t.vault.audit.record({ credentialName: `service/key-${hour % 9}`, action: actionAt(hour), actor: `agent-${hour % 4}`, success: hour % 7 !== 3, errorMessage: null });
      }
      all = (await t.vault.audit.query({ limit: 10_000, offset: 0 })).entries;
      assert.ok(all.length >= hours, `${all.length} entries`);
    });
    after(async () => destroyTestVault(t));

    function expected(filter: Omit<AuditQuery, 'limit' | 'offset'>, reached = (_entry: StoredAuditEntry) => true): number[] {
      return all
        .filter(reached)
        .filter((entry) => filter.action === undefined || entry.action === filter.action)
        .filter((entry) => filter.success === undefined || entry.success === filter.success)
        .filter((entry) => filter.startDate === undefined || entry.timestamp >= filter.startDate)
        .filter((entry) => filter.endDate === undefined || entry.timestamp <= filter.endDate)
        .map((entry) => entry.seq);
    }

    for (const [name, filter] of Object.entries(queries)) {
      it(`lists ${name} with its total`, async () => {
        const seqs = expected(filter);
        for (const page of [{ limit: 10, offset: 0 }, { limit: 7, offset: 12 }, { limit: 500, offset: 0 }]) {
          const read = await t.vault.audit.query({ ...filter, ...page });
          assert.deepEqual(read.entries.map((entry) => entry.seq), seqs.slice(page.offset, page.offset + page.limit), `${JSON.stringify(page)}`);
          assert.equal(read.total, seqs.length);
        }
      });
    }

    for (const [name, filter] of Object.entries(limitedQueries)) {
      it(`lists ${name} for a limited token`, async () => {
        const reaches = (entry: StoredAuditEntry) => entry.actor === limited.actor || limited.namePatterns.includes(entry.credentialName);
        const seqs = expected(filter, reaches);
        const reach = auditReach(dialect, limited);
        for (const page of [{ limit: 10, offset: 0 }, { limit: 7, offset: 12 }, { limit: 500, offset: 0 }]) {
          const read = await t.vault.audit.query({ ...filter, reach, ...page });
          assert.deepEqual(read.entries.map((entry) => entry.seq), seqs.slice(page.offset, page.offset + page.limit), `${JSON.stringify(page)}`);
          assert.equal(read.total, seqs.length);
        }
      });
    }

    it('takes both page lookups', () => {
      // Guards the cases above: both ways of reading a page are taken with this log.
      const query = { limit: 10, offset: 0 };
      assert.equal(pageLookup(query, expected({ action: 'read' }).length, all.length), 'newest-first');
      assert.equal(pageLookup(query, expected({ action: 'rotated' }).length, all.length), 'indexed');
    });

    it('counts successes in one snapshot', async () => {
      const successes = expected({ success: true }).length;
      // The request runs on a connection of its own, so the vault's connection can append a failed
      // entry after the request's first count has returned and before it counts the failures.
      let appended = false;
      const appendAfterFirstCount: KyselyPlugin = {
        transformQuery: (args) => args.node,
        transformResult: async ({ result }) => {
          // The page's rows carry `seq`, and counts do not.
          if (!appended && result.rows.length > 0 && !('seq' in result.rows[0]!)) {
            appended = true;
            await t.vault.audit.record({ credentialName: 'service/key-0', action: 'read', actor: 'agent-0', success: false, errorMessage: 'denied while counting' });
          }
          return result;
        },
      };
      const db = await openDatabase(t.config);
      try {
        const read = await queryEntries(db.kysely.withPlugin(appendAfterFirstCount), dialect, { success: true, limit: 10, offset: 0 });
        assert.equal(appended, true);
        assert.equal(read.total, successes);
      } finally {
        await db.close();
      }
      all = (await t.vault.audit.query({ limit: 10_000, offset: 0 })).entries;
    });

    it('takes both page lookups with an end date', () => {
      // Guards the cases above: PostgreSQL reads pages with an end date both ways with this log.
      const later = (endDate: string) => all.filter((entry) => entry.timestamp > endDate).length;
      const recent = { endDate: hourIso(290), limit: 10, offset: 0 };
      assert.equal(pageLookup(recent, expected(recent).length, all.length, later(recent.endDate)), 'newest-first');
      const range = { action: 'read', startDate: hourIso(100), endDate: hourIso(160), limit: 10, offset: 0 };
      assert.equal(pageLookup(range, expected(range).length, all.length, later(range.endDate)), 'by-time');
    });

    /** Runs the query and returns each statement it sent, compiled. */
    async function statements(query: AuditQuery): Promise<CompiledQuery[]> {
      const sent: Array<{ node: RootOperationNode; queryId: Parameters<KyselyPlugin['transformQuery']>[0]['queryId'] }> = [];
      const recording: KyselyPlugin = {
        transformQuery: (args) => {
          sent.push(args);
          return args.node;
        },
        transformResult: async (args) => args.result,
      };
      await queryEntries(t.vault.db.kysely.withPlugin(recording), dialect, query);
      const executor = t.vault.db.kysely.getExecutor();
      return sent.map(({ node, queryId }) => executor.compileQuery(node, queryId));
    }

    if (dialect === 'sqlite') {
      /** Runs the query and returns SQLite's plan of each statement it sent. */
      async function plans(query: AuditQuery): Promise<string[]> {
        const result: string[] = [];
        for (const compiled of await statements(query)) {
          const plan = await t.vault.db.kysely.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]));
          result.push(plan.rows.map((row) => row.detail).join('; '));
        }
        return result;
      }

      it('pages a common action unsorted', async () => {
        const sent = await plans({ action: 'read', limit: 10, offset: 0 });
        assert.ok(sent.length > 0);
        for (const plan of sent) assert.doesNotMatch(plan, /TEMP B-TREE/, plan);
      });

      it('finds a time range by time', async () => {
        const sent = await plans({ action: 'read', startDate: hourIso(100), endDate: hourIso(160), limit: 10, offset: 0 });
        assert.ok(sent.length > 0);
        for (const plan of sent) assert.doesNotMatch(plan, /idx_audit_action_actor_seq/, plan);
      });

      it('pages a limited token unsorted', async () => {
        const reach = auditReach('sqlite', limited);
        for (const filter of [{}, { startDate: hourIso(120) }, { success: true }]) {
          const sent = await plans({ ...filter, reach, limit: 10, offset: 0 });
          assert.ok(sent.length > 0);
          for (const plan of sent) assert.doesNotMatch(plan, /TEMP B-TREE/, `${JSON.stringify(filter)}: ${plan}`);
        }
      });

      it('counts successes from failures', async () => {
        const sent = await plans({ success: true, limit: 10, offset: 0 });
        const scans = sent.filter((plan) => /SCAN aegis_audit_log USING COVERING INDEX idx_audit_report/.test(plan));
        assert.deepEqual(scans, []);
      });
    }

    if (dialect === 'postgres') {
      // PostgreSQL's plans depend on its statistics, so these tests check the statements sent instead.
      const sortedPage = /order by \+seq desc/;
      const counts = async (query: AuditQuery) => (await statements(query)).map((compiled) => compiled.sql).filter((text) => text.startsWith('select count(*)'));

      it('sorts the matches of a time range', async () => {
        const sent = await statements({ action: 'read', startDate: hourIso(100), endDate: hourIso(160), limit: 10, offset: 0 });
        assert.ok(sent.some((compiled) => sortedPage.test(compiled.sql)), sent.map((compiled) => compiled.sql).join('\n'));
      });

      it('pages a recent end date newest first', async () => {
        const sent = await statements({ endDate: hourIso(290), limit: 10, offset: 0 });
        assert.ok(sent.length > 0);
        for (const compiled of sent) assert.doesNotMatch(compiled.sql, sortedPage);
      });

      it('counts a limited token by reached name', async () => {
        const reach = auditReach('postgres', limited);
        for (const filter of [{}, { startDate: hourIso(120) }, { success: true }]) {
          const sent = await counts({ ...filter, reach, limit: 10, offset: 0 });
          assert.ok(sent.length > 0, JSON.stringify(filter));
          assert.ok(sent.some((text) => text.includes('"credential_name" = any(array(')), `${JSON.stringify(filter)}: ${sent.join('\n')}`);
          // The full condition, which PostgreSQL counted in a scan of the whole table.
          for (const text of sent) assert.doesNotMatch(text, /"aegis_audit_log"\."actor" = \$\d+ or /, JSON.stringify(filter));
        }
      });

      it('counts a limited action without name arrays', async () => {
        const sent = await counts({ action: 'read', reach: auditReach('postgres', limited), limit: 10, offset: 0 });
        assert.ok(sent.length > 0);
        for (const text of sent) assert.doesNotMatch(text, /any\(array\(/, text);
      });
    }
  });
}
