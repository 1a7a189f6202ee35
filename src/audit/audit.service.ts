import type { Transaction } from 'kysely';
import type { Db } from '../db/database.js';
import type { Database } from '../db/schema.js';
import type { Clock } from '../lib/clock.js';
import { appendEntries, queryEntries, type AuditQuery } from './audit.repository.js';
import type { AuditEntry, AuditEntryInput } from './audit.types.js';

/**
 * The audit log. Every access to AEGIS goes through here, and it fails closed: when an entry cannot be
 * written, the call that caused it fails too.
 */
export class AuditLog {
  readonly #db: Db;
  readonly #clock: Clock;

  constructor(deps: { db: Db; clock: Clock }) {
    this.#db = deps.db;
    this.#clock = deps.clock;
  }

  /** Appends entries in a transaction of their own. */
  async record(...inputs: AuditEntryInput[]): Promise<AuditEntry[]> {
    return this.#db.kysely.transaction().execute((trx) => this.recordIn(trx, ...inputs));
  }

  /** Appends entries inside the caller's transaction, so they commit or roll back with the change they describe. */
  async recordIn(trx: Transaction<Database>, ...inputs: AuditEntryInput[]): Promise<AuditEntry[]> {
    return appendEntries(trx, this.#db.dialect, inputs.map(sanitize), this.#clock.now().toISOString());
  }

  async query(query: AuditQuery): Promise<{ entries: AuditEntry[]; total: number }> {
    return queryEntries(this.#db.kysely, this.#db.dialect, query);
  }
}

/** PostgreSQL text and jsonb reject NUL characters, so they become U+FFFD before they reach the database. */
function sanitize(input: AuditEntryInput): AuditEntryInput {
  return JSON.parse(JSON.stringify(input).replace(/\\u0000/g, '\\ufffd')) as AuditEntryInput;
}
