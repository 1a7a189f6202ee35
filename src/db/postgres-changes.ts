import pg from 'pg';
import { mayChangeCachedRows } from './cached-rows.js';

/** The channel that migration 0010's triggers notify, with the table's schema as payload. */
export const changeChannel = 'aegis_changes';
const heartbeatMs = 1_000;
/** Time without a heartbeat reply after which the listening connection counts as lost. */
const silentAfterMs = 5_000;
const reconnectMs = 1_000;
const transactionStart = /^\s*(?:begin|start\s+transaction)\b/i;
const transactionEnd = /^\s*(?:commit|end|rollback)\b/i;

/** Log of PostgresChanges: losing and regaining its listening connection. */
export interface ChangeLog {
  warn(message: string): void;
  info(message: string): void;
}

/** Returns the application name of the listening connection for a schema's vault. */
export function listenerName(schema: string): string {
  return `aegis changes ${schema}`.slice(0, 63);
}

/**
 * The change count of a PostgreSQL vault (`Db.changeCount`), which lets the read caches work there too.
 *
 * It grows on two kinds of change. Writes through this process's pool are counted when they start and
 * again when they become visible: at once for a statement outside a transaction, at COMMIT inside one.
 * Commits by other processes arrive as notifications: a trigger on each cached table (migration 0010)
 * calls pg_notify after every statement, and PostgreSQL delivers it to every listener when the
 * transaction commits. A dedicated connection listens.
 *
 * A notification takes a moment to arrive: on one host, 0.1 ms or less after the writer saw its
 * commit in 99 of 200 tries (an estimate, not a bound), so a revocation made through another process
 * reaches this one's caches that much later. While the listening connection is down, or has sent no
 * heartbeat reply for five seconds, `count` returns undefined and the caches load every read from the
 * database.
 */
export class PostgresChanges {
  readonly #config: pg.ClientConfig;
  #schema = '';
  readonly #log: ChangeLog;
  #count = 0;
  #listener: pg.Client | undefined;
  #heardAt = 0;
  #heartbeat: NodeJS.Timeout | undefined;
  #reconnect: NodeJS.Timeout | undefined;
  #closed = false;
  #warned = false;

  constructor(config: pg.ClientConfig, log: ChangeLog) {
    this.#config = config;
    this.#log = log;
  }

  /** Returns the change count, or undefined while changes by other processes could go unseen. */
  count(): number | undefined {
    if (this.#listener === undefined || performance.now() - this.#heardAt > silentAfterMs) return undefined;
    return this.#count;
  }

  /**
   * Resolves once the notices of every commit made before the call have arrived. A listening backend
   * sends its pending notices when it goes idle, so two round trips on its connection flush them.
   * Tests use it to wait for other processes' commits.
   */
  async caughtUp(): Promise<void> {
    const listener = this.#listener;
    if (listener === undefined) return;
    await listener.query('select 1');
    await listener.query('select 1');
  }

  /** Wraps a pooled client's `query` so that its writes are counted. Call it once per new client. */
  watch(client: pg.PoolClient): void {
    const changes = this;
    const query = client.query;
    let inTransaction = false;
    let wroteInTransaction = false;
    const counted = (result: unknown, after: () => void) => {
      if (result instanceof Promise) return result.finally(after);
      after();
      return result;
    };
    client.query = function (this: pg.PoolClient, ...args: unknown[]) {
      const first = args[0] as string | { text?: string } | undefined;
      const text = typeof first === 'string' ? first : (first?.text ?? '');
      if (transactionStart.test(text)) {
        inTransaction = true;
        wroteInTransaction = false;
      } else if (transactionEnd.test(text)) {
        const wrote = wroteInTransaction;
        inTransaction = false;
        wroteInTransaction = false;
        if (wrote) return counted((query as (...a: unknown[]) => unknown).apply(this, args), changes.#bump);
      } else if (mayChangeCachedRows(text)) {
        changes.#bump();
        if (inTransaction) wroteInTransaction = true;
        else return counted((query as (...a: unknown[]) => unknown).apply(this, args), changes.#bump);
      }
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof client.query;
  }

  /**
   * Opens the listening connection for the tables in `schema`. On failure the caches stay off, and it
   * tries again every second.
   */
  async start(schema: string): Promise<void> {
    this.#schema = schema;
    if (this.#closed) return;
    // Named so that an operator can tell it apart in pg_stat_activity (and the tests can find it).
    const listener = new pg.Client({ ...this.#config, application_name: listenerName(schema) });
    listener.on('error', () => this.#lost(listener, 'its connection failed'));
    listener.on('end', () => this.#lost(listener, 'its connection ended'));
    listener.on('notification', (notice) => {
      if (notice.channel === changeChannel && notice.payload === this.#schema) this.#bump();
    });

    try {
      await listener.connect();
      await listener.query(`listen ${changeChannel}`);
    } catch (error) {
      this.#lost(listener, (error as Error).message);
      return;
    }
    if (this.#closed) {
      await listener.end().catch(() => {});
      return;
    }

    // Whatever changed before the LISTEN took effect went unheard: start from a new count.
    this.#bump();
    this.#listener = listener;
    this.#heardAt = performance.now();
    if (this.#warned) this.#log.info('listening for changes by other processes again; the read caches are back on');
    this.#warned = false;

    this.#heartbeat = setInterval(() => {
      listener.query('select 1').then(
        () => (this.#heardAt = performance.now()),
        () => this.#lost(listener, 'its heartbeat failed'),
      );
    }, heartbeatMs);
    this.#heartbeat.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    clearTimeout(this.#reconnect);
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.end().catch(() => {});
  }

  readonly #bump = (): void => {
    this.#count += 1;
  };

  #lost(listener: pg.Client, reason: string): void {
    if (this.#listener !== undefined && this.#listener !== listener) return;
    this.#listener = undefined;
    clearInterval(this.#heartbeat);
    listener.end().catch(() => {});
    if (this.#closed || this.#reconnect !== undefined) return;
    if (!this.#warned) this.#log.warn(`stopped listening for changes by other processes (${reason}); the read caches are off until it listens again`);
    this.#warned = true;
    this.#reconnect = setTimeout(() => {
      this.#reconnect = undefined;
      void this.start(this.#schema);
    }, reconnectMs);
    this.#reconnect.unref();
  }
}
