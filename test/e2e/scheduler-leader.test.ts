import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { startServer, waitForExit, type ServerProcess } from '../helpers/server-process.js';
import { dropSchema, postgresReachable, testPostgresUrl } from '../helpers/databases.js';

const LEASE_SECONDS = 4;

interface SchedulerView {
  leader: { owner: string; fencing_token: number; expires_at: string } | null;
  this_process: { owner: string; is_leader: boolean; scheduler_running: boolean };
  jobs: Array<{ name: string; last_run_at: string | null; last_status: string | null }>;
}

async function readScheduler(server: ServerProcess, token: string): Promise<SchedulerView> {
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
    const servers: ServerProcess[] = [];
    try {
      const first = await startServer({ env, expectToken: true });
      servers.push(first);
      const token = first.adminToken!;
      const second = await startServer({ env });
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
