import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { tsxLoader } from '../helpers/cli.js';
import { dropSchema, postgresReachable, testPostgresUrl } from '../helpers/databases.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const adminTokenPattern = /aegis_[0-9a-f]{12}_[A-Za-z0-9_-]{43}/;
const LEASE_SECONDS = 4;

interface Server {
  child: ChildProcessWithoutNullStreams;
  port: number;
  output: () => string;
  exited: Promise<NodeJS.Signals | null>;
}

/** Starts `aegis serve` from source and waits (at most 30 s) for its "AEGIS is serving" line, and the admin token when `expectToken`. */
function startServer(env: Record<string, string>, expectToken: boolean): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsxLoader, path.join(root, 'src/cli/bin.ts'), 'serve'], {
      cwd: path.dirname(env.AEGIS_DATA_DIR!),
      env: { PATH: process.env.PATH ?? '', HOME: os.homedir(), AEGIS_PORT: '0', ...env },
    });
    let output = '';
    const exited = new Promise<NodeJS.Signals | null>((resolveExit) => child.on('exit', (_code, signal) => resolveExit(signal)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within 30 s:\n${output}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const line = output.split('\n').find((text) => text.includes('"AEGIS is serving"'));
      if (line && (!expectToken || adminTokenPattern.test(output))) {
        clearTimeout(timer);
        resolve({ child, port: JSON.parse(line).port, output: () => output, exited });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${signal ?? 'no signal'}) before serving:\n${output}`));
    });
  });
}

async function waitForExit(server: Server, timeoutMs: number): Promise<NodeJS.Signals | null> {
  const timer = setTimeout(() => server.child.kill('SIGKILL'), timeoutMs);
  try {
    return await server.exited;
  } finally {
    clearTimeout(timer);
  }
}

interface SchedulerView {
  leader: { owner: string; fencing_token: number; expires_at: string } | null;
  this_process: { owner: string; is_leader: boolean; scheduler_running: boolean };
  jobs: Array<{ name: string; last_run_at: string | null; last_status: string | null }>;
}

async function readScheduler(server: Server, token: string): Promise<SchedulerView> {
  const response = await fetch(`http://127.0.0.1:${server.port}/scheduler`, { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text) as SchedulerView;
}

/** Polls `check` every 200 ms until it returns a value other than undefined, failing after `timeoutMs`. */
async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function leaseRows(schema: string): Promise<Array<{ owner: string }>> {
  const client = new pg.Client({ connectionString: testPostgresUrl });
  await client.connect();
  try {
    const result = await client.query<{ owner: string }>(`select owner from "${schema}".aegis_leases where name = 'scheduler'`);
    return result.rows;
  } finally {
    await client.end();
  }
}

const reachable = await postgresReachable();
if (!reachable && process.env.CI === 'true') {
  throw new Error(`PostgreSQL is not reachable at ${testPostgresUrl}, and CI=true requires it.`);
}
if (!reachable) process.stdout.write(`# skipping the scheduler leader test: no PostgreSQL at ${testPostgresUrl}\n`);

describe('scheduler leader across processes', { skip: !reachable }, () => {
  it('survivor takes over after kill', async () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-leader-')));
    const schema = `aegis_leader_${crypto.randomBytes(6).toString('hex')}`;
    const env: Record<string, string> = {
      AEGIS_DATA_DIR: path.join(dir, 'data'),
      AEGIS_ENV_ALLOWED_DIRS: dir,
      DATABASE_URL: testPostgresUrl,
      AEGIS_DATABASE_SCHEMA: schema,
      AEGIS_SCHEDULER_LEASE_SECONDS: String(LEASE_SECONDS),
      // Croner's six-field form, seconds first: every two seconds.
      AEGIS_CRON_HEALTH_CHECKS: '*/2 * * * * *',
      AEGIS_CRON_ROTATIONS: '*/2 * * * * *',
    };
    const servers: Server[] = [];
    try {
      const first = await startServer(env, true);
      servers.push(first);
      const token = first.output().match(adminTokenPattern)![0];
      const second = await startServer(env, false);
      servers.push(second);

      const leaderView = await waitFor('a scheduler leader', 15_000, async () => {
        const view = await readScheduler(first, token);
        return view.leader ?? undefined;
      });
      const views = await Promise.all([readScheduler(first, token), readScheduler(second, token)]);
      assert.equal(views.filter((view) => view.this_process.is_leader).length, 1, JSON.stringify(views));
      assert.ok(views.every((view) => view.this_process.scheduler_running));
      assert.deepEqual(await leaseRows(schema), [{ owner: leaderView.owner }]);
      const leader = views[0]!.this_process.is_leader ? first : second;
      const survivor = leader === first ? second : first;
      assert.match(leaderView.owner, new RegExp(`:${leader.child.pid}:`));

      await waitFor('a health check run on the leader', 15_000, async () => {
        const view = await readScheduler(survivor, token);
        return view.jobs.find((job) => job.name === 'health_checks' && job.last_status === 'succeeded');
      });

      leader.child.kill('SIGKILL');
      assert.equal(await waitForExit(leader, 10_000), 'SIGKILL');
      const killedAt = Date.now();

      const takenOver = await waitFor('the survivor to take the lease', (LEASE_SECONDS + 3) * 1000, async () => {
        const view = await readScheduler(survivor, token);
        return view.this_process.is_leader ? view : undefined;
      });
      assert.ok(Date.now() - killedAt <= (LEASE_SECONDS + 2) * 1000, `takeover took ${Date.now() - killedAt} ms`);
      assert.ok(takenOver.leader!.fencing_token > leaderView.fencing_token);
      assert.match(survivor.output(), /"became the scheduler leader"/);

      // The new leader runs the next period's jobs.
      await waitFor('a rotation run by the survivor', 15_000, async () => {
        const view = await readScheduler(survivor, token);
        const rotations = view.jobs.find((job) => job.name === 'rotations');
        return rotations?.last_run_at && new Date(rotations.last_run_at).getTime() > killedAt && rotations.last_status === 'succeeded' ? rotations : undefined;
      });

      survivor.child.kill('SIGTERM');
      assert.equal(await waitForExit(survivor, 30_000), null);
      assert.deepEqual(await leaseRows(schema), []);
    } finally {
      for (const server of servers) {
        if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
        await waitForExit(server, 10_000);
      }
      await dropSchema(schema);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
