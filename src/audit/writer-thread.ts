import { parentPort, workerData } from 'node:worker_threads';
import { isSqliteLockTimeout } from '../db/database-errors.js';
import { openSqliteConnection } from '../db/sqlite-connection.js';
import { toJson } from '../db/values.js';
import { chainEntries } from './chain.js';
import type { AuditEntry, AuditEntryInput } from './audit.types.js';

/**
 * The audit writer thread's side (see AuditWriter): it appends groups of entries to the chain on a
 * SQLite connection of its own, so that hashing, inserting and committing them run beside the event
 * loop instead of on it. Each group is one transaction that takes the write lock (BEGIN IMMEDIATE),
 * reads the head, inserts the entries and moves the head, as the locked path of the main connection
 * does. Appends from both connections and from other processes therefore stay in one chain.
 */

/**
 * A group as the main thread sends it: its calls' inputs as JSON arrays, and one timestamp and one entry
 * id per entry. The main thread chooses the entry ids, so that it can look the entries up when the
 * thread ends before its reply arrives.
 */
export interface AppendMessage {
  id: number;
  inputs: string[];
  timestamps: string[];
  entryIds: string[];
}

/** The thread's replies: one when its connection is open, then one per group. */
export type WriterReply =
  | { kind: 'ready' }
  | { kind: 'appended'; id: number; entries: AuditEntry[] }
  | { kind: 'failed'; id: number; error: { name: string; message: string; code: string | undefined } };

const port = parentPort;
if (port === null) throw new Error('writer-thread.ts runs only as a worker thread');

// Waiting for the lock blocks only this thread, so it may wait out a long transaction (an audit prune
// batch) for longer than the main connection's 5 s, but well below the 30 s default shutdown timeout.
const db = openSqliteConnection((workerData as { file: string }).file, { busyTimeoutMs: 15_000 });
const readHead = db.prepare('select seq, entry_hash as entryHash from aegis_audit_head where id = 1');
const insert = db.prepare(
  `insert into aegis_audit_log (id, seq, timestamp, credential_id, credential_name, action, actor, target, details, ip_address, success, error_message, prev_hash, entry_hash)
   values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
);
const moveHead = db.prepare('update aegis_audit_head set seq = ?, entry_hash = ? where id = 1');

const append = db.transaction((inputs: AuditEntryInput[], timestamps: string[], entryIds: string[]): AuditEntry[] => {
  const head = readHead.get() as { seq: number; entryHash: string };
  const entries = chainEntries(head, inputs, timestamps, entryIds);
  for (const entry of entries) {
    // Positional values: binding them by name took a copy of each row as an object.
    insert.run(
      entry.id, entry.seq, entry.timestamp, entry.credentialId, entry.credentialName, entry.action, entry.actor, entry.target,
      toJson(entry.details), entry.ipAddress, entry.success ? 1 : 0, entry.errorMessage, entry.prevHash, entry.entryHash,
    );
  }
  const last = entries[entries.length - 1];
  if (last !== undefined) moveHead.run(last.seq, last.entryHash);
  return entries;
});

function parseInputs(group: AppendMessage): AuditEntryInput[] {
  return group.inputs.flatMap((json) => JSON.parse(json) as AuditEntryInput[]);
}

/** Groups received and not yet committed. */
let received: AppendMessage[] = [];

/**
 * Commits every group received since the last commit in one transaction, as AuditLog's group commit
 * does on the main connection. After a failed transaction each group commits alone, so one group's
 * bad entry fails only that group.
 */
function commitReceived(): void {
  const groups = received;
  received = [];

  if (groups.length > 1) {
    const inputs = groups.map(parseInputs);
    let entries: AuditEntry[] | undefined;
    try {
      entries = append.immediate(
        inputs.flat(),
        groups.flatMap((group) => group.timestamps),
        groups.flatMap((group) => group.entryIds),
      );
    } catch (caught) {
      // Each group is tried alone below, unless the file is locked: each would wait busy_timeout again.
      if (isSqliteLockTimeout(caught)) {
        for (const group of groups) port!.postMessage(failedReply(group, caught));
        return;
      }
    }
    if (entries !== undefined) {
      // Outside the try: once committed, the groups must not be appended again.
      crashPointAfterCommit();
      let start = 0;
      for (const [index, group] of groups.entries()) {
        const count = inputs[index]!.length;
        port!.postMessage({ kind: 'appended', id: group.id, entries: entries.slice(start, start + count) } satisfies WriterReply);
        start += count;
      }
      return;
    }
  }

  for (const group of groups) {
    let reply: WriterReply;
    try {
      reply = { kind: 'appended', id: group.id, entries: append.immediate(parseInputs(group), group.timestamps, group.entryIds) };
      crashPointAfterCommit();
    } catch (caught) {
      reply = failedReply(group, caught);
    }
    port!.postMessage(reply);
  }
}

/** Ends the thread between a commit and its reply when AEGIS_TEST_CRASH_AT is `audit_writer_after_commit` (tests of AuditLog's recovery). */
function crashPointAfterCommit(): void {
  if (process.env.AEGIS_TEST_CRASH_AT === 'audit_writer_after_commit') process.exit(1);
}

function failedReply(group: AppendMessage, caught: unknown): WriterReply {
  const error = caught instanceof Error ? caught : new Error(String(caught));
  const code = (error as { code?: unknown }).code;
  return { kind: 'failed', id: group.id, error: { name: error.name, message: error.message, code: typeof code === 'string' ? code : undefined } };
}

port.on('message', (message: AppendMessage | 'close') => {
  if (message === 'close') {
    if (received.length > 0) commitReceived();
    db.close();
    port.close();
    return;
  }
  // The groups that arrive in one turn of this thread's event loop commit together.
  if (received.length === 0) setImmediate(commitReceived);
  received.push(message);
});
port.postMessage({ kind: 'ready' } satisfies WriterReply);
