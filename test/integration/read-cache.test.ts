import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { openDatabase, type Db } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { ReadCache } from '../../src/db/read-cache.js';

/** A loader that counts its calls and returns the token row's description, so a stale value would show. */
function countingLoader(db: Db, id: string) {
  const loader = {
    calls: 0,
    load: async () => {
      loader.calls += 1;
      const row = await db.kysely.selectFrom('aegis_tokens').select('description').where('id', '=', id).executeTakeFirst();
      return row?.description ?? undefined;
    },
  };
  return loader;
}

async function insertToken(db: Db, id: string, description: string): Promise<void> {
  await db.kysely
    .insertInto('aegis_tokens')
    .values({ id, actor: 'agent', description, scopes: '[]', name_patterns: '[]', tags: '[]', secret_hash: 'x', created_at: '2026-01-01T00:00:00.000Z', created_by: 'test' })
    .execute();
}

describe('read cache on SQLite', () => {
  let dir: string;
  let db: Db;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-read-cache-'));
    db = await openDatabase({ databaseUrl: undefined, databaseSchema: undefined, databasePoolMax: 1, sqlitePath: path.join(dir, 'aegis.db') });
    await migrateToLatest(db);
    await insertToken(db, 'tok1', 'first');
  });

  after(async () => {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves a second read without loading again while nothing changed', async () => {
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    assert.equal(await cache.read('tok1', loader.load), 'first');
    assert.equal(await cache.read('tok1', loader.load), 'first');
    assert.equal(loader.calls, 1);
  });

  it('loads again after a write through the same connection', async () => {
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    await cache.read('tok1', loader.load);
    await db.kysely.updateTable('aegis_tokens').set({ description: 'second' }).where('id', '=', 'tok1').execute();
    assert.equal(await cache.read('tok1', loader.load), 'second');
    assert.equal(loader.calls, 2);
  });

  it('keeps values across audit appends, which every request makes', async () => {
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    await cache.read('tok1', loader.load);
    await db.kysely.updateTable('aegis_audit_head').set({ seq: 0 }).where('id', '=', 1).execute();
    await cache.read('tok1', loader.load);
    assert.equal(loader.calls, 1);
  });

  it('loads again after another connection commits, as the CLI beside a server does', async () => {
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    await cache.read('tok1', loader.load);
    const other = new BetterSqlite3(path.join(dir, 'aegis.db'));
    try {
      other.prepare("update aegis_tokens set description = 'from the CLI' where id = 'tok1'").run();
    } finally {
      other.close();
    }
    assert.equal(await cache.read('tok1', loader.load), 'from the CLI');
    assert.equal(loader.calls, 2);
  });

  it('does not keep a value loaded while a write happened', async () => {
    const cache = new ReadCache<string>(db, 10);
    let calls = 0;
    const racing = async () => {
      calls += 1;
      const row = await db.kysely.selectFrom('aegis_tokens').select('description').where('id', '=', 'tok1').executeTakeFirstOrThrow();
      if (calls === 1) await db.kysely.updateTable('aegis_tokens').set({ description: 'raced' }).where('id', '=', 'tok1').execute();
      return row.description ?? undefined;
    };
    await cache.read('tok1', racing);
    assert.equal(await cache.read('tok1', racing), 'raced');
    assert.equal(calls, 2);
  });

  it('does not keep misses, and drops the oldest value when full', async () => {
    await insertToken(db, 'tok2', 'two');
    await insertToken(db, 'tok3', 'three');
    const cache = new ReadCache<string>(db, 2);
    const missing = countingLoader(db, 'nope');
    assert.equal(await cache.read('nope', missing.load), undefined);
    assert.equal(await cache.read('nope', missing.load), undefined);
    assert.equal(missing.calls, 2);
    assert.equal(cache.size, 0);

    const first = countingLoader(db, 'tok1');
    await cache.read('tok1', first.load);
    await cache.read('tok2', countingLoader(db, 'tok2').load);
    await cache.read('tok3', countingLoader(db, 'tok3').load);
    assert.equal(cache.size, 2);
    await cache.read('tok1', first.load);
    assert.equal(first.calls, 2, 'the oldest entry was dropped');
  });
});

describe('read cache without a change count', () => {
  it('loads on every read, as on PostgreSQL', async () => {
    const cache = new ReadCache<string>({ changeCount: undefined }, 10);
    let calls = 0;
    const load = async () => {
      calls += 1;
      return 'value';
    };
    await cache.read('key', load);
    await cache.read('key', load);
    assert.equal(calls, 2);
    assert.equal(cache.size, 0);
  });
});
