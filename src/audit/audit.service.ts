import type { Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Db } from '../db/database.js';
import { isSqliteLockTimeout } from '../db/database-errors.js';
import type { Database } from '../db/schema.js';
import type { Clock } from '../lib/clock.js';
import { uuid7 } from '../lib/uuid7.js';
import { appendAfterHead, appendEntries, queryEntries, readEntriesById, type AuditQuery } from './audit.repository.js';
import { AuditWriter, WriterStoppedError } from './audit-writer.js';
import { chainEntries, type ChainHead } from './chain.js';
import type { AuditEntry, AuditEntryInput, StoredAuditEntry } from './audit.types.js';

/** Maximum entries per group commit; 1,000 rows fit one INSERT on both databases. */
const maxGroupEntries = 1_000;

/** How long the SQLite writer thread waits for another group before it stops. */
const defaultWriterIdleMs = 30_000;

/** A group that may or may not be stored, so that appending it again could record its calls twice. */
class AuditOutcomeUnknownError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'AuditOutcomeUnknownError';
  }
}

/** One `record` call waiting for its group commit. */
interface PendingRecord {
  /** The call's inputs as a JSON array (see `inputsJson`). */
  json: string;
  count: number;
  timestamp: string;
  /** The entry ids the call chose (`AuditEntryInput.entryId`), one per input, or undefined when it chose none. */
  entryIds: Array<string | undefined> | undefined;
  resolve: (entries: AuditEntry[]) => void;
  reject: (error: unknown) => void;
}

/**
 * The audit log. Every access to AEGIS goes through here, and it fails closed: when an entry cannot be
 * written, the call that caused it fails too.
 *
 * `record` commits in groups: calls that arrive while a commit is under way wait for the next one, and
 * that commit writes all their entries in one transaction. Each call still resolves only after its
 * entries are committed, so no response is sent before its audit entry is stored.
 */
export class AuditLog {
  readonly #db: Db;
  readonly #clock: Clock;
  #queue: PendingRecord[] = [];
  #committing: Promise<void> | undefined;
  /** Groups sent to the writer thread whose reply has not come yet. */
  readonly #inFlight = new Set<Promise<void>>();
  /**
   * On PostgreSQL, the chain head as this process's last group left it, or undefined when unknown (at
   * start, after a failure). While it is known, a group goes out as one statement that appends only if
   * the head is still there (`appendAfterHead`). When another writer moved it meanwhile, or it is
   * unknown, the group takes the locked path. SQLite always takes the locked path, because its
   * statements are local calls, not round trips.
   */
  #head: ChainHead | undefined;
  /** On SQLite, the thread that appends groups while calls arrive together (AuditWriter), if running. */
  #writer: AuditWriter | undefined;
  readonly #writerIdleMs: number;
  #writerGroups = 0;
  /** Set when a writer thread failed; this log then appends on its own connection only. */
  #writerFailed = false;

  readonly #log: Pick<Logger, 'warn'> | undefined;

  constructor(deps: { db: Db; clock: Clock; log?: Pick<Logger, 'warn'>; writerIdleMs?: number }) {
    this.#db = deps.db;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#writerIdleMs = deps.writerIdleMs ?? defaultWriterIdleMs;
  }

  /** Appends entries in a transaction of their own, shared with the calls that arrive at the same time. */
  record(...inputs: AuditEntryInput[]): Promise<AuditEntry[]> {
    const timestamp = this.#clock.now().toISOString();
    const entryIds = inputs.some((input) => input.entryId !== undefined) ? inputs.map((input) => input.entryId) : undefined;
    return new Promise((resolve, reject) => {
      this.#queue.push({ json: inputsJson(inputs), count: inputs.length, timestamp, entryIds, resolve, reject });
      // setImmediate lets the requests already read from their sockets queue their entries first.
      this.#committing ??= new Promise<void>((done) => setImmediate(done)).then(() => this.#commitQueued());
    });
  }

  /** Appends entries inside the caller's transaction, so they commit or roll back with the change they describe. */
  async recordIn(trx: Transaction<Database>, ...inputs: AuditEntryInput[]): Promise<AuditEntry[]> {
    return appendEntries(trx, this.#db.dialect, JSON.parse(inputsJson(inputs)) as AuditEntryInput[], this.#clock.now().toISOString());
  }

  async query(query: AuditQuery): Promise<{ entries: StoredAuditEntry[]; total: number }> {
    return queryEntries(this.#db.kysely, this.#db.dialect, query);
  }

  /** Resolves once every entry recorded so far is committed or has failed. */
  async settled(): Promise<void> {
    while (this.#committing || this.#inFlight.size > 0) await Promise.all([this.#committing, ...this.#inFlight]);
  }

  /** Whether the SQLite writer thread is running, and whether it has opened its connection; for tests. */
  get writerState(): 'stopped' | 'starting' | 'ready' {
    if (this.#writer === undefined) return 'stopped';
    return this.#writer.ready ? 'ready' : 'starting';
  }

  /** Groups committed by the SQLite writer thread since this log was created; for tests. */
  get writerGroups(): number {
    return this.#writerGroups;
  }

  /** Waits for the entries recorded so far, then stops the writer thread; call before closing the database. */
  async close(): Promise<void> {
    await this.settled();
    await this.#writer?.close();
  }

  async #commitQueued(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const group = this.#takeGroup();
        const committed = this.#commitGroup(group);
        // The writer thread commits groups in the order it receives them, so the next group can go out
        // before this one's reply comes back. The locked path on this connection waits for each.
        if (this.#writer?.ready) this.#track(committed);
        else await committed;
      }
    } finally {
      this.#committing = undefined;
    }
  }

  /** Commits a group and settles its calls; never rejects. */
  async #commitGroup(group: ReadonlyArray<PendingRecord>): Promise<void> {
    try {
      const entries = await this.#append(group);
      let start = 0;
      for (const pending of group) {
        pending.resolve(entries.slice(start, start + pending.count));
        start += pending.count;
      }
    } catch (error) {
      // One call's entries must not fail the others': after a failed group, each call commits alone.
      // Not after a lock timeout, which each call would wait for again, nor when the group may be stored.
      if (group.length === 1 || isSqliteLockTimeout(error) || error instanceof AuditOutcomeUnknownError) for (const pending of group) pending.reject(error);
      else for (const pending of group) await this.#append([pending]).then(pending.resolve, pending.reject);
    }
  }

  #track(committed: Promise<void>): void {
    this.#inFlight.add(committed);
    void committed.finally(() => this.#inFlight.delete(committed));
  }

  #takeGroup(): PendingRecord[] {
    let entryCount = 0;
    let callCount = 0;
    while (callCount < this.#queue.length && (callCount === 0 || entryCount + this.#queue[callCount]!.count <= maxGroupEntries)) {
      entryCount += this.#queue[callCount]!.count;
      callCount += 1;
    }
    return this.#queue.splice(0, callCount);
  }

