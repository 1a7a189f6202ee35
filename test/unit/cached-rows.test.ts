import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mayChangeCachedRows } from '../../src/db/cached-rows.js';

describe('mayChangeCachedRows', () => {
  it('counts cached-table writes and unknown statements', () => {
    for (const sql of [
      'update "aegis_tokens" set "revoked_at" = $1 where "id" = $2',
      'insert into "aegis_credentials" ("id") values (?)',
      'delete from "aegis_health_checks" where "checked_at" < ?',
      'with moved as (update aegis_audit_head set seq = 1) update aegis_credentials set status = 1',
      'truncate aegis_tokens',
      'create index x on aegis_tokens (actor)',
      'update "aegis_tokens" set "last_used_at" = ?, "revoked_at" = ? where "id" = ?',
      'update "aegis_credentials" set "last_used_at" = $1 where "name" = $2',
    ]) {
      assert.equal(mayChangeCachedRows(sql), true, sql);
    }
  });

  it('skips reads, control, last use, audit and apply intents', () => {
    for (const sql of [
      'select "id" from "aegis_tokens" where "id" = $1',
      '(select 1) union (select 2)',
      'begin',
      'BEGIN IMMEDIATE',
      'commit',
      'rollback',
      'savepoint kysely_1',
      'insert into "aegis_audit_log" ("id") values (?)',
      'update "aegis_audit_head" set "seq" = ? where "id" = ?',
      'with moved as (update aegis_audit_head set seq = 2 where id = 1 returning id) insert into aegis_audit_log (id) select 1 where exists (select 1 from moved)',
      'update "aegis_tokens" set "last_used_at" = ? where "id" = ?',
      'update "aegis_credentials" set "last_used_at" = $1 where "id" = $2',
      'insert into "aegis_apply_intents" ("audit_entry_id") values (?)',
      'delete from "aegis_apply_intents" where "audit_entry_id" = $1',
    ]) {
      assert.equal(mayChangeCachedRows(sql), false, sql);
    }
  });
});
