import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import Fastify from 'fastify';

/**
 * The second baseline of B1: the least an audited read can do, in one thread. For each request, this
 * Fastify app logs a line at info level to standard output (a file in the benchmark, as for AEGIS).
 * It looks the bearer token's SHA-256 up in memory. It reads the credential's JSON from SQLite
 * (FLOOR_DATABASE, opened with WAL and synchronous NORMAL as AEGIS opens its file). Then it appends
 * one hash-chained row to an audit table with three indexes. The requests that arrive in one turn of
 * the event loop share one transaction, and each response goes out after its row is committed, as in
 * AEGIS.
 *
 * It has none of AEGIS's access rules, caches, metrics, security headers, response schemas or
 * recovery, so AEGIS cannot reach it. How close AEGIS comes shows what its own code costs, and how far
 * the floor is from the bare route shows what the audited read costs on the machine.
 */
const route = process.env.FLOOR_ROUTE ?? '/credentials/:name';
const token = process.env.FLOOR_TOKEN ?? '';
const credentialName = process.env.FLOOR_CREDENTIAL ?? '';
const body = fs.readFileSync(process.env.FLOOR_BODY_FILE ?? '', 'utf8');
const databaseFile = process.env.FLOOR_DATABASE ?? path.join(process.cwd(), 'floor.db');

const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');
const actors = new Map([[sha256(token), 'bench-agent']]);

const db = new Database(databaseFile);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec(`
  create table if not exists credentials (name text primary key, body text not null);
  create table if not exists audit (
    seq integer primary key, id text not null, timestamp text not null, actor text not null,
    action text not null, credential_name text not null, prev_hash text not null, entry_hash text not null);
  create index if not exists audit_name on audit (credential_name, seq);
  create index if not exists audit_actor on audit (actor, seq);
  create index if not exists audit_time on audit (timestamp);
`);
db.prepare('insert or replace into credentials (name, body) values (?, ?)').run(credentialName, body);
const selectCredential = db.prepare('select body from credentials where name = ?').pluck();
const insertEntry = db.prepare('insert into audit (id, timestamp, actor, action, credential_name, prev_hash, entry_hash) values (?, ?, ?, ?, ?, ?, ?)');
let head = (db.prepare('select entry_hash from audit order by seq desc limit 1').pluck().get() as string | undefined) ?? '0'.repeat(64);

interface Pending {
  actor: string;
  name: string;
  timestamp: string;
  resolve: () => void;
}
let queue: Pending[] = [];
const appendGroup = db.transaction((group: Pending[]) => {
  for (const entry of group) {
    const id = crypto.randomUUID();
    const entryHash = sha256(`${head}|${id}|${entry.timestamp}|${entry.actor}|credential_read|${entry.name}`);
    insertEntry.run(id, entry.timestamp, entry.actor, 'credential_read', entry.name, head, entryHash);
    head = entryHash;
  }
});
const commitQueued = () => {
  const group = queue;
  queue = [];
  appendGroup(group);
  for (const entry of group) entry.resolve();
};

const app = Fastify({ logger: { level: 'info' } });
app.get<{ Params: { name: string } }>(route, async (request, reply) => {
  const authorization = request.headers.authorization ?? '';
  const actor = authorization.startsWith('Bearer ') ? actors.get(sha256(authorization.slice(7))) : undefined;
  if (actor === undefined) return reply.code(401).send({ error: 'unauthorized' });
  const stored = selectCredential.get(request.params.name) as string | undefined;
  if (stored === undefined) return reply.code(404).send({ error: 'not found' });
  const credential: unknown = JSON.parse(stored);
  await new Promise<void>((resolve) => {
    queue.push({ actor, name: request.params.name, timestamp: new Date().toISOString(), resolve });
    if (queue.length === 1) setImmediate(commitQueued);
  });
  return credential;
});
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`${JSON.stringify({ msg: 'floor server listening', port: typeof address === 'object' && address !== null ? address.port : 0 })}\n`);

const stop = async () => {
  await app.close();
  db.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