  async #append(group: ReadonlyArray<PendingRecord>): Promise<AuditEntry[]> {
    const timestamps = group.flatMap((pending) => Array<string>(pending.count).fill(pending.timestamp));
    const writer = this.#writer;
    if (this.#db.dialect === 'sqlite' && writer?.ready) {
      const entryIds: string[] = [];
      for (const pending of group) {
        for (let index = 0; index < pending.count; index += 1) entryIds.push(pending.entryIds?.[index] ?? uuid7());
      }
      try {
        // The thread parses the inputs itself, which keeps that work off the event loop too.
        const entries = await writer.append(
          group.map((pending) => pending.json),
          timestamps,
          entryIds,
        );
        this.#writerGroups += 1;
        return entries;
      } catch (error) {
        if (!(error instanceof WriterStoppedError)) throw error;
        // The thread may have committed the group before it ended: its entries are then stored under
        // the ids chosen here, and appending them again would record each call twice.
        await writer.exited;
        let stored: AuditEntry[];
        try {
          stored = await readEntriesById(this.#db.kysely, entryIds);
        } catch (lookupError) {
          throw new AuditOutcomeUnknownError('the audit writer thread ended, and reading back its last group failed', lookupError);
        }
        if (stored.length === entryIds.length) return stored;
        if (stored.length > 0) throw new AuditOutcomeUnknownError(`the audit writer thread ended having stored ${stored.length} of ${entryIds.length} entries of a group`);
      }
    }
    const inputs = group.flatMap((pending) => JSON.parse(pending.json) as AuditEntryInput[]);
    const expected = this.#head;
    this.#head = undefined;
    if (expected !== undefined) {
      const entries = chainEntries(expected, inputs, timestamps);
      if (await appendAfterHead(this.#db.kysely, expected, entries)) return this.#keepHead(entries);
    }
    if (this.#db.dialect === 'sqlite' && group.length > 1) this.#startWriter();
    const entries = await this.#db.kysely.transaction().execute((trx) => appendEntries(trx, this.#db.dialect, inputs, timestamps));
    return this.#db.dialect === 'postgres' ? this.#keepHead(entries) : entries;
  }

  /**
   * Starts the writer thread when a group has several calls, which means calls arrive faster than one
   * commit takes. Groups keep going through this connection until the thread is ready, and for good
   * once a thread failed (it could not open the file, or it ended before `close` or the idle stop).
   */
  #startWriter(): void {
    if (this.#writer !== undefined || this.#writerFailed || this.#db.location === ':memory:') return;
    const writer = new AuditWriter(this.#db.location, {
      idleMs: this.#writerIdleMs,
      onStop: (error) => {
        if (this.#writer === writer) this.#writer = undefined;
        if (error === undefined) return;
        this.#writerFailed = true;
        this.#log?.warn({ err: { type: error.name, message: error.message }, file: this.#db.location }, 'the audit writer thread failed; audit entries go through the main connection from now on');
      },
    });
    this.#writer = writer;
  }

  #keepHead(entries: AuditEntry[]): AuditEntry[] {
    const last = entries[entries.length - 1];
    if (last !== undefined) this.#head = { seq: last.seq, entryHash: last.entryHash };
    return entries;
  }
}

/**
 * Writes a call's inputs as a JSON array. The text is what the database stores and what the chain hash
 * covers (Dates and other objects in their JSON form), and it keeps a caller's later changes out of the
 * queued entry. NUL characters and unpaired surrogates become U+FFFD here: PostgreSQL text and jsonb
 * reject both, and SQLite would store a surrogate as bytes that read back as other characters, so the
 * stored entry would no longer match its hash.
 */
function inputsJson(inputs: ReadonlyArray<AuditEntryInput>): string {
  // JSON.stringify escapes NUL as `\u0000` and an unpaired surrogate as `\udXXX`, and writes a paired
  // one as is. An escape counts after an even number of backslashes. After an odd number, the text is
  // a literal backslash followed by "u0000", which stays.
  return JSON.stringify(inputs).replace(/(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/g, '$1\\ufffd');
}
