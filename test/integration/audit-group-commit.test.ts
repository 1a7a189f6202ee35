import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AuditEntryInput } from '../../src/audit/audit.types.js';
import { verifyAuditChain } from '../../src/audit/verify.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

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
