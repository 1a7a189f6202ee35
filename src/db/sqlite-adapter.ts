import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

const statementCacheSize = 500;

/**
 * Sits between Kysely and better-sqlite3 and does three things Kysely's driver does not:
 * - binds booleans as 0/1, since better-sqlite3 rejects JavaScript booleans;
 * - starts transactions with BEGIN IMMEDIATE, so a transaction that reads and then writes takes the
 *   write lock up front and waits on busy_timeout instead of failing when another process (the CLI
 *   beside a running server) committed in between;
 * - keeps prepared statements in a small cache instead of preparing each query again.
 */
export class SqliteAdapter implements SqliteDatabase {
  readonly #db: BetterSqlite3.Database;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();

  constructor(db: BetterSqlite3.Database) {
    this.#db = db;
  }

  close(): void {
    this.#statements.clear();
    this.#db.close();
  }

  prepare(sql: string): SqliteStatement {
    const statement = this.#statement(sql === 'begin' ? 'begin immediate' : sql);
    return {
      reader: statement.reader,
      all: (parameters) => statement.all(...bindable(parameters)),
      run: (parameters) => statement.run(...bindable(parameters)),
      iterate: (parameters) => statement.iterate(...bindable(parameters)),
    };
  }

  #statement(sql: string): BetterSqlite3.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      if (this.#statements.size >= statementCacheSize) {
        const oldest = this.#statements.keys().next().value;
        if (oldest !== undefined) this.#statements.delete(oldest);
      }
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

function bindable(parameters: ReadonlyArray<unknown>): unknown[] {
  return parameters.map((parameter) => (typeof parameter === 'boolean' ? (parameter ? 1 : 0) : parameter));
}
