import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';
import { mayChangeCachedRows } from './cached-rows.js';

const statementCacheSize = 500;

interface PreparedStatement {
  statement: BetterSqlite3.Statement;
  /** Whether running it may change rows a cache holds: any write but transaction control and audit appends. */
  changesCachedRows: boolean;
}

/**
 * Sits between Kysely and better-sqlite3 and does four things Kysely's driver does not:
 * - binds booleans as 0/1, since better-sqlite3 rejects JavaScript booleans;
 * - starts transactions with BEGIN IMMEDIATE, so a transaction that reads and then writes takes the
 *   write lock up front and waits on busy_timeout instead of failing when another process (the CLI
 *   beside a running server) committed in between;
 * - keeps prepared statements in a small cache instead of preparing each query again;
 * - counts changes, for the read caches (see `changeCount`).
 */
export class SqliteAdapter implements SqliteDatabase {
  readonly #db: BetterSqlite3.Database;
  readonly #statements = new Map<string, PreparedStatement>();
  /** The statement that reads `aegis_change_count` (migration 0012), or undefined before that table exists. */
  #changeCountRead: BetterSqlite3.Statement | undefined;
  readonly #dataVersionRead: BetterSqlite3.Statement;
  /** The last reading, marked with its source. */
  #lastReading: string;
  #changes = 0;
  #readThisTurn = false;

  constructor(db: BetterSqlite3.Database) {
    this.#db = db;
    this.#dataVersionRead = db.prepare('pragma data_version').pluck();
    this.#lastReading = this.#readOthersChanges();
  }

  close(): void {
    this.#statements.clear();
    this.#db.close();
  }

  /**
   * Returns a number that grows whenever rows the read caches load from may have changed: on each write
   * through this connection, and when another connection (the CLI, a second process) committed a
   * change to those tables. A value read while the count stayed the same is what the database held when
   * this turn of the event loop first read the count, with every write of this connection since.
   */
  changeCount(): number {
    // Each reading opens and closes a read transaction, 6 to 9 us with its file locks, and each agent
    // read made two. It is read once per turn of the event loop instead, so another connection's commit
    // shows from the next turn: at most one turn later than if it were read on every lookup.
    if (!this.#readThisTurn) {
      this.#readThisTurn = true;
      setImmediate(this.#nextTurn);
      const reading = this.#readOthersChanges();
      if (reading !== this.#lastReading) {
        this.#lastReading = reading;
        this.#changes += 1;
      }
    }
    return this.#changes;
  }

  readonly #nextTurn = (): void => {
    this.#readThisTurn = false;
  };

  /**
   * Reads the change count that triggers keep for the cached tables (migration 0012), which the audit
   * writer thread's commits leave alone. Before that migration ran, it reads data_version, which every
   * other connection's commit moves.
   */
  #readOthersChanges(): string {
    if (this.#changeCountRead === undefined) {
      try {
        this.#changeCountRead = this.#db.prepare('select count from aegis_change_count where id = 1').pluck();
      } catch {
        return `data version ${this.#dataVersionRead.get() as number}`;
      }
    }
    return `change count ${this.#changeCountRead.get() as number}`;
  }

  prepare(sql: string): SqliteStatement {
    const { statement, changesCachedRows } = this.#prepared(sql === 'begin' ? 'begin immediate' : sql);
    return {
      reader: statement.reader,
      // Counted before running: a statement that fails part-way may still have changed rows.
      all: (parameters) => {
        if (changesCachedRows) this.#changes += 1;
        return statement.all(...bindable(parameters));
      },
      run: (parameters) => {
        if (changesCachedRows) this.#changes += 1;
        return statement.run(...bindable(parameters));
      },
      iterate: (parameters) => statement.iterate(...bindable(parameters)),
    };
  }

  #prepared(sql: string): PreparedStatement {
    let prepared = this.#statements.get(sql);
    if (prepared === undefined) {
      const statement = this.#db.prepare(sql);
      // `readonly` is false for every statement that may write, including INSERT ... RETURNING and DDL.
      // On this single connection a write is visible to the next read at once, commit or not.
      const changesCachedRows = !statement.readonly && mayChangeCachedRows(sql);
      prepared = { statement, changesCachedRows };
      if (this.#statements.size >= statementCacheSize) {
        const oldest = this.#statements.keys().next().value;
        if (oldest !== undefined) this.#statements.delete(oldest);
      }
      this.#statements.set(sql, prepared);
    }
    return prepared;
  }
}

function bindable(parameters: ReadonlyArray<unknown>): unknown[] {
  return parameters.map((parameter) => (typeof parameter === 'boolean' ? (parameter ? 1 : 0) : parameter));
}
