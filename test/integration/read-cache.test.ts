import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import pg from 'pg';
import { openDatabase, type Db, type Executor } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { AuditLog } from '../../src/audit/audit.service.js';
import { listenerName, PostgresChanges } from '../../src/db/postgres-changes.js';
import { ReadCache } from '../../src/db/read-cache.js';
import { touchToken } from '../../src/tokens/tokens.repository.js';
import { ManualClock } from '../../src/lib/clock.js';
import { dropSchema, testDialects, testPostgresUrl } from '../helpers/databases.js';
import { call, destroyTestVault, openTestVault, tokenWith, type TestVault } from '../helpers/test-vault.js';

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

/** Reads tok1 twice through a new cache and checks that only the first read loads. */
async function secondReadLoadsNothing(db: Db): Promise<void> {
  const cache = new ReadCache<string>(db, 10);
  const loader = countingLoader(db, 'tok1');
  assert.equal(await cache.read('tok1', loader.load), 'first');
  assert.equal(await cache.read('tok1', loader.load), 'first');
  assert.equal(loader.calls, 1);
}

/** Changes tok1's description, a change every cache of the token must notice. */
async function describeToken(executor: Executor, description: string): Promise<void> {
  await executor.updateTable('aegis_tokens').set({ description }).where('id', '=', 'tok1').execute();
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

  it('serves a second read unloaded', () => secondReadLoadsNothing(db));

  it('loads again after a write through the same connection', async () => {
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    await cache.read('tok1', loader.load);
    await describeToken(db.kysely, 'second');
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

  it('keeps values across last-use updates', async () => {
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    await cache.read('tok1', loader.load);
    await touchToken(db.kysely, 'tok1', '2026-06-01T12:00:00.000Z');
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
    // The change count is read once per turn of the event loop, so the commit shows from the next turn on.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(await cache.read('tok1', loader.load), 'from the CLI');
    assert.equal(loader.calls, 2);
  });

  /** Runs each statement on a second connection, as another process would, and waits for the next turn. */
  async function commitElsewhere(...statements: string[]): Promise<number[]> {
    const other = new BetterSqlite3(path.join(dir, 'aegis.db'));
    let changes: number[];
    try {
      changes = statements.map((statement) => other.prepare(statement).run().changes);
    } finally {
      other.close();
    }
    await new Promise((resolve) => setImmediate(resolve));
    return changes;
  }

  async function insertCredential(id: string, name: string): Promise<void> {
    await sql`insert into aegis_credentials (id, name, credential_type, provider, provider_config, status, created_at, updated_at, tags, metadata)
      values (${id}, ${name}, 'apiKey', 'api', '{}', 'active', '2026-06-01T00:00:00.000Z', '2026-06-01T00:00:00.000Z', '[]', '{}')`.execute(db.kysely);
    await new Promise((resolve) => setImmediate(resolve));
  }

  it('keeps values across outside audit appends and last-use updates', async () => {
    await insertCredential('cred-used', 'used');
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    await cache.read('tok1', loader.load);
    const changes = await commitElsewhere(
      'update aegis_audit_head set seq = seq where id = 1',
      "update aegis_tokens set last_used_at = '2026-06-02T00:00:00.000Z' where id = 'tok1'",
      "update aegis_credentials set last_used_at = '2026-06-02T00:00:00.000Z' where id = 'cred-used'",
    );
    assert.deepEqual(changes, [1, 1, 1]);
    await cache.read('tok1', loader.load);
    assert.equal(loader.calls, 1);
  });

  for (const [table, change] of [
    ['aegis_tokens', "update aegis_tokens set revoked_at = '2026-06-03T00:00:00.000Z' where id = 'tok-other'"],
    ['aegis_tokens', "delete from aegis_tokens where id = 'tok-other'"],
    ['aegis_credentials', "update aegis_credentials set description = 'changed elsewhere'"],
    ['aegis_credential_versions', "insert into aegis_credential_versions (id, credential_id, version, created_at, is_current, state) values ('ver-other', 'cred-other', 1, '2026-06-03T00:00:00.000Z', 0, 'committed')"],
    ['aegis_health_checks', "insert into aegis_health_checks (id, credential_id, checked_at, status, details) values ('check-other', 'cred-other', '2026-06-03T00:00:00.000Z', 'healthy', '{}')"],
  ] as const) {
    it(`loads again after outside ${change.split(' ')[0]} on ${table}`, async () => {
      await db.kysely.deleteFrom('aegis_tokens').where('id', '=', 'tok-other').execute();
      await insertToken(db, 'tok-other', 'other');
      await db.kysely.deleteFrom('aegis_health_checks').execute();
      await db.kysely.deleteFrom('aegis_credential_versions').execute();
      await db.kysely.deleteFrom('aegis_credentials').execute();
      await insertCredential('cred-other', 'other');
      const cache = new ReadCache<string>(db, 10);
      const loader = countingLoader(db, 'tok1');
      await cache.read('tok1', loader.load);
      assert.ok((await commitElsewhere(change))[0]! > 0, 'the statement changed no row');
      await cache.read('tok1', loader.load);
      assert.equal(loader.calls, 2);
    });
  }

  // A later migration that adds a column or rebuilds one of these tables must create its triggers again.
  it('counts changes to every cached column', async () => {
    const cachedTables = ['aegis_tokens', 'aegis_credentials', 'aegis_credential_versions', 'aegis_health_checks'];
    for (const table of cachedTables) {
      const triggers = await sql<{ name: string; sql: string }>`select name, sql from sqlite_master where type = 'trigger' and tbl_name = ${table}`.execute(db.kysely);
      const names = triggers.rows.map((row) => row.name).sort();
      assert.deepEqual(names, [`${table}_count_delete`, `${table}_count_insert`, `${table}_count_update`]);

      const update = triggers.rows.find((row) => row.name === `${table}_count_update`)!.sql;
      if (!/\bwhen\b/i.test(update)) continue;
      const columns = await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(db.kysely);
      for (const { name } of columns.rows) {
        if (name === 'last_used_at') continue;
        assert.ok(update.includes(`old."${name}" is not new."${name}"`), `${table}_count_update ignores ${name}`);
      }
    }
  });

  it('does not keep a value loaded while a write happened', async () => {
    const cache = new ReadCache<string>(db, 10);
    let calls = 0;
    const racing = async () => {
      calls += 1;
      const row = await db.kysely.selectFrom('aegis_tokens').select('description').where('id', '=', 'tok1').executeTakeFirstOrThrow();
      if (calls === 1) await describeToken(db.kysely, 'raced');
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

/** Polls `check` until it returns true or `timeoutMs` passes, for events that another connection causes. */
async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const onPostgres = (await testDialects()).includes('postgres');

describe('read cache on PostgreSQL', { skip: onPostgres ? false : 'PostgreSQL is not reachable' }, () => {
  const schema = `aegis_t_${crypto.randomBytes(6).toString('hex')}`;
  const settings = { databaseUrl: testPostgresUrl, databaseSchema: schema, databasePoolMax: 4, sqlitePath: '' };
  let db: Db;
  /** A second process's connection pool on the same vault. */
  let other: Db;

  before(async () => {
    db = await openDatabase(settings);
    await migrateToLatest(db);
    other = await openDatabase(settings);
    await insertToken(db, 'tok1', 'first');
    // The caches come on once the listener's first heartbeat notification has come back.
    await eventually(() => db.changeCount!() !== undefined, 5_000, 'listening');
  });

  after(async () => {
    await db?.close();
    await other?.close();
    await dropSchema(schema);
  });

  // Each write of this process also comes back as a notice a moment later, which empties the cache
  // once more. The tests wait for those notices before they count loads.
  beforeEach(() => db.changesHeard!());

  it('serves a second read unloaded', () => secondReadLoadsNothing(db));

  it('loads again at once after a write through this process', async () => {
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    await cache.read('tok1', loader.load);
    await describeToken(db.kysely, 'second');
    assert.equal(await cache.read('tok1', loader.load), 'second');
    await db.kysely.transaction().execute((trx) => describeToken(trx, 'third'));
    assert.equal(await cache.read('tok1', loader.load), 'third');
    assert.equal(loader.calls, 3);
  });

  it('drops values read during an open transaction', async () => {
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    await db.kysely.transaction().execute(async (trx) => {
      await describeToken(trx, 'committed later');
      // Another pooled connection still reads the value from before the commit.
      assert.notEqual(await cache.read('tok1', loader.load), 'committed later');
    });
    assert.equal(await cache.read('tok1', loader.load), 'committed later');
  });

  it('keeps values across audit appends', async () => {
    const audit = new AuditLog({ db, clock: new ManualClock('2026-06-01T12:00:00.000Z') });
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    await cache.read('tok1', loader.load);
    // The first group takes the locked path, the next ones the single statement.
    for (let round = 0; round < 3; round += 1) {
      await Promise.all([1, 2, 3].map(() => audit.record({ credentialName: 'tok1', action: 'read', actor: 'agent', success: true })));
    }
    await cache.read('tok1', loader.load);
    assert.equal(loader.calls, 1);
  });

  it("hears another process's commit and loads again", async () => {
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    await cache.read('tok1', loader.load);
    await describeToken(other.kysely, 'from another process');
    await db.changesHeard!();
    assert.equal(await cache.read('tok1', loader.load), 'from another process');
    assert.equal(loader.calls, 2);
  });

  it("ignores another process's last-use update", async () => {
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    await cache.read('tok1', loader.load);
    await touchToken(other.kysely, 'tok1', '2026-06-01T12:00:00.000Z');
    await touchToken(db.kysely, 'tok1', '2026-06-01T12:00:01.000Z');
    await db.changesHeard!();
    await cache.read('tok1', loader.load);
    assert.equal(loader.calls, 1);
  });

  it('caches nothing while not listening', async () => {
    const cache = new ReadCache<string>(db, 10);
    const loader = countingLoader(db, 'tok1');
    const cached = await cache.read('tok1', loader.load);
    await cache.read('tok1', loader.load);
    assert.equal(loader.calls, 1);

    const admin = new pg.Client({ connectionString: testPostgresUrl });
    await admin.connect();
    try {
      // Both processes' listeners go; only this one's matters here.
      const killed = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', [listenerName(schema)]);
      assert.equal(killed.rowCount, 2);
    } finally {
      await admin.end();
    }
    await eventually(() => db.changeCount!() === undefined, 5_000, 'noticing the lost connection');

    // No notice of this change reaches this process while it does not listen, so each read loads instead.
    await describeToken(other.kysely, 'changed unheard');
    assert.notEqual(cached, 'changed unheard');
    assert.equal(await cache.read('tok1', loader.load), 'changed unheard');
    assert.equal(await cache.read('tok1', loader.load), 'changed unheard');
    assert.equal(loader.calls, 3);

    // The value cached before the loss must not come back once it listens again.
    await eventually(() => db.changeCount!() !== undefined, 5_000, 'listening again');
    await db.changesHeard!();
    assert.equal(await cache.read('tok1', loader.load), 'changed unheard');
    assert.equal(loader.calls, 4);
    await cache.read('tok1', loader.load);
    assert.equal(loader.calls, 4);
  });
});

for (const dialect of await testDialects()) {
  describe(`last-use times with the read cache (${dialect})`, () => {
    let t: TestVault;

    before(async () => {
      t = await openTestVault(dialect);
    });

    after(async () => {
      await destroyTestVault(t);
    });

    /** Reads the token's last-use time from the database, not from a cache. */
    async function lastUsed(token: string): Promise<string | null> {
      const id = token.split('_')[1]!;
      const row = await t.vault.db.kysely.selectFrom('aegis_tokens').select('last_used_at').where('id', '=', id).executeTakeFirstOrThrow();
      return row.last_used_at === null ? null : new Date(row.last_used_at).toISOString();
    }

    it('writes a token last use once per interval', async () => {
      const token = await tokenWith(t, 'last-use-agent', ['credentials:read']);
      const first = t.clock.now().toISOString();
      await t.vault.tokens.authenticate(token, null);
      assert.equal(await lastUsed(token), first);
      // The cached record carries the time just written, so a call soon after writes nothing.
      t.clock.advanceMs(30_000);
      await t.vault.tokens.authenticate(token, null);
      assert.equal(await lastUsed(token), first);
      t.clock.advanceMs(31_000);
      await t.vault.tokens.authenticate(token, null);
      assert.equal(await lastUsed(token), t.clock.now().toISOString());
    });

    it('writes a credential last use once a second', async () => {
      const created = await call(t.app, 'POST', '/credentials', { token: t.adminToken, body: { name: 'last-use', credential_type: 'apiKey', provider: 'api', value: 'last-use-value' } });
      assert.equal(created.status, 201, created.body);
      const stored = async () => {
        const row = await t.vault.db.kysely.selectFrom('aegis_credentials').select('last_used_at').where('name', '=', 'last-use').executeTakeFirstOrThrow();
        return row.last_used_at === null ? null : new Date(row.last_used_at).toISOString();
      };
      const first = t.clock.now().toISOString();
      assert.equal((await call(t.app, 'GET', '/credentials/last-use', { token: t.adminToken })).status, 200);
      assert.equal(await stored(), first);
      t.clock.advanceMs(500);
      assert.equal((await call(t.app, 'GET', '/credentials/last-use', { token: t.adminToken })).status, 200);
      assert.equal(await stored(), first);
      t.clock.advanceMs(600);
      assert.equal((await call(t.app, 'GET', '/credentials/last-use', { token: t.adminToken })).status, 200);
      assert.equal(await stored(), t.clock.now().toISOString());
    });
  });
}

describe('change listener failures', () => {
  it('logs no connection secret', async () => {
    const password = 'listener-secret-password-4711';
    const warnings: string[] = [];
    const log = { warn: (message: string) => warnings.push(message), info: (message: string) => warnings.push(message) };
    // Nothing listens on port 1, so the connection is refused at once.
    const changes = new PostgresChanges({ connectionString: `postgres://aegis:${password}@127.0.0.1:1/aegis`, connectionTimeoutMillis: 2_000 }, log);
    try {
      await changes.start('public');
      assert.equal(changes.count(), undefined);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /stopped listening for changes by other processes \(it could not connect or listen: .+\)/);
      assert.ok(!warnings[0]!.includes(password), warnings[0]);
    } finally {
      await changes.close();
    }
  });
});

describe('read cache without a change count', () => {
  it('loads on every read, as in the read-only copies of aegis doctor', async () => {
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
