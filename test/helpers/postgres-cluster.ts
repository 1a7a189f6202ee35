import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/**
 * A throwaway PostgreSQL cluster that checks passwords (SCRAM-SHA-256 on every connection) and logs
 * every statement, unlike the shared test server, which trusts any password.
 */
export interface PostgresCluster {
  host: string;
  port: number;
  /** Connection URL of the superuser `postgres`, with its password. */
  adminUrl: string;
  /** The server's log file (log_statement = all). */
  logFile: string;
  /** Connects as `user` with `password` over TCP; rejects with pg's error when the login fails. */
  connect(user: string, password: string, database?: string): Promise<pg.Client>;
  /** Runs statements as the superuser with statement logging off, so set-up passwords stay out of the log. */
  adminQuery(text: string): Promise<pg.QueryResult>;
  /**
   * Shuts the server down (pg_ctl stop -m fast: open sessions are ended with 57P01) and keeps the data
   * folder and the port, so `startServer` brings back the same cluster with its data.
   */
  stopServer(): Promise<void>;
  /** Starts the server stopped by `stopServer` again, on the same port, and waits until it accepts connections. */
  startServer(): Promise<void>;
  /** Shuts the server down, if it runs, and deletes the cluster's folder. */
  stop(): Promise<void>;
}

const runuserPath = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((file) => fs.existsSync(file));

/** Finds the newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl, or undefined. */
function findPostgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const versions = fs
    .readdirSync(root)
    .filter((entry) => /^\d+$/.test(entry))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = path.join(root, version, 'bin');
    if (fs.existsSync(path.join(bin, 'initdb')) && fs.existsSync(path.join(bin, 'pg_ctl'))) return bin;
  }
  return undefined;
}

/**
 * Returns why a cluster cannot be started here, or null when it can. Starting one needs root (to run
 * the server as the `postgres` OS user), runuser, and PostgreSQL's initdb and pg_ctl.
 */
export function clusterUnavailableReason(): string | null {
  if (process.getuid?.() !== 0) return 'starting a PostgreSQL cluster needs root, to run it as the postgres OS user';
  if (!runuserPath) return 'runuser is not installed';
  if (!findPostgresBin()) return 'no initdb and pg_ctl under /usr/lib/postgresql/<version>/bin';
  return null;
}

/** Finds a free TCP port on 127.0.0.1 by binding port 0 and closing the socket. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Runs a PostgreSQL program as the postgres OS user, in `cwd`. */
async function runAsPostgres(cwd: string, program: string, args: string[]): Promise<void> {
  try {
    await run(runuserPath!, ['-u', 'postgres', '--', program, ...args], { cwd, timeout: 60_000 });
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`${path.basename(program)} ${args[0] ?? ''} failed: ${stderr || stdout || (error as Error).message}`);
  }
}

/**
 * Creates and starts a cluster in a new temporary folder owned by postgres: initdb with SCRAM-SHA-256
 * for local and host connections, a random superuser password, a free port on 127.0.0.1, the Unix socket
 * in the temporary folder, and log_statement = all. Call `stop` to shut it down and delete the folder.
 */
export async function startPostgresCluster(): Promise<PostgresCluster> {
  const reason = clusterUnavailableReason();
  if (reason) throw new Error(`cannot start a PostgreSQL cluster: ${reason}`);
  const bin = findPostgresBin()!;
  const { uid, gid } = osUser('postgres');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-pg-'));
  fs.chownSync(dir, uid, gid);
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const adminPassword = crypto.randomBytes(18).toString('base64url');
  const passwordFile = path.join(dir, 'admin-password');
  fs.writeFileSync(passwordFile, `${adminPassword}\n`, { mode: 0o600 });
  fs.chownSync(passwordFile, uid, gid);

  let running = false;
  const pgCtl = path.join(bin, 'pg_ctl');
  const port = await freePort();
  const cluster: PostgresCluster = {
    host: '127.0.0.1',
    port,
    adminUrl: `postgres://postgres:${encodeURIComponent(adminPassword)}@127.0.0.1:${port}/postgres`,
    logFile,
    async connect(user, password, database = 'postgres') {
      const client = new pg.Client({ host: '127.0.0.1', port, user, password, database, connectionTimeoutMillis: 10_000 });
      client.on('error', () => {});
      try {
        await client.connect();
      } catch (error) {
        await client.end().catch(() => {});
        throw error;
      }
      return client;
    },
    async adminQuery(text) {
      const client = await cluster.connect('postgres', adminPassword);
      try {
        await client.query(`set log_statement = 'none'`);
        return await client.query(text);
      } finally {
        await client.end();
      }
    },
    async stopServer() {
      if (!running) throw new Error('the PostgreSQL server of this cluster is not running');
      await runAsPostgres(dir, pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60']);
      running = false;
    },
    async startServer() {
      if (running) throw new Error('the PostgreSQL server of this cluster is already running');
      await runAsPostgres(dir, pgCtl, ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60']);
      running = true;
    },
    async stop() {
      if (running) await runAsPostgres(dir, pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w']).catch(() => {});
      running = false;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await runAsPostgres(dir, path.join(bin, 'initdb'), [
      '-D', dataDir,
      '-U', 'postgres',
      `--pwfile=${passwordFile}`,
      '--auth-local=scram-sha-256',
      '--auth-host=scram-sha-256',
      '--encoding=UTF8',
      '--no-sync',
    ]);
    fs.appendFileSync(
      path.join(dataDir, 'postgresql.conf'),
      [
        '',
        `port = ${port}`,
        `listen_addresses = '127.0.0.1'`,
        `unix_socket_directories = '${dir}'`,
        `password_encryption = 'scram-sha-256'`,
        `log_statement = 'all'`,
        `fsync = off`,
        '',
      ].join('\n'),
    );
    await cluster.startServer();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** Looks up an OS user's uid and gid with `id`. */
function osUser(name: string): { uid: number; gid: number } {
  const read = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  return { uid: read('-u'), gid: read('-g') };
}
