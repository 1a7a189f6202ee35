import { sql } from 'kysely';
import type { AuditLog } from '../audit/audit.service.js';
import { AuditAction } from '../audit/audit.types.js';
import type { Db } from '../db/database.js';
import { ReadCache } from '../db/read-cache.js';
import type { Clock } from '../lib/clock.js';
import { NotFoundError, UnauthorizedError, ValidationError } from '../lib/errors.js';
import { TAG_PATTERN } from '../lib/names.js';
import type { Caller } from './caller.js';
import { isScope, SCOPES, type Scope } from './scopes.js';
import { hashSecret, newToken, parseToken, secretMatches } from './token-format.js';
import { countTokens, findToken, insertToken, listTokens, markRevoked, touchToken, type TokenRecord } from './tokens.repository.js';

/** The PostgreSQL advisory lock key that orders first starts creating the initial admin token (an arbitrary constant). */
const initialAdminLockKey = 0x4145_4749;

export interface CreateTokenInput {
  actor: string;
  scopes: string[];
  namePatterns?: string[];
  tags?: string[];
  description?: string | null;
  expiresAt?: string | null;
}

/** The public view of a token: everything but the secret and its hash. */
export type TokenView = Omit<TokenRecord, 'secretHash'>;

/** A token id: the 12 hex characters between `aegis_` and the secret. */
const tokenIdPattern = /^[0-9a-f]{12}$/;
const actorPattern = /^[A-Za-z0-9._:@/-]{1,64}$/;
/** Actors that AEGIS writes itself (failed logins, its own jobs), so that no token can pass for them; `cli:` actors too. */
const reservedActors = new Set(['anonymous', 'system', 'scheduler']);
// No `..`: credential names cannot contain it, so such a pattern would match nothing.
const namePatternRegex = /^(?!.*\.\.)[A-Za-z0-9._/*-]{1,128}$/;
const tagRegex = new RegExp(TAG_PATTERN);
/** How stale `last_used_at` may get before an authentication writes it again; saves a write per request. */
const touchIntervalMs = 60_000;
/** Tokens kept by the read cache; far more than a vault's agents and people use. */
const cachedTokens = 1_000;

/** Creates, lists, revokes and checks API tokens. Tokens are stored as a hash of their secret only. */
export class TokenService {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #audit: AuditLog;
  readonly #records: ReadCache<TokenRecord>;

  constructor(deps: { db: Db; clock: Clock; audit: AuditLog }) {
    this.#db = deps.db;
    this.#clock = deps.clock;
    this.#audit = deps.audit;
    this.#records = new ReadCache(deps.db, cachedTokens);
  }

  /** Creates a token and returns its plaintext, which is shown once and never stored. */
  async create(caller: Caller, input: CreateTokenInput): Promise<{ token: string; view: TokenView }> {
    const created = await this.#create(caller, input, false);
    return created!;
  }

  /** Creates a token; with `onlyFirst`, only when the vault has none yet, and returns null otherwise. */
  async #create(caller: Caller, input: CreateTokenInput, onlyFirst: boolean): Promise<{ token: string; view: TokenView } | null> {
    const scopes = validateScopes(input.scopes);
    if (!actorPattern.test(input.actor)) {
      throw new ValidationError('actor', 'must be 1 to 64 letters, digits or . _ : @ / -');
    }
    if (reservedActors.has(input.actor.toLowerCase()) || input.actor.toLowerCase().startsWith('cli:')) {
      throw new ValidationError('actor', `"${input.actor}" names AEGIS's own work in the audit log (${[...reservedActors].join(', ')} and cli:<user>); choose another actor name`);
    }
    for (const pattern of input.namePatterns ?? []) {
      if (!namePatternRegex.test(pattern)) throw new ValidationError('name_patterns', `"${pattern}" must be 1 to 128 name characters or *, without .. (no credential name contains it)`);
    }
    for (const tag of input.tags ?? []) {
      if (!tagRegex.test(tag)) throw new ValidationError('tags', `"${tag}" must be 1 to 64 letters, digits or . _ : / -`);
    }
    const expiresAt = input.expiresAt ? validateInstant('expires_at', input.expiresAt) : null;
    if (expiresAt !== null && new Date(expiresAt) <= this.#clock.now()) {
      throw new ValidationError('expires_at', `must be in the future, got ${expiresAt}. An expired token cannot authenticate.`);
    }
    const { id, secret, token } = newToken();
    const record: TokenRecord = {
      id,
      actor: input.actor,
      description: input.description ?? null,
      scopes,
      namePatterns: input.namePatterns ?? [],
      tags: input.tags ?? [],
      secretHash: hashSecret(secret),
      createdAt: this.#clock.now().toISOString(),
      createdBy: caller.actor,
      expiresAt,
      lastUsedAt: null,
      revokedAt: null,
    };
    const inserted = await this.#db.kysely.transaction().execute(async (trx) => {
      if (onlyFirst) {
        // Servers starting together on a new vault each found no token and each printed an admin
        // token. On PostgreSQL a transaction-scoped advisory lock orders them (SQLite's BEGIN
        // IMMEDIATE does already), so the count below includes the first one's token.
        if (this.#db.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${initialAdminLockKey})`.execute(trx);
        if ((await countTokens(trx)) > 0) return false;
      }
      await insertToken(trx, record);
      await this.#audit.recordIn(trx, {
        credentialName: '*',
        action: AuditAction.tokenCreated,
        actor: caller.actor,
        target: `token:${id}`,
        details: { token_id: id, token_actor: record.actor, scopes, name_patterns: record.namePatterns, tags: record.tags },
        ipAddress: caller.ipAddress,
        success: true,
      });
      return true;
    });
    return inserted ? { token, view: toView(record) } : null;
  }

  /** Creates the first admin token when the vault has none; returns its plaintext, or null. */
  async createInitialAdmin(): Promise<string | null> {
    if ((await countTokens(this.#db.kysely)) > 0) return null;
    const system: Caller = { actor: 'system', tokenId: null, scopes: ['admin'], namePatterns: [], tags: [], ipAddress: null };
    const created = await this.#create(system, { actor: 'admin', scopes: ['admin'], description: 'created at first start' }, true);
    return created?.token ?? null;
  }

  /** Lists tokens, revoked and expired ones included, oldest first: one page when `page` is given, else all. */
  async list(caller: Caller, page?: { limit: number; offset: number }): Promise<{ tokens: TokenView[]; total: number }> {
    const tokens = await listTokens(this.#db.kysely, page);
    const total = page === undefined ? tokens.length : await countTokens(this.#db.kysely);
    await this.#audit.record({
      credentialName: '*',
      action: AuditAction.tokensListed,
      actor: caller.actor,
      ipAddress: caller.ipAddress,
      success: true,
      details: { count: tokens.length, total },
    });
    return { tokens: tokens.map(toView), total };
  }

  async revoke(caller: Caller, id: string): Promise<TokenView> {
    // The message never repeats `id`: a caller may have passed a whole token, secret included.
    if (!tokenIdPattern.test(id)) {
      const hint = parseToken(id) ? 'This is a whole token: pass only its id, the 12 characters after aegis_.' : 'Token ids are 12 hex characters; list them with `aegis tokens list`.';
      throw new ValidationError('id', `must be a token id, not a token or other text. ${hint}`);
    }
    return this.#db.kysely.transaction().execute(async (trx) => {
      const token = await findToken(trx, id);
      if (!token) throw new NotFoundError(`Token ${id} not found. List tokens with \`aegis tokens list\`.`, 'token_not_found');
      const revokedAt = this.#clock.now().toISOString();
      await markRevoked(trx, id, revokedAt);
      await this.#audit.recordIn(trx, {
        credentialName: '*',
        action: AuditAction.tokenRevoked,
        actor: caller.actor,
        target: `token:${id}`,
        details: { token_id: id, token_actor: token.actor },
        ipAddress: caller.ipAddress,
        success: true,
      });
      return toView({ ...token, revokedAt: token.revokedAt ?? revokedAt });
    });
  }

  /**
   * Checks a bearer token and returns the caller it stands for. Every failure gives the same message,
   * so a client cannot tell a wrong secret from an unknown, revoked or expired token.
   */
  async authenticate(presented: string, ipAddress: string | null): Promise<Caller> {
    const parsed = parseToken(presented);
    // The cached record is dropped on any write, a revocation by another process included, and the
    // secret, expiry and revocation are checked on every call.
    const record = parsed ? await this.#records.read(parsed.id, () => findToken(this.#db.kysely, parsed.id)) : undefined;
    const now = this.#clock.now();
    const valid =
      parsed !== null &&
      record !== undefined &&
      secretMatches(parsed.secret, record.secretHash) &&
      record.revokedAt === null &&
      (record.expiresAt === null || new Date(record.expiresAt) > now);
    if (!valid || !record) throw new UnauthorizedError('Invalid or expired token. Send a valid token as "Authorization: Bearer <token>".');
    if (!record.lastUsedAt || now.getTime() - new Date(record.lastUsedAt).getTime() > touchIntervalMs) {
      await touchToken(this.#db.kysely, record.id, now.toISOString());
      this.#records.replace(record.id, record, { ...record, lastUsedAt: now.toISOString() });
    }
    return {
      actor: record.actor,
      tokenId: record.id,
      scopes: record.scopes,
      namePatterns: record.namePatterns,
      tags: record.tags,
      ipAddress,
    };
  }
}

function toView(record: TokenRecord): TokenView {
  const { secretHash: _secretHash, ...view } = record;
  return view;
}

function validateScopes(scopes: string[]): Scope[] {
  if (scopes.length === 0) throw new ValidationError('scopes', 'must name at least one scope');
  for (const scope of scopes) {
    if (!isScope(scope)) throw new ValidationError('scopes', `unknown scope "${scope}"; use ${SCOPES.join(', ')}`);
  }
  return [...new Set(scopes)] as Scope[];
}

function validateInstant(field: string, value: string): string {
  const instant = new Date(value);
  if (Number.isNaN(instant.getTime())) throw new ValidationError(field, 'must be an ISO-8601 date-time');
  return instant.toISOString();
}
