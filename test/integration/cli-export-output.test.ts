import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, startCli, waitFor } from '../helpers/cli.js';
import { destroyTestVault, openTestVault, seedReadEntries, type TestVault } from '../helpers/test-vault.js';

/** Returns the audit log's head sequence number, which grows with every entry written. */
async function auditHead(t: TestVault): Promise<number> {
  const head = await t.vault.db.kysely.selectFrom('aegis_audit_head').select('seq').executeTakeFirstOrThrow();
  return Number(head.seq);
}

// The file handling does not depend on the database, so SQLite alone is tested.
describe('audit export --output', () => {
  let t: TestVault;

  before(async () => {
    t = await openTestVault('sqlite');
    // Enough entries that the export is still writing when the test interrupts it.
    await seedReadEntries(t, 50_000);
  });
  after(async () => destroyTestVault(t));

  it('missing folder fails before any work', async () => {
    const headBefore = await auditHead(t);
    const file = path.join(t.dir, 'missing', 'audit.jsonl');

    const result = await runCli(['audit', 'export', '--format', 'jsonl', '--output', file], t.env);

    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr, `aegis: The folder ${path.dirname(file)} does not exist; create it first. Nothing was written.\n`);
    assert.equal(await auditHead(t), headBefore, 'no audit_exported entry for an export that never ran');
  });

  it('folder as output fails with a message', async () => {
    const result = await runCli(['audit', 'export', '--format', 'jsonl', '--output', t.dir], t.env);

    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr, `aegis: ${t.dir} is a folder; give the path of a file. Nothing was written.\n`);
  });

  it('replaced file gets mode 0600', async () => {
    const file = path.join(t.dir, 'replaced.jsonl');
    fs.writeFileSync(file, 'earlier export\n', { mode: 0o644 });

    const result = await runCli(['audit', 'export', '--format', 'jsonl', '--output', file], t.env);

    assert.equal(result.code, 0, result.stderr);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.notEqual(fs.readFileSync(file, 'utf8'), 'earlier export\n');
  });

  it('SIGINT midway keeps the previous file', async () => {
    const folder = fs.mkdtempSync(path.join(t.dir, 'interrupted-'));
    const file = path.join(folder, 'audit.jsonl');
    const previous = 'a complete earlier export\n';
    fs.writeFileSync(file, previous, { mode: 0o600 });
    const exported = startCli(['audit', 'export', '--format', 'jsonl', '--output', file], t.env);

    // The export has started once it opened a file: a temporary one, or the target itself.
    await waitFor(() => fs.readdirSync(folder).length > 1 || fs.statSync(file).size !== previous.length || exported.ended());
    exported.child.kill('SIGINT');
    const code = await exported.exited;

    assert.equal(code, 130, exported.stderr());
    assert.equal(fs.readFileSync(file, 'utf8'), previous);
    assert.deepEqual(fs.readdirSync(folder), ['audit.jsonl'], 'no partial file is left behind');
  });
});
