import assert from 'node:assert/strict';
import path from 'node:path';
import type { Logger } from 'pino';
import { after, before, describe, it } from 'node:test';
import { AuditLog } from '../../src/audit/audit.service.js';
import type { AuditEntry, AuditEntryInput } from '../../src/audit/audit.types.js';
import { verifyAuditChain } from '../../src/audit/verify.js';
import { uuid7 } from '../../src/lib/uuid7.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/** Waits for a condition that a worker thread brings about, checking every 10 ms for at most 10 s. */
async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited >= 10_000) throw new Error('the condition did not come true within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function entry(index: number): AuditEntryInput {
  return { credentialName: `group-${index}`, action: 'read', actor: 'ARIA', success: true, details: { index } };
}

for (const dialect of await testDialects()) {
  describe(`audit group commit (${dialect})`, () => {
    let t: TestVault;

    before(async () => {
      t = await openTestVault(dialect);
    });

    after(async () => {
      await destroyTestVault(t);
    });

    it('stores concurrent entries once each', async () => {
      const before = await t.vault.db.kysely.selectFrom('aegis_audit_log').select(({ fn }) => fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
      const results = await Promise.all(Array.from({ length: 300 }, (_, index) => t.vault.audit.record(entry(index))));
      const seqs = results.map(([stored]) => stored!.seq);
      assert.equal(new Set(seqs).size, 300);
      for (const [index, [stored]] of results.entries()) assert.equal(stored!.details.index, index);
      const after = await t.vault.db.kysely.selectFrom('aegis_audit_log').select(({ fn }) => fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
      assert.equal(Number(after.count) - Number(before.count), 300);
      const verdict = await verifyAuditChain(t.vault.db.kysely, t.vault.keyring);
      assert.equal(verdict.ok, true, JSON.stringify(verdict));
    });

    it("fails only the broken entry's call", async () => {
      const broken = { ...entry(-1), action: null } as unknown as AuditEntryInput;
      const outcomes = await Promise.allSettled([
        ...Array.from({ length: 20 }, (_, index) => t.vault.audit.record(entry(1000 + index))),
        t.vault.audit.record(broken),
        ...Array.from({ length: 20 }, (_, index) => t.vault.audit.record(entry(2000 + index))),
      ]);
      assert.deepEqual(
        outcomes.map((outcome) => outcome.status),
        [...Array(20).fill('fulfilled'), 'rejected', ...Array(20).fill('fulfilled')],
      );
      const stored = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('credential_name').where('credential_name', 'like', 'group-%').execute();
      const names = new Set(stored.map((row) => row.credential_name));
      for (let index = 0; index < 20; index += 1) {
        assert.ok(names.has(`group-${1000 + index}`));
        assert.ok(names.has(`group-${2000 + index}`));
      }
      assert.ok(!names.has('group--1'));
      assert.equal((await verifyAuditChain(t.vault.db.kysely, t.vault.keyring)).ok, true);
    });

    it('replaces NUL characters only', async () => {
      const [stored] = await t.vault.audit.record({ ...entry(11_000), details: { note: 'a\u0000b', path: 'C:\\u0000x', both: '\\\u0000' } });
      const [row] = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('details').where('seq', '=', stored!.seq).execute();
      const details = typeof row!.details === 'string' ? JSON.parse(row!.details) : row!.details;
      assert.equal(details.note, 'a\ufffdb');
      assert.equal(details.path, 'C:\\u0000x');
      assert.equal(details.both, '\\\ufffd');
      assert.deepEqual(stored!.details, details);
    });

    it('stores awkward text exactly', async () => {
      // Characters that array literals and VALUES lists quote or escape, in every text column.
      const awkward = ['a"b', 'back\\slash', '{brace}', 'com,ma', 'NULL', '', ' spaced ', 'ünï€😀', "it's"];
      await t.vault.audit.record(entry(12_000));
      const recorded = await t.vault.audit.record(
        ...awkward.map((text) => ({
          credentialName: `awkward${text}`,
          action: `action${text}`,
          actor: `actor${text}`,
          target: `target${text}`,
          ipAddress: `ip${text}`,
          success: text.length % 2 === 0,
          errorMessage: `error${text}`,
          details: { text, [text]: [text, null] },
        })),
      );
      const rows = await t.vault.db.kysely
        .selectFrom('aegis_audit_log')
        .selectAll()
        .where('seq', '>=', recorded[0]!.seq)
        .orderBy('seq')
        .execute();
      assert.equal(rows.length, awkward.length);
      for (const [index, text] of awkward.entries()) {
        const row = rows[index]!;
        assert.equal(row.credential_name, `awkward${text}`);
        assert.equal(row.action, `action${text}`);
        assert.equal(row.actor, `actor${text}`);
        assert.equal(row.target, `target${text}`);
        assert.equal(row.ip_address, `ip${text}`);
        assert.equal(row.error_message, `error${text}`);
        assert.equal(Boolean(row.success), text.length % 2 === 0);
        assert.deepEqual(typeof row.details === 'string' ? JSON.parse(row.details) : row.details, { text, [text]: [text, null] });
      }
      assert.equal((await verifyAuditChain(t.vault.db.kysely, t.vault.keyring)).ok, true);
    });

    it('stores chosen entry ids once', async () => {
      const audit = t.vault.audit;
      const chosen = Array.from({ length: 10 }, () => uuid7());
      // Half the calls choose their id. On SQLite the second batch goes through the writer thread.
      for (const batch of [0, 1]) {
        if (batch === 1 && dialect === 'sqlite') await until(() => audit.writerState === 'ready');
        const groupsBefore = audit.writerGroups;
        const calls = Array.from({ length: 10 }, (_, index) => {
          const input = entry(12_000 + batch * 100 + index);
          return audit.record(index % 2 === 0 ? { ...input, entryId: chosen[batch * 5 + index / 2]! } : input);
        });
        const results = await Promise.all(calls);
        for (const [index, [stored]] of results.entries()) {
          if (index % 2 === 0) assert.equal(stored!.id, chosen[batch * 5 + index / 2]);
          else assert.ok(!chosen.includes(stored!.id));
        }
        if (batch === 1 && dialect === 'sqlite') assert.ok(audit.writerGroups > groupsBefore, 'no group went through the writer thread');
      }
      const rows = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('id').where('id', 'in', chosen).execute();
      assert.equal(rows.length, 10);

      // A second entry with a used id is rejected, and the calls committed with it are stored.
      const outcomes = await Promise.allSettled([audit.record(entry(12_300)), audit.record({ ...entry(12_301), entryId: chosen[0]! }), audit.record(entry(12_302))]);
      assert.deepEqual(
        outcomes.map((outcome) => outcome.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      const reused = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('credential_name').where('id', '=', chosen[0]!).execute();
      assert.deepEqual(reused, [{ credential_name: 'group-12000' }]);
      assert.equal((await verifyAuditChain(t.vault.db.kysely, t.vault.keyring)).ok, true);
    });

    it('audits every concurrent read', async () => {
      const created = await call(t.app, 'POST', '/credentials', {
        token: t.adminToken,
        body: { name: 'group-read', credential_type: 'apiKey', provider: 'n8n', value: 'group-read-value' },
      });
      assert.equal(created.status, 201);
      const responses = await Promise.all(Array.from({ length: 50 }, () => call(t.app, 'GET', '/credentials/group-read', { token: t.adminToken })));
      assert.ok(responses.every((response) => response.status === 200));
      const reads = await t.vault.db.kysely
        .selectFrom('aegis_audit_log')
        .select('seq')
        .where('credential_name', '=', 'group-read')
        .where('action', '=', 'read')
        .execute();
      assert.equal(reads.length, 50);
    });

    if (dialect === 'sqlite') {
      it('writer thread shares the chain', async () => {
        const audit = t.vault.audit;
        await Promise.all(Array.from({ length: 20 }, (_, index) => audit.record(entry(4000 + index))));
        assert.notEqual(audit.writerState, 'stopped');
        await until(() => audit.writerState === 'ready');
        const groupsBefore = audit.writerGroups;
        const headBefore = await t.vault.db.kysely.selectFrom('aegis_audit_head').select('seq').executeTakeFirstOrThrow();
        // Appends inside transactions of the main connection run while the thread commits: the group
        // goes out at the end of this turn, the transactions start in the turns after it.
        const recorded = Array.from({ length: 200 }, (_, index) => audit.record(entry(5000 + index)));
        const inTransactions: Array<Promise<AuditEntry[]>> = [];
        for (let index = 0; index < 10; index += 1) {
          await new Promise((resolve) => setImmediate(resolve));
          inTransactions.push(t.vault.db.kysely.transaction().execute((trx) => audit.recordIn(trx, entry(6000 + index))));
        }
        const results = await Promise.all([...recorded, ...inTransactions]);
        assert.ok(audit.writerGroups > groupsBefore, 'no group went through the writer thread');
        const seqs = results.map(([stored]) => stored!.seq);
        assert.equal(new Set(seqs).size, 210);
        for (const [index, [stored]] of results.slice(0, 200).entries()) assert.equal(stored!.details.index, 5000 + index);
        const headAfter = await t.vault.db.kysely.selectFrom('aegis_audit_head').select('seq').executeTakeFirstOrThrow();
        assert.equal(Number(headAfter.seq) - Number(headBefore.seq), 210);
        const verdict = await verifyAuditChain(t.vault.db.kysely, t.vault.keyring);
        assert.equal(verdict.ok, true, JSON.stringify(verdict));
      });

      it('several groups in flight, one broken', async () => {
        const audit = t.vault.audit;
        await until(() => audit.writerState === 'ready');
        const groupsBefore = audit.writerGroups;
        const headBefore = await t.vault.db.kysely.selectFrom('aegis_audit_head').select('seq').executeTakeFirstOrThrow();
        // Each turn sends a group without waiting for the one before, so several are in flight.
        const calls: Array<Promise<AuditEntry[]>> = [];
        for (let turn = 0; turn < 6; turn += 1) {
          for (let index = 0; index < 5; index += 1) {
            const input = turn === 3 && index === 2 ? ({ ...entry(-3), action: null } as unknown as AuditEntryInput) : entry(10_000 + turn * 10 + index);
            calls.push(audit.record(input));
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
        const outcomes = await Promise.allSettled(calls);
        assert.deepEqual(
          outcomes.map((outcome, position) => (position === 17 ? outcome.status === 'rejected' : outcome.status === 'fulfilled')),
          Array(30).fill(true),
        );
        assert.ok(audit.writerGroups - groupsBefore >= 6, `only ${audit.writerGroups - groupsBefore} groups went through the thread`);
        for (const [position, outcome] of outcomes.entries()) {
          if (position === 17) continue;
          const [stored] = (outcome as PromiseFulfilledResult<AuditEntry[]>).value;
          assert.equal(stored!.details.index, 10_000 + Math.floor(position / 5) * 10 + (position % 5));
        }
        const headAfter = await t.vault.db.kysely.selectFrom('aegis_audit_head').select('seq').executeTakeFirstOrThrow();
        assert.equal(Number(headAfter.seq) - Number(headBefore.seq), 29);
        assert.equal((await verifyAuditChain(t.vault.db.kysely, t.vault.keyring)).ok, true);
      });

      it('writer thread fails only the broken call', async () => {
        const audit = t.vault.audit;
        await until(() => audit.writerState === 'ready');
        const groupsBefore = audit.writerGroups;
        const broken = { ...entry(-2), action: null } as unknown as AuditEntryInput;
        const outcomes = await Promise.allSettled([audit.record(entry(7000)), audit.record(broken), audit.record(entry(7001))]);
        assert.deepEqual(
          outcomes.map((outcome) => outcome.status),
          ['fulfilled', 'rejected', 'fulfilled'],
        );
        assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /NOT NULL constraint failed: aegis_audit_log\.action/);
        assert.ok(audit.writerGroups > groupsBefore);
        assert.equal((await verifyAuditChain(t.vault.db.kysely, t.vault.keyring)).ok, true);
      });

      it('failed writer thread stays stopped', async () => {
        // A file in a folder that does not exist: the thread cannot open it and ends with an error.
        const location = path.join(t.dir, 'missing', 'aegis.db');
        const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
        const log = { warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }) } as unknown as Pick<Logger, 'warn'>;
        const audit = new AuditLog({ db: { ...t.vault.db, location }, clock: t.clock, log });
        await Promise.all(Array.from({ length: 20 }, (_, index) => audit.record(entry(9000 + index))));
        assert.equal(audit.writerState, 'starting');
        await until(() => audit.writerState === 'stopped');
        const results = await Promise.all(Array.from({ length: 20 }, (_, index) => audit.record(entry(9100 + index))));
        assert.equal(audit.writerState, 'stopped');
        assert.equal(audit.writerGroups, 0);
        assert.equal(results.length, 20);
        assert.equal((await verifyAuditChain(t.vault.db.kysely, t.vault.keyring)).ok, true);
        assert.equal(warnings.length, 1);
        assert.match(warnings[0]!.message, /audit writer thread failed/);
        assert.equal(warnings[0]!.fields.file, location);
      });

      it('writer thread ending after a commit', async () => {
        // The thread commits its first group, then ends before it replies, as an out-of-memory end could.
        process.env.AEGIS_TEST_CRASH_AT = 'audit_writer_after_commit';
        try {
          const audit = new AuditLog({ db: t.vault.db, clock: t.clock });
          await Promise.all(Array.from({ length: 20 }, (_, index) => audit.record(entry(11_000 + index))));
          await until(() => audit.writerState === 'ready');
          const results = await Promise.all(Array.from({ length: 20 }, (_, index) => audit.record(entry(11_100 + index))));
          assert.equal(audit.writerState, 'stopped');
          assert.equal(audit.writerGroups, 0);
          for (const [index, [stored]] of results.entries()) assert.equal(stored!.details.index, 11_100 + index);

          const names = Array.from({ length: 20 }, (_, index) => `group-${11_100 + index}`);
          const rows = await t.vault.db.kysely.selectFrom('aegis_audit_log').select(['id', 'credential_name']).where('credential_name', 'in', names).execute();
          assert.equal(rows.length, 20);
          assert.deepEqual(rows.map((row) => row.id).sort(), results.map(([stored]) => stored!.id).sort());

          const [later] = await audit.record(entry(11_200));
          assert.equal(later!.details.index, 11_200);
          assert.equal((await verifyAuditChain(t.vault.db.kysely, t.vault.keyring)).ok, true);
        } finally {
          delete process.env.AEGIS_TEST_CRASH_AT;
        }
      });

      it('writer thread stops when idle and on close', async () => {
        const audit = new AuditLog({ db: t.vault.db, clock: t.clock, writerIdleMs: 50 });
        await Promise.all(Array.from({ length: 20 }, (_, index) => audit.record(entry(8000 + index))));
        await until(() => audit.writerState === 'ready');
        await until(() => audit.writerState === 'stopped');
        const [alone] = await audit.record(entry(8100));
        assert.equal(audit.writerState, 'stopped');
        assert.equal(alone!.details.index, 8100);

        await Promise.all(Array.from({ length: 20 }, (_, index) => audit.record(entry(8200 + index))));
        await until(() => audit.writerState === 'ready');
        const closing = Promise.all(Array.from({ length: 20 }, (_, index) => audit.record(entry(8300 + index))));
        await audit.close();
        assert.equal(audit.writerState, 'stopped');
        assert.equal((await closing).length, 20);
        const stored = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('seq').where('credential_name', 'in', ['group-8300', 'group-8319']).execute();
        assert.equal(stored.length, 2);
        assert.equal((await verifyAuditChain(t.vault.db.kysely, t.vault.keyring)).ok, true);
      });
    }

    if (dialect === 'postgres') {
      it('keeps one chain across two processes', async () => {
        // A second vault on the same schema plays a second AEGIS process. Each process appends
        // with one statement while the head is where it left it, and takes the locked path otherwise.
        const second = await openTestVault(dialect, { reuse: { dir: t.dir, schema: t.env.AEGIS_DATABASE_SCHEMA! } });
        try {
          const before = await t.vault.db.kysely.selectFrom('aegis_audit_head').select('seq').executeTakeFirstOrThrow();
          // Rounds one after another, so that each process's next group finds the head where the
          // other one left it, and within a round both append at the same time.
          const seqs: number[] = [];
          for (let round = 0; round < 20; round += 1) {
            const [first, other] = await Promise.all([
              Promise.all(Array.from({ length: 5 }, (_, index) => t.vault.audit.record(entry(3000 + round * 10 + index)))),
              Promise.all(Array.from({ length: 5 }, (_, index) => second.vault.audit.record(entry(3005 + round * 10 + index)))),
            ]);
            seqs.push(...[...first, ...other].map(([stored]) => stored!.seq));
          }
          assert.equal(new Set(seqs).size, 200);
          const after = await t.vault.db.kysely.selectFrom('aegis_audit_head').select('seq').executeTakeFirstOrThrow();
          assert.equal(Number(after.seq) - Number(before.seq), 200);
          const verdict = await verifyAuditChain(t.vault.db.kysely, t.vault.keyring);
          assert.equal(verdict.ok, true, JSON.stringify(verdict));
        } finally {
          await second.close();
        }
      });
    }
  });
}
