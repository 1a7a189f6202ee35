import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { tsxLoader } from '../helpers/cli.js';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const cliEntry = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/bin.ts');

/** Resolves once `check` returns true, testing it on every turn of the event loop. */
async function waitFor(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}

// `aegis backup` copies SQLite databases only.
describe('backup interrupted by SIGINT', () => {
  let t: TestVault;

  before(async () => {
    t = await openTestVault('sqlite');
    // Enough pages that SQLite's backup takes several steps, and the signal arrives between two of them.
    for (let round = 0; round < 10; round++) {
      const entries = Array.from({ length: 5_000 }, (_, index) => ({ credentialName: 'alpha', action: 'read', actor: 'ARIA', success: true, details: { index } }));
      await t.vault.audit.record(...entries);
    }
  });
  after(async () => destroyTestVault(t));

  it('leaves no partial copy', async () => {
    const folder = fs.mkdtempSync(path.join(path.dirname(t.dir), 'aegis-backup-'));
    try {
      const child = spawn(process.execPath, ['--import', tsxLoader, cliEntry, 'backup', '--to', path.join(folder, 'vault.db')], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...t.env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const exited = once(child, 'exit');

      await waitFor(() => fs.readdirSync(folder).length > 0);
      child.kill('SIGINT');
      const [code] = (await exited) as [number | null];

      assert.equal(code, 130, stderr);
      assert.deepEqual(fs.readdirSync(folder), [], 'no partial copy or journal is left behind');
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
