import { Worker } from 'node:worker_threads';
import type { AuditEntry } from './audit.types.js';
import type { AppendMessage, WriterReply } from './writer-thread.js';

interface Waiting {
  resolve: (entries: AuditEntry[]) => void;
  reject: (error: unknown) => void;
}

/**
 * The rejection of the groups in flight when the thread ends without replying to them. Such a group
 * may or may not be committed: the thread may have ended between its commit and its reply.
 */
export class WriterStoppedError extends Error {
  constructor(cause: Error) {
    super(`the audit writer thread stopped: ${cause.message}`, { cause });
    this.name = 'WriterStoppedError';
  }
}

/** The thread's file beside this one: TypeScript when the sources run through tsx, JavaScript when built. */
const threadFile = new URL(import.meta.url.endsWith('.ts') ? './writer-thread.ts' : './writer-thread.js', import.meta.url);

/**
 * Appends audit groups to a SQLite file on a worker thread (writer-thread.ts), with a connection of its
 * own. Under load the audit append took about half of the event loop's time per read (BENCHMARKS.md,
 * B1). On the thread it runs beside the event loop, on the machine's other core.
 *
 * The thread costs about 10 MB of memory and 50 ms to start, so AuditLog starts it only once groups
 * have several calls, and it stops after `idleMs` without a group. A caller still waits for its
 * group's commit, so no response goes out before its audit entry is stored.
 */
export class AuditWriter {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, Waiting>();
  readonly #idleMs: number;
  readonly #onStop: (error: Error | undefined) => void;
  #nextId = 1;
  #ready = false;
  /** Set once 'close' is posted: the thread takes no group after it. */
  #closing = false;
  #stopped = false;
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #exited: Promise<void>;

  /**
   * Starts the thread. `onStop` runs once when the thread has stopped: without an error after `close`
   * or the idle stop, with one when it could not open its connection or ended some other way.
   */
  constructor(file: string, options: { idleMs: number; onStop: (error: Error | undefined) => void }) {
    this.#idleMs = options.idleMs;
    this.#onStop = options.onStop;
    this.#worker = threadFile.pathname.endsWith('.ts')
      ? // Running from the TypeScript sources (tests, development): Node 20 gives a thread none of the
        // process's module hooks, so the thread registers tsx's before it loads its file.
        new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(threadFile.href)}); })`, { eval: true, workerData: { file } })
      : new Worker(threadFile, { workerData: { file } });
    this.#worker.unref();
    this.#worker.on('message', (reply: WriterReply) => this.#receive(reply));
    this.#worker.on('error', (error) => this.#stop(error));
    this.#exited = new Promise((resolve) => this.#worker.once('exit', () => resolve()));
    void this.#exited.then(() => this.#stop(new Error('the audit writer thread exited')));
  }

  /** Whether the thread has opened its connection and takes groups. */
  get ready(): boolean {
    return this.#ready && !this.#closing && !this.#stopped;
  }

  /** Resolves once the thread has ended, and its connection with it. */
  get exited(): Promise<void> {
    return this.#exited;
  }

  /**
   * Appends one group and resolves with its entries once they are committed. `inputs` has each
   * call's inputs as a JSON array, `timestamps` and `entryIds` one time and one id per entry.
   */
  append(inputs: string[], timestamps: string[], entryIds: string[]): Promise<AuditEntry[]> {
    if (!this.ready) return Promise.reject(new Error('the audit writer thread is not running'));
    const id = this.#nextId++;
    clearTimeout(this.#idleTimer);
    // A group in flight keeps the process alive until its reply arrives.
    if (this.#waiting.size === 0) this.#worker.ref();
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#worker.postMessage({ id, inputs, timestamps, entryIds } satisfies AppendMessage);
    });
  }

  /** Closes the thread's connection and ends it; a group still in flight fails. Call once no group is left (AuditLog.settled). */
  async close(): Promise<void> {
    // Keeps the process alive until the thread has closed its connection.
    this.#worker.ref();
    this.#postClose();
    await this.#exited;
  }

  #receive(reply: WriterReply): void {
    if (reply.kind === 'ready') {
      this.#ready = true;
      this.#armIdleTimer();
      return;
    }
    const waiting = this.#waiting.get(reply.id);
    if (waiting === undefined) return;
    this.#waiting.delete(reply.id);
    if (reply.kind === 'appended') waiting.resolve(reply.entries);
    else waiting.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name, code: reply.error.code }));
    if (this.#waiting.size === 0) {
      this.#worker.unref();
      this.#armIdleTimer();
    }
  }

  #armIdleTimer(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (this.#waiting.size === 0) this.#postClose();
    }, this.#idleMs);
    this.#idleTimer.unref();
  }

  #postClose(): void {
    if (this.#closing || this.#stopped) return;
    this.#closing = true;
    this.#worker.postMessage('close');
  }

  #stop(error: Error): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#idleTimer);
    for (const waiting of this.#waiting.values()) waiting.reject(new WriterStoppedError(error));
    this.#waiting.clear();
    this.#onStop(this.#closing ? undefined : error);
  }
}
