import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { startSinkStub, type SinkStub } from '../helpers/alert-sinks.js';
import { runCli } from '../helpers/cli.js';
import { dropSchema, postgresReachable, testPostgresUrl } from '../helpers/databases.js';
import { callServer, type ServerProcess, startServer, stopServer } from '../helpers/server-process.js';

const CREDENTIALS = 20;
const ROTATIONS = 200;

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

async function query<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: testPostgresUrl });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

function fileValue(file: string): string | undefined {
  const line = fs.readFileSync(file, 'utf8').split('\n').find((text) => text.startsWith('API_KEY='));
  return line?.slice('API_KEY='.length);
}

/** Parses the JSON log lines of a server that carry the given message. */
function logLines(server: ServerProcess, message: string): Array<Record<string, unknown>> {
  return server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes(`"msg":"${message}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * Checks one credential after its rotations and returns its current version. The history must hold one
 * successful rotation per accepted request and nothing else. Exactly one version is current and none is
 * pending, the status is `active`, and the env file contains the current version's value.
 */
async function checkCredential(server: ServerProcess, token: string, name: string, file: string, accepted: number, label: string): Promise<number> {
  const encoded = encodeURIComponent(name);
  const versions = await callServer(server, token, 'GET', `/credentials/${encoded}/versions`);
  assert.equal(versions.status, 200, versions.text);
  const list = versions.json!.versions as Array<{ version: number; is_current: boolean; state: string }>;
  const current = list.filter((version) => version.is_current);
  assert.equal(current.length, 1, `${label}: ${versions.text}`);
  assert.deepEqual(list.filter((version) => version.state === 'pending'), [], `${label}: ${versions.text}`);

  const history = await callServer(server, token, 'GET', `/rotation/history?credential_name=${encoded}&limit=1000`);
  assert.equal(history.status, 200, history.text);
  const rotations = history.json!.history as Array<{ success: boolean; trigger: string }>;
  assert.equal(rotations.filter((entry) => entry.success).length, accepted, `${label}: ${history.text}`);
  // A rotation that failed, or a recovery run on a credential that was not interrupted, leaves a row too.
  assert.equal(rotations.length, accepted, `${label}: ${history.text}`);

  const detail = await callServer(server, token, 'GET', `/credentials/${encoded}`);
  assert.equal(detail.status, 200, detail.text);
  assert.equal(detail.json!.credential_details.status, 'active', `${label}: ${detail.text}`);

  const revealed = await callServer(server, token, 'GET', `/credentials/${encoded}/value`);
  assert.equal(revealed.status, 200, revealed.text);
  assert.equal(revealed.json!.version, current[0]!.version);
  assert.equal(fileValue(file), revealed.json!.value, `${label}: the file does not hold the current version's value`);
  return current[0]!.version;
}

const reachable = await postgresReachable();
if (!reachable && process.env.CI === 'true') {
  throw new Error(`PostgreSQL is not reachable at ${testPostgresUrl}, and CI=true requires it.`);
}
if (!reachable) process.stdout.write(`# skipping the two-process test: no PostgreSQL at ${testPostgresUrl}\n`);

describe('two aegis serve processes on one database', { skip: !reachable }, () => {
  it('rotate once each and recover a kill', { timeout: 300_000 }, async () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-two-')));
    const schema = `aegis_two_${crypto.randomBytes(6).toString('hex')}`;
    let hermes: SinkStub | undefined;
    const servers: ServerProcess[] = [];
    try {
      hermes = await startSinkStub();
      const env: Record<string, string> = {
        AEGIS_DATA_DIR: path.join(dir, 'data'),
        AEGIS_ENV_ALLOWED_DIRS: dir,
        DATABASE_URL: testPostgresUrl,
        AEGIS_DATABASE_SCHEMA: schema,
        HERMES_URL: hermes.stub.url,
        AEGIS_ALERT_DELIVERY_SECONDS: '1',
        AEGIS_SCHEDULER_LEASE_SECONDS: '8',
        // Croner's six-field form, seconds first: the leader's scheduled run, which first recovers
        // interrupted rotations, runs every two seconds, also while the rotations below are under way.
        AEGIS_CRON_ROTATIONS: '*/2 * * * * *',
      };
      const first = await startServer({ env, expectToken: true });
      servers.push(first);
      const token = first.adminToken!;
      const second = await startServer({ env });
      servers.push(second);

      const names: string[] = [];
      const files = new Map<string, string>();
      for (let index = 0; index < CREDENTIALS; index += 1) {
        const name = `two/c${String(index).padStart(2, '0')}`;
        const file = path.join(dir, `c${index}.env`);
        fs.writeFileSync(file, `OTHER=${index}\nAPI_KEY=initial-${index}\n`);
        const created = await callServer(index % 2 === 0 ? first : second, token, 'POST', '/credentials', {
          name,
          credential_type: 'apiKey',
          provider: 'env',
          provider_config: { file, variable: 'API_KEY' },
          value: `initial-${index}`,
        });
        assert.equal(created.status, 201, created.text);
        names.push(name);
        files.set(name, file);
      }

      // 200 rotations at once, ten per credential, alternating between the two processes.
      const outcomes = await Promise.all(
        Array.from({ length: ROTATIONS }, async (_, index) => {
          const name = names[index % CREDENTIALS]!;
          const response = await callServer(index % 2 === 0 ? first : second, token, 'POST', `/credentials/${encodeURIComponent(name)}/rotate`, {});
          return { name, status: response.status, code: response.json?.code as string | undefined, text: response.text };
        }),
      );
      const other = outcomes.filter((outcome) => outcome.status !== 200 && !(outcome.status === 409 && outcome.code === 'rotation_in_progress'));
      assert.deepEqual(other, []);
      const accepted = new Map(names.map((name) => [name, outcomes.filter((outcome) => outcome.name === name && outcome.status === 200).length]));
      const acceptedTotal = [...accepted.values()].reduce((sum, count) => sum + count, 0);
      assert.ok(acceptedTotal >= CREDENTIALS, `only ${acceptedTotal} rotations were accepted`);
      process.stdout.write(`${acceptedTotal} of ${ROTATIONS} rotations accepted, ${ROTATIONS - acceptedTotal} got 409 rotation_in_progress\n`);

      for (const name of names) {
        const version = await checkCredential(first, token, name, files.get(name)!, accepted.get(name)!, name);
        assert.equal(version, 1 + accepted.get(name)!, name);
      }

      // One success entry per accepted rotation, and one failure entry per 409.
      const audited = await query<{ credential_name: string; success: boolean; count: number }>(
        `select credential_name, success, count(*)::int as count from "${schema}".aegis_audit_log where action = 'rotated' group by credential_name, success`,
      );
      for (const name of names) {
        const rejected = outcomes.filter((outcome) => outcome.name === name && outcome.status === 409).length;
        assert.equal(audited.find((row) => row.credential_name === name && row.success)?.count ?? 0, accepted.get(name), name);
        assert.equal(audited.find((row) => row.credential_name === name && !row.success)?.count ?? 0, rejected, name);
      }

      // Every alert in the outbox reaches HERMES exactly once, by its idempotency key (the alert id).
      const outbox = await waitFor('every alert to be delivered', 30_000, async () => {
        const rows = await query<{ id: string; alert_type: string; state: string }>(`select id, alert_type, state from "${schema}".aegis_alert_outbox`);
        return rows.every((row) => row.state !== 'pending') ? rows : undefined;
      });
      assert.equal(outbox.filter((row) => row.alert_type === 'rotation_success').length, acceptedTotal);
      assert.ok(outbox.every((row) => row.state === 'delivered'), JSON.stringify(outbox.filter((row) => row.state !== 'delivered')));
      const delivered = hermes.deliveredCounts();
      assert.deepEqual([...delivered.keys()].sort(), outbox.map((row) => row.id).sort());
      assert.deepEqual([...delivered.entries()].filter(([, count]) => count !== 1), []);
      assert.equal(hermes.exchanges.length, outbox.length);

      // The scheduler ran on one process: one leader, one lease row, and every job start in its log.
      const views = await Promise.all([first, second].map(async (server) => (await callServer(server, token, 'GET', '/scheduler')).json!));
      assert.equal(views.filter((view) => view.this_process.is_leader).length, 1, JSON.stringify(views));
      const leader = views[0]!.this_process.is_leader ? first : second;
      const follower = leader === first ? second : first;
      assert.deepEqual(await query(`select owner from "${schema}".aegis_leases where name = 'scheduler'`), [{ owner: views.find((view) => view.this_process.is_leader)!.this_process.owner }]);
      assert.ok(logLines(leader, 'scheduler job started').length > 0, 'the leader ran no scheduled job');
      assert.deepEqual(logLines(follower, 'scheduler job started'), []);
      assert.deepEqual(logLines(follower, 'became the scheduler leader'), []);

      // A token revoked through one process stops working on the other once the change notice
      // arrives, although the other one had it cached.
      const agent = await callServer(first, token, 'POST', '/tokens', { actor: 'two-agent', scopes: ['credentials:read'] });
      assert.equal(agent.status, 201, agent.text);
      const readAsAgent = () => callServer(second, agent.json!.token, 'GET', `/credentials/${encodeURIComponent(names[1]!)}`);
      assert.equal((await readAsAgent()).status, 200);
      assert.equal((await readAsAgent()).status, 200);
      const revoked = await callServer(first, token, 'DELETE', `/tokens/${agent.json!.details.id}`);
      assert.equal(revoked.status, 200, revoked.text);
      let reads = 0;
      await waitFor('the revocation to reach the other process', 2_000, async () => {
        reads += 1;
        return (await readAsAgent()).status === 401 ? true : undefined;
      });
      process.stdout.write(`the revoked token was rejected by the other process on read ${reads}\n`);
      // Reads are 200 ms apart. Without the notice, the other process would keep the token until one
      // of its own writes (a scheduler claim every 2 s, say) emptied its cache.
      assert.ok(reads <= 2, `the revocation took ${reads} reads to reach the other process`);

      // The follower restarts with a crash point and is killed by it between setting the provider and
      // committing a rotation. The leader's next scheduled run finishes that rotation, without a restart.
      assert.equal((await stopServer(follower)).code, 0, follower.output());
      const crashing = await startServer({ env: { ...env, AEGIS_TEST_CRASH_AT: 'after_provider_set', AEGIS_ROTATION_LEASE_SECONDS: '5' } });
      servers.push(crashing);
      const victim = names[0]!;
      const before = await checkCredential(leader, token, victim, files.get(victim)!, accepted.get(victim)!, 'before the kill');
      await assert.rejects(callServer(crashing, token, 'POST', `/credentials/${encodeURIComponent(victim)}/rotate`, {}));
      assert.equal((await crashing.exited).signal, 'SIGKILL');
      const stuck = await callServer(leader, token, 'GET', `/credentials/${encodeURIComponent(victim)}`);
      assert.equal(stuck.json!.credential_details.status, 'rotating', 'the kill did not interrupt a rotation');

      await waitFor('the survivor to recover the rotation', 20_000, async () => {
        const detail = await callServer(leader, token, 'GET', `/credentials/${encodeURIComponent(victim)}`);
        return detail.json!.credential_details.status === 'rotating' ? undefined : detail;
      });
      const after = await checkCredential(leader, token, victim, files.get(victim)!, accepted.get(victim)! + 1, 'after recovery');
      // The provider held the new value when the process died and it passed its test, so recovery completed it.
      assert.equal(after, before + 1);
      const recoveries = logLines(leader, 'recovered interrupted rotations');
      assert.deepEqual(recoveries.flatMap((line) => line.completed as string[]), [victim], JSON.stringify(recoveries));
      assert.deepEqual(recoveries.flatMap((line) => line.restored as string[]), [], JSON.stringify(recoveries));
      assert.equal(leader.child.exitCode, null);

      assert.equal((await stopServer(leader)).code, 0, leader.output());
      const verified = await runCli(['audit', 'verify'], env);
      assert.equal(verified.code, 0, `${verified.stdout}\n${verified.stderr}`);
    } finally {
      for (const server of servers) await stopServer(server, 'SIGKILL');
      await hermes?.stub.close();
      await dropSchema(schema);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
