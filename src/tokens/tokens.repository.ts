import type { Executor } from '../db/database.js';
import { fromJson, toIso, toJson } from '../db/values.js';
import type { Scope } from './scopes.js';

export interface TokenRecord {
  id: string;
  actor: string;
  description: string | null;
  scopes: Scope[];
  namePatterns: string[];
  tags: string[];
  secretHash: string;
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export async function insertToken(db: Executor, token: TokenRecord): Promise<void> {
  await db
    .insertInto('aegis_tokens')
    .values({
      id: token.id,
      actor: token.actor,
      description: token.description,
      scopes: toJson(token.scopes),
      name_patterns: toJson(token.namePatterns),
      tags: toJson(token.tags),
      secret_hash: token.secretHash,
      created_at: token.createdAt,
      created_by: token.createdBy,
      expires_at: token.expiresAt,
    })
    .execute();
}

export async function findToken(db: Executor, id: string): Promise<TokenRecord | undefined> {
  const row = await db.selectFrom('aegis_tokens').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? fromRow(row) : undefined;
}

/** Lists tokens, oldest first, and only one page of them when `page` is given. */
export async function listTokens(db: Executor, page?: { limit: number; offset: number }): Promise<TokenRecord[]> {
  let query = db.selectFrom('aegis_tokens').selectAll().orderBy('created_at').orderBy('id');
  if (page !== undefined) query = query.limit(page.limit).offset(page.offset);
  const rows = await query.execute();
  return rows.map(fromRow);
}

export async function countTokens(db: Executor): Promise<number> {
  const row = await db.selectFrom('aegis_tokens').select((eb) => eb.fn.countAll<string | number>().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function markRevoked(db: Executor, id: string, at: string): Promise<boolean> {
  const result = await db.updateTable('aegis_tokens').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function touchToken(db: Executor, id: string, at: string): Promise<void> {
  await db.updateTable('aegis_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
}

function fromRow(row: Awaited<ReturnType<typeof selectAll>>[number]): TokenRecord {
  return {
    id: row.id,
    actor: row.actor,
    description: row.description,
    scopes: fromJson<Scope[]>(row.scopes),
    namePatterns: fromJson<string[]>(row.name_patterns),
    tags: fromJson<string[]>(row.tags),
    secretHash: row.secret_hash,
    createdAt: toIso(row.created_at),
    createdBy: row.created_by,
    expiresAt: toIso(row.expires_at),
    lastUsedAt: toIso(row.last_used_at),
    revokedAt: toIso(row.revoked_at),
  };
}

function selectAll(db: Executor) {
  return db.selectFrom('aegis_tokens').selectAll().execute();
}
