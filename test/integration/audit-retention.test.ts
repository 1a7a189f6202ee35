import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pruneAudit } from '../../src/audit/prune.js';
import { verifyAuditChain } from '../../src/audit/verify.js';
import { loadConfig } from '../../src/config/config.js';
import { ManualClock } from '../../src/lib/clock.js';
import { runCli } from '../helpers/cli.js';
import { testDialects } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

/** Records one entry a day for `days` days from `start`, with the clock moved to each. */
async function seedDays(t: TestVault, start: string, days: number, actor: string): Promise<void> {
  for (let day = 0; day < days; day += 1) {
    t.clock.set(new Date(new Date(start).getTime() + day * 86_400_000));
    await t.vault.audit.record({ credentialName: 'alpha', action: 'read', actor, success: true, details: { day } });
  }
}

async function seqOfFirstEntryFrom(t: TestVault, instant: string): Promise<number> {
  const row = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('seq').where('timestamp', '>=', instant).orderBy('seq').limit(1).executeTakeFirstOrThrow();
  return Number(row.seq);
}

describe('audit retention setting', () => {
  it('retention below a year rejected', () => {
    assert.throws(() => loadConfig({ AEGIS_AUDIT_RETENTION_DAYS: '364' }, '/tmp'), /AEGIS_AUDIT_RETENTION_DAYS must be at least 365/);
    assert.throws(() => loadConfig({ AEGIS_AUDIT_RETENTION_DAYS: 'forever' }, '/tmp'), /AEGIS_AUDIT_RETENTION_DAYS must be a whole number/);
    assert.equal(loadConfig({}, '/tmp').audit.retentionDays, 365);
    assert.equal(loadConfig({ AEGIS_AUDIT_RETENTION_DAYS: '400' }, '/tmp').audit.retentionDays, 400);
  });
});

