import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { localCaller } from '../src/tokens/caller.js';
import { openVault } from '../src/vault.js';

/**
 * Fills a new SQLite vault in `dir` with `count` credentials, each with one current version, and closes
 * it again so that `aegis serve` can open the folder. One credential is created through the registry;
 * the rest are copies of its rows written with the SQLite driver, which takes seconds instead of minutes.
 *
 * NOTE: every copy keeps the template's ciphertext, whose associated data names the template's id, so
 * a copy's value does not decrypt. Use this only for workloads that never decrypt (the dashboard and
 * list endpoints read no values).
 */
export async function seedCredentials(dir: string, count: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const config = loadConfig({ AEGIS_DATA_DIR: dir, AEGIS_LOG_LEVEL: 'silent' }, dir);
  const vault = await openVault(config, { log: pino({ level: 'silent' }) });
  let credentialRow: Record<string, unknown>;
  let versionRow: Record<string, unknown>;
  try {
    const template = await vault.registry.create(localCaller('bench-seed'), {
      name: 'bench/template',
      credential_type: 'apiKey',
      provider: 'api',
      value: crypto.randomBytes(24).toString('base64url'),
      tags: ['bench'],
    });
    const db = vault.db.kysely;
    credentialRow = await db.selectFrom('aegis_credentials').selectAll().where('id', '=', template.id).executeTakeFirstOrThrow();
    versionRow = await db.selectFrom('aegis_credential_versions').selectAll().where('credential_id', '=', template.id).executeTakeFirstOrThrow();
  } finally {
    await vault.close();
  }
  copyRows(path.join(dir, 'aegis.db'), count, credentialRow, versionRow);
}

/** Writes `count - 1` copies of the template's rows with one prepared statement per table, in one transaction. */
function copyRows(file: string, count: number, credentialRow: Record<string, unknown>, versionRow: Record<string, unknown>): void {
  const db = new Database(file);
  // A page cache large enough for the whole file keeps the index updates in memory until the commit.
  db.pragma('cache_size = -400000');
  try {
    const insert = (table: string, row: Record<string, unknown>) => {
      const columns = Object.keys(row);
      return db.prepare(`insert into ${table} (${columns.join(', ')}) values (${columns.map((column) => `@${column}`).join(', ')})`);
    };
    const insertCredential = insert('aegis_credentials', credentialRow);
    const insertVersion = insert('aegis_credential_versions', versionRow);
    const now = Date.now();
    db.transaction(() => {
      for (let index = 1; index < count; index += 1) {
        const id = crypto.randomUUID();
        // Every 7th credential expires within a day and every 11th has expired, so the counts by status differ.
        let expiresAt: string | null = null;
        if (index % 7 === 0) expiresAt = new Date(now + 20 * 3_600_000).toISOString();
        else if (index % 11 === 0) expiresAt = new Date(now - 3_600_000).toISOString();
        const tags = JSON.stringify([index % 2 === 0 ? 'even' : 'odd']);
        insertCredential.run({ ...credentialRow, id, name: `bench/cred-${String(index).padStart(6, '0')}`, expires_at: expiresAt, tags });
        insertVersion.run({ ...versionRow, id: crypto.randomUUID(), credential_id: id });
      }
    })();
  } finally {
    db.close();
  }
}
