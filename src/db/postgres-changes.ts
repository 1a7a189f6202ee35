import crypto from 'node:crypto';
import pg from 'pg';
import { mayChangeCachedRows } from './cached-rows.js';

/** The channel that migration 0010's triggers notify, with the table's schema as payload. */
export const changeChannel = 'aegis_changes';
const heartbeatMs = 1_000;
/** Time without a heartbeat coming back after which the listening connection counts as lost. */
const silentAfterMs = 5_000;
const reconnectMs = 1_000;
const transactionStart = /^\s*(?:begin|start\s+transaction)\b/i;
// `rollback to <savepoint>` ends no transaction.
const transactionEnd = /^\s*(?:commit|end|rollback)\b(?!\s+to\b)/i;

/** Log of PostgresChanges: losing and regaining its listening connection. */
export interface ChangeLog {
  warn(message: string): void;
  info(message: string): void;
}

/** Returns the application name of the listening connection for a schema's vault. */
export function listenerName(schema: string): string {
  return `aegis changes ${schema}`.slice(0, 63);
}

/** Transaction state of a pooled client, as its query wrapper tracks it. */
interface ClientState {
  inTransaction: boolean;
  wroteInTransaction: boolean;
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
 * A notification takes a moment to arrive. On one host it came 0.1 ms or less after the writer saw its
 * commit in 99 of 200 tries (an estimate, not a bound). A revocation made through another process
 * reaches this one's caches that much later. The heartbeat is a notification this process sends to
 * itself each second, so it checks the whole path: a connection pooler in transaction mode, which
 * drops LISTEN, shows as a silent listener. While the listening connection is down, or no heartbeat
 * came back for five seconds, `count` returns undefined and the caches load every read from the
 * database.
 */
export class PostgresChanges {
  readonly #config: pg.ClientConfig;
  readonly #log: ChangeLog;
  readonly #clients = new WeakMap<pg.PoolClient, ClientState>();
  /** Payload of this process's heartbeat notifications; other processes ignore it. */
  readonly #heartbeatPayload = `heartbeat ${crypto.randomUUID()}`;
  #schema = '';
  #count = 0;
  /** The current listening connection, from its creation on. `#listening` is true once its first heartbeat came back. */
  #listener: pg.Client | undefined;
  #listening = false;
  #heardAt = 0;
  #heartbeatSentAt: number | undefined;
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
    if (!this.#listening || performance.now() - this.#heardAt > silentAfterMs) return undefined;
    return this.#count;
  }

  /**
   * Resolves once the notices of every commit made before the call have arrived. A listening backend
   * sends its pending notices when it goes idle, so two round trips on its connection flush them.
   * Tests use it to wait for other processes' commits.
   */
  async caughtUp(): Promise<void> {
    const listener = this.#listening ? this.#listener : undefined;
    if (listener === undefined) return;
    await listener.query('select 1');
    await listener.query('select 1');
  }

  /** Wraps a pooled client's `query` so that its writes are counted. Call it once per new client. */
  watch(client: pg.PoolClient): void {
    const changes = this;
    const query = client.query as (...args: unknown[]) => unknown;
    const state: ClientState = { inTransaction: false, wroteInTransaction: false };
    this.#clients.set(client, state);
    const countAfter = (result: unknown) => {
      if (result instanceof Promise) return result.finally(changes.#bump);
      changes.#bump();
      return result;
    };
    client.query = function (this: pg.PoolClient, ...args: unknown[]) {
      const first = args[0] as string | { text?: string } | undefined;
      const text = typeof first === 'string' ? first : (first?.text ?? '');
      if (transactionStart.test(text)) {
        state.inTransaction = true;
        state.wroteInTransaction = false;
      } else if (transactionEnd.test(text)) {
        const wrote = state.wroteInTransaction;
        state.inTransaction = false;
        state.wroteInTransaction = false;
        if (wrote) return countAfter(query.apply(this, args));
      } else if (mayChangeCachedRows(text)) {
        changes.#bump();
        if (state.inTransaction) state.wroteInTransaction = true;
        else return countAfter(query.apply(this, args));
      }
      return query.apply(this, args);
    } as typeof client.query;
  }

  /**
   * Resets a client's transaction state when the pool hands it out. A client returned in the middle of
   * a transaction (Kysely does not do that) may have written, so that counts as a change.
   */
  checkedOut(client: pg.PoolClient): void {
    const state = this.#clients.get(client);
    if (state === undefined) return;
    if (state.wroteInTransaction) this.#bump();
    state.inTransaction = false;
    state.wroteInTransaction = false;
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
    this.#listener = listener;
    listener.on('error', () => this.#lost(listener, 'its connection failed'));
    listener.on('end', () => this.#lost(listener, 'its connection ended'));
    listener.on('notification', (notice) => this.#heard(listener, notice));

    try {
      await listener.connect();
      await listener.query(`listen ${changeChannel}`);
    } catch (error) {
      this.#lost(listener, `it could not connect or listen: ${(error as Error).message}`);
      return;
    }
    // Lost or closed meanwhile: that path has ended the connection already.
    if (this.#listener !== listener) return;

    // The caches come on with the first heartbeat that comes back, which proves notices arrive.
    this.#heartbeatSentAt = undefined;
    this.#heartbeat = setInterval(() => this.#beat(listener), heartbeatMs);
    this.#heartbeat.unref();
    this.#beat(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listening = false;
    clearInterval(this.#heartbeat);
    clearTimeout(this.#reconnect);
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.end().catch(() => {});
  }

  readonly #bump = (): void => {
    this.#count += 1;
  };

  #heard(listener: pg.Client, notice: pg.Notification): void {
    if (listener !== this.#listener || notice.channel !== changeChannel) return;
    if (notice.payload === this.#schema) this.#bump();
    else if (notice.payload === this.#heartbeatPayload) {
      this.#heardAt = performance.now();
      this.#heartbeatSentAt = undefined;
      if (this.#listening) return;
      // Whatever changed before this point went unheard: start from a new count.
      this.#bump();
      this.#listening = true;
      if (this.#warned) this.#log.info('listening for changes by other processes again; the read caches are back on');
      this.#warned = false;
    }
  }

  /** Sends the next heartbeat, or gives the connection up when the last one has not come back in time. */
  #beat(listener: pg.Client): void {
    const now = performance.now();
    if (this.#heartbeatSentAt !== undefined) {
      if (now - this.#heartbeatSentAt > silentAfterMs) this.#lost(listener, `no heartbeat came back within ${silentAfterMs / 1000} s`);
      return;
    }
    this.#heartbeatSentAt = now;
    listener.query('select pg_notify($1, $2)', [changeChannel, this.#heartbeatPayload]).catch(() => this.#lost(listener, 'its heartbeat failed'));
  }

  #lost(listener: pg.Client, reason: string): void {
    // Late events of a connection already given up are ignored.
    if (listener !== this.#listener) return;
    this.#listener = undefined;
    this.#listening = false;
    clearInterval(this.#heartbeat);
    listener.end().catch(() => {});
    if (this.#closed) return;
    if (!this.#warned) this.#log.warn(`stopped listening for changes by other processes (${reason}); the read caches are off until it listens again`);
    this.#warned = true;
    clearTimeout(this.#reconnect);
    this.#reconnect = setTimeout(() => void this.start(this.#schema), reconnectMs);
    this.#reconnect.unref();
  }
}