for (const dialect of await testDialects()) {
  describe(`audit retention on ${dialect}`, () => {
    let t: TestVault;
    let lastPruned: number;

    before(async () => {
      t = await openTestVault(dialect, { clock: new ManualClock('2024-01-01T00:00:00.000Z') });
      await seedDays(t, '2024-01-01T06:00:00.000Z', 40, 'ARIA');
      await seedDays(t, '2025-01-10T06:00:00.000Z', 10, 'HEPHAESTUS');
      t.clock.set('2025-02-01T00:00:00.000Z');
    });
    after(async () => destroyTestVault(t));

    /** Reads the newest audit_pruned entry, with its details parsed and success as a boolean. */
    async function lastPruneEntry() {
      const row = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('action', '=', 'audit_pruned').orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
      return { ...row, success: Boolean(row.success), details: (typeof row.details === 'string' ? JSON.parse(row.details) : row.details) as Record<string, unknown> };
    }

    it('prune keeps the last year', async () => {
      const firstKept = await seqOfFirstEntryFrom(t, '2024-02-01T00:00:00.000Z');
      const result = await pruneAudit(t.vault.db, t.vault.keyring, t.clock, { retentionDays: 365 });
      assert.equal(result.cutoff, '2024-02-02T00:00:00.000Z');
      assert.equal(result.firstSeq, 1);
      assert.equal(result.lastSeq, firstKept);
      assert.equal(result.removed, firstKept);
      assert.equal(result.checkpoints, 1);
      lastPruned = firstKept;

      const oldest = await t.vault.db.kysely.selectFrom('aegis_audit_log').select(['seq', 'timestamp']).orderBy('seq').limit(1).executeTakeFirstOrThrow();
      assert.equal(Number(oldest.seq), firstKept + 1);
      const checkpoint = await t.vault.db.kysely.selectFrom('aegis_audit_checkpoints').selectAll().executeTakeFirstOrThrow();
      assert.equal(Number(checkpoint.seq), firstKept);
      assert.match(checkpoint.key_id, /^mk_/);
      assert.match(checkpoint.signature, /^[0-9a-f]{64}$/);
    });

    it('prune again removes nothing', async () => {
      const result = await pruneAudit(t.vault.db, t.vault.keyring, t.clock, { retentionDays: 365 });
      assert.equal(result.removed, 0);
      assert.equal(result.checkpoints, 0);
    });

    it('prune rejects a recent cutoff', async () => {
      await assert.rejects(
        pruneAudit(t.vault.db, t.vault.keyring, t.clock, { retentionDays: 365, before: new Date('2024-06-01T00:00:00.000Z') }),
        /before: must be on or before 2024-02-02T00:00:00.000Z.*AEGIS_AUDIT_RETENTION_DAYS/,
      );
    });

    it('verify reports the pruned range', async () => {
      const report = await verifyAuditChain(t.vault.db.kysely, t.vault.keyring);
      assert.equal(report.ok, true, report.problem?.message);
      assert.deepEqual(report.pruned, { firstSeq: 1, lastSeq: lastPruned, checkpoints: 1, lastPrunedAt: '2025-02-01T00:00:00.000Z' });

      const cli = await runCli(['audit', 'verify'], t.env);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, new RegExp(`audit chain verified: .*entries 1 to ${lastPruned} were pruned \\(1 signed checkpoint`));
    });

    it('changed entry still fails', async () => {
      const target = lastPruned + 3;
      const original = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('actor').where('seq', '=', target).executeTakeFirstOrThrow();
      await t.vault.db.kysely.updateTable('aegis_audit_log').set({ actor: 'MALLORY' }).where('seq', '=', target).execute();
      try {
        const report = await verifyAuditChain(t.vault.db.kysely, t.vault.keyring);
        assert.equal(report.ok, false);
        assert.equal(report.problem?.seq, target);
        assert.equal(report.problem?.reason, 'changed');
        const cli = await runCli(['audit', 'verify'], t.env);
        assert.equal(cli.code, 1);
        assert.match(cli.stdout, new RegExp(`Entry ${target} .* was changed`));
        assert.match(cli.stdout, new RegExp(`its hash\\. Entries 1 to ${lastPruned} were pruned \\(1 signed checkpoint\\(s\\), the last at [^)]+\\)\\.\n$`));
      } finally {
        await t.vault.db.kysely.updateTable('aegis_audit_log').set({ actor: original.actor }).where('seq', '=', target).execute();
      }
    });

    it('first entry after checkpoint checked', async () => {
      const first = lastPruned + 1;
      const original = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('prev_hash').where('seq', '=', first).executeTakeFirstOrThrow();
      await t.vault.db.kysely.updateTable('aegis_audit_log').set({ prev_hash: 'f'.repeat(64) }).where('seq', '=', first).execute();
      try {
        const report = await verifyAuditChain(t.vault.db.kysely, t.vault.keyring);
        assert.equal(report.ok, false);
        assert.equal(report.problem?.seq, first);
      } finally {
        await t.vault.db.kysely.updateTable('aegis_audit_log').set({ prev_hash: original.prev_hash }).where('seq', '=', first).execute();
      }
    });

    it('tampered checkpoint fails', async () => {
      const checkpoints = () => t.vault.db.kysely.updateTable('aegis_audit_checkpoints').where('seq', '=', lastPruned);
      await checkpoints().set({ removed_count: lastPruned - 1 }).execute();
      try {
        const report = await verifyAuditChain(t.vault.db.kysely, t.vault.keyring);
        assert.equal(report.ok, false);
        assert.equal(report.problem?.reason, 'checkpoint_invalid');
        assert.match(report.problem!.message, /signature does not verify/);
        const cli = await runCli(['audit', 'verify'], t.env);
        assert.equal(cli.code, 1);
        assert.match(cli.stdout, /checkpoint for entries 1 to \d+ was changed/);
      } finally {
        await checkpoints().set({ removed_count: lastPruned }).execute();
      }
      assert.equal((await verifyAuditChain(t.vault.db.kysely, t.vault.keyring)).ok, true);
    });

    it('removed checkpoint fails', async () => {
      const saved = await t.vault.db.kysely.selectFrom('aegis_audit_checkpoints').selectAll().executeTakeFirstOrThrow();
      await t.vault.db.kysely.deleteFrom('aegis_audit_checkpoints').execute();
      try {
        const report = await verifyAuditChain(t.vault.db.kysely, t.vault.keyring);
        assert.equal(report.ok, false);
        assert.equal(report.problem?.reason, 'missing_before');
        assert.equal(report.problem?.seq, lastPruned + 1);
      } finally {
        await t.vault.db.kysely
          .insertInto('aegis_audit_checkpoints')
          .values({ ...saved, seq: Number(saved.seq), first_seq: Number(saved.first_seq), removed_count: Number(saved.removed_count), pruned_before: new Date(saved.pruned_before).toISOString(), created_at: new Date(saved.created_at).toISOString() })
          .execute();
      }
    });

    it('prune refuses a tampered range', async () => {
      t.clock.set('2026-01-20T00:00:00.000Z');
      const target = lastPruned + 2;
      const before = await t.vault.db.kysely.selectFrom('aegis_audit_log').select(['actor']).where('seq', '=', target).executeTakeFirstOrThrow();
      await t.vault.db.kysely.updateTable('aegis_audit_log').set({ actor: 'MALLORY' }).where('seq', '=', target).execute();
      try {
        await assert.rejects(pruneAudit(t.vault.db, t.vault.keyring, t.clock, { retentionDays: 365 }), new RegExp(`removed nothing.*Entry ${target}`));
        const tampered = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('seq').where('seq', '=', target).executeTakeFirst();
        assert.ok(tampered, 'the tampered entry is still there');
      } finally {
        await t.vault.db.kysely.updateTable('aegis_audit_log').set({ actor: before.actor }).where('seq', '=', target).execute();
      }
    });

    it('cli prune with before', async () => {
      // The CLI reads the real clock, and every seeded entry is more than a year old by then.
      const tooLate = new Date(Date.now() + 86_400_000).toISOString();
      const early = await runCli(['audit', 'prune', '--before', tooLate], t.env);
      assert.equal(early.code, 2);
      assert.match(early.stderr, /^aegis: invalid --before: must be on or before .*AEGIS_AUDIT_RETENTION_DAYS/);
      const rejected = await lastPruneEntry();
      assert.equal(rejected.success, false);
      assert.match(rejected.actor, /^cli:/);
      assert.match(rejected.error_message ?? '', /^invalid_input: before: must be on or before /);
      assert.equal(rejected.details.before, tooLate);

      const nothing = await runCli(['audit', 'prune', '--before', '2024-01-01'], t.env);
      assert.equal(nothing.code, 0, nothing.stderr);
      assert.match(nothing.stdout, /nothing was removed/);
      const noop = await lastPruneEntry();
      assert.equal(noop.success, true);
      assert.equal(noop.details.removed, 0);
      assert.equal(noop.details.pruned_before, '2024-01-01T00:00:00.000Z');

      const firstKept = await seqOfFirstEntryFrom(t, '2025-01-15T00:00:00.000Z');
      const pruned = await runCli(['audit', 'prune', '--before', '2025-01-15', '--json'], t.env);
      assert.equal(pruned.code, 0, pruned.stderr);
      const result = JSON.parse(pruned.stdout);
      assert.equal(result.first_seq, lastPruned + 1);
      assert.equal(result.last_seq, firstKept - 1);
      assert.equal(result.checkpoints, 1);

      const report = await verifyAuditChain(t.vault.db.kysely, t.vault.keyring);
      assert.equal(report.ok, true, report.problem?.message);
      assert.equal(report.pruned?.firstSeq, 1);
      assert.equal(report.pruned?.lastSeq, firstKept - 1);
      assert.equal(report.pruned?.checkpoints, 2);
      const entry = await t.vault.db.kysely.selectFrom('aegis_audit_log').selectAll().where('action', '=', 'audit_pruned').orderBy('seq', 'desc').executeTakeFirstOrThrow();
      assert.match(entry.actor, /^cli:/);
    });
  });

  describe(`audit timestamp form on ${dialect}`, () => {
    let t: TestVault;
    // PostgreSQL stores timestamptz, so the same instant cannot be stored in another form there: the
    // rewrite below runs on SQLite only, and on PostgreSQL the checks confirm that nothing changed.
    const rewrite = dialect === 'sqlite';

    before(async () => {
      t = await openTestVault(dialect, { clock: new ManualClock('2024-01-01T00:00:00.000Z') });
      await seedDays(t, '2024-01-01T06:00:00.000Z', 5, 'ARIA');
      await seedDays(t, '2025-01-10T06:00:00.000Z', 5, 'HEPHAESTUS');
      t.clock.set('2025-02-01T00:00:00.000Z');
    });
    after(async () => destroyTestVault(t));

    /** Rewrites the timestamp text of entry `seq` to `form(text)` on SQLite; returns the original text. */
    async function rewriteTimestamp(seq: number, form: (text: string) => string): Promise<string> {
      const row = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('timestamp').where('seq', '=', seq).executeTakeFirstOrThrow();
      const original = new Date(row.timestamp).toISOString();
      if (rewrite) await t.vault.db.kysely.updateTable('aegis_audit_log').set({ timestamp: form(original) }).where('seq', '=', seq).execute();
      return original;
    }

    it('verify flags a timestamp form', async () => {
      const target = await seqOfFirstEntryFrom(t, '2025-01-12T00:00:00.000Z');
      // The same instant, written with a +10:00 offset.
      const original = await rewriteTimestamp(target, (text) => new Date(Date.parse(text) + 10 * 3_600_000).toISOString().replace('Z', '+10:00'));
      try {
        const report = await verifyAuditChain(t.vault.db.kysely, t.vault.keyring);
        const api = await call(t.app, 'GET', '/audit/verify', { token: t.adminToken });
        assert.equal(api.status, 200);
        const cli = await runCli(['audit', 'verify', '--json'], t.env);
        if (!rewrite) {
          assert.equal(report.ok, true, report.problem?.message);
          assert.equal(api.json.ok, true);
          assert.equal(cli.code, 0, cli.stderr);
          return;
        }
        assert.equal(report.problem?.seq, target);
        assert.equal(report.problem?.reason, 'changed');
        assert.match(report.problem!.message, /timestamp "[^"]+\+10:00" is not in the form AEGIS writes/);
        assert.equal(api.json.ok, false);
        assert.equal(api.json.problem.seq, target);
        assert.equal(api.json.problem.reason, 'changed');
        assert.equal(cli.code, 1, cli.stderr);
        assert.equal(JSON.parse(cli.stdout).problem.seq, target);
      } finally {
        await t.vault.db.kysely.updateTable('aegis_audit_log').set({ timestamp: original }).where('seq', '=', target).execute();
      }
    });

    it('prune keeps a recent entry', async () => {
      const recent = await seqOfFirstEntryFrom(t, '2025-01-10T00:00:00.000Z');
      // The same instant with a six-digit year, which sorts before every four-digit year as text.
      const original = await rewriteTimestamp(recent, (text) => `+00${text}`);
      try {
        if (rewrite) {
          await assert.rejects(pruneAudit(t.vault.db, t.vault.keyring, t.clock, { retentionDays: 365 }), new RegExp(`removed nothing.*Entry ${recent} .*not in the form AEGIS writes`));
        } else {
          const result = await pruneAudit(t.vault.db, t.vault.keyring, t.clock, { retentionDays: 365 });
          assert.equal(result.lastSeq, recent - 1);
        }
        const kept = await t.vault.db.kysely.selectFrom('aegis_audit_log').select('seq').where('seq', '>=', recent).where('actor', '=', 'HEPHAESTUS').execute();
        assert.equal(kept.length, 5, 'every entry inside the retention period is kept');
      } finally {
        await t.vault.db.kysely.updateTable('aegis_audit_log').set({ timestamp: original }).where('seq', '=', recent).execute();
      }
    });
  });
}
