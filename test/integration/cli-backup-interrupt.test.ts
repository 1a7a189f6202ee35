import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCli, waitFor } from '../helpers/cli.js';
import { destroyTestVault, openTestVault, seedReadEntries, type TestVault } from '../helpers/test-vault.js';

// `aegis backup` copies SQLite databases only.
describe('backup interrupted by SIGINT', () => {
  let t: TestVault;

  before(async () => {
    t = await openTestVault('sqlite');
    // Enough pages that SQLite's backup takes several steps, and the signal arrives between two of them.
    await seedReadEntries(t, 50_000);
  });
  after(async () => destroyTestVault(t));

  it('leaves no partial copy', async () => {
    const folder = fs.mkdtempSync(path.join(path.dirname(t.dir), 'aegis-backup-'));
    try {
      const backup = startCli(['backup', '--to', path.join(folder, 'vault.db')], t.env);

      await waitFor(() => fs.readdirSync(folder).length > 0 || backup.ended());
      backup.child.kill('SIGINT');
      const code = await backup.exited;

      assert.equal(code, 130, backup.stderr());
      assert.deepEqual(fs.readdirSync(folder), [], 'no partial copy or journal is left behind');
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
